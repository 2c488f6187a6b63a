package netplan

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Why cnilab owns the /run/netns mount: iproute2's `ip netns add` (and
// `ip netns attach`) makes /run/netns a mount point with shared
// propagation when it is not one, by bind-mounting the directory onto
// itself. The namespace files already in it are bind mounts on the old
// directory; the new mount covers them, so they vanish from /run/netns
// while their namespaces live on, and removing a lab then fails (EBUSY).
// When cnilab makes /run/netns that mount point itself before its first
// namespace, iproute2 finds it in place and leaves it alone. cnilab does so
// only while /run/netns holds nothing, because the same bind would hide
// whatever is there; otherwise it leaves /run/netns as it is and says why.

// MountEntry is one line of /proc/self/mountinfo, the fields cnilab reads.
type MountEntry struct {
	// ID and Parent are the mount's ID and its parent's.
	ID, Parent int
	MountPoint string
	// Shared is the peer group ("shared:N") of a mount with shared
	// propagation, 0 for a private or slave mount.
	Shared int
	FSType string
}

// ParseMountinfo reads /proc/<pid>/mountinfo (proc(5)): mount ID, parent
// ID, major:minor, root, mount point, options, optional fields up to "-",
// then the filesystem type. A line that does not have that shape is an
// error.
func ParseMountinfo(data []byte) ([]MountEntry, error) {
	var out []MountEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+1 >= len(f) {
			return nil, fmt.Errorf("mountinfo line %d: %q: want ID, parent, dev, root, mount point, options, optional fields, -, type", n, sc.Text())
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("mountinfo line %d: %q: mount and parent IDs are not numbers", n, sc.Text())
		}
		e := MountEntry{ID: id, Parent: parent, MountPoint: unescapeMount(f[4]), FSType: f[sep+1]}
		for _, opt := range f[6:sep] {
			if g, ok := strings.CutPrefix(opt, "shared:"); ok {
				id, err := strconv.Atoi(g)
				if err != nil || id <= 0 {
					return nil, fmt.Errorf("mountinfo line %d: optional field %q is not shared:<peer group>", n, opt)
				}
				e.Shared = id
			}
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 is a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountState is how dir is mounted: whether it is a mount point, and
// whether the top-most mount on it (the last entry: later mounts cover
// earlier ones) propagates shared.
func mountState(entries []MountEntry, dir string) (mounted, shared bool) {
	for _, e := range entries {
		if e.MountPoint == dir {
			mounted, shared = true, e.Shared > 0
		}
	}
	return mounted, shared
}

// visibleMountID is the ID of the mount dir's path resolves into
// (statx STATX_MNT_ID): the top-most one, not one covered by a later mount
// over a parent directory, which mountinfo still lists.
func visibleMountID(dir string) (int, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID, &st); err != nil {
		return 0, fmt.Errorf("statx %s: %w", dir, err)
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		return 0, fmt.Errorf("statx %s: the kernel reports no mount ID", dir)
	}
	return int(st.Mnt_id), nil
}

// visibleState is mountState for the mount dir resolves into (id, from
// visibleMountID): dir is a mount point when that mount sits on dir.
func visibleState(entries []MountEntry, dir string, id int) (mounted, shared bool) {
	for _, e := range entries {
		if e.ID == id {
			return e.MountPoint == dir, e.MountPoint == dir && e.Shared > 0
		}
	}
	return false, false
}

// ensureNetnsMount makes dir (NetnsDir, or a test's) a mount point with
// shared propagation, as iproute2 does, reading the mounts from
// mountinfo. When dir is not a mount point and already holds entries it
// changes nothing and note says why (a bind now would hide them). A mount
// point with private propagation is made shared (that hides nothing).
func ensureNetnsMount(dir, mountinfo string) (note string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return "", err
	}
	entries, err := ParseMountinfo(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", mountinfo, err)
	}
	id, err := visibleMountID(dir)
	if err != nil {
		return "", err
	}
	mounted, shared := visibleState(entries, dir, id)
	switch {
	case mounted && shared:
		return "", nil
	case !mounted:
		ents, err := os.ReadDir(dir)
		if err != nil {
			return "", err
		}
		if len(ents) > 0 {
			names := make([]string, 0, 3)
			for _, e := range ents[:min(len(ents), 3)] {
				names = append(names, e.Name())
			}
			if len(ents) > 3 {
				names = append(names, "...")
			}
			return fmt.Sprintf("%s is not a mount point and already holds %s (%d in all): left as it is, because bind-mounting it onto itself now would hide them; "+
				"until it is empty, an `ip netns add` on this machine would hide them too", dir, strings.Join(names, ", "), len(ents)), nil
		}
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return "", fmt.Errorf("bind-mount %s onto itself: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	return "", nil
}

// netnsDir remembers, per process, that NetnsDir was seen to: the mount
// is the machine's, so one look per process is enough once it succeeded.
var netnsDir struct {
	sync.Mutex
	done bool
	note string
}

// EnsureNetnsDir makes NetnsDir a shared mount point before cnilab's first
// namespace (see ensureNetnsMount), once per process. note, when not
// empty, says why it was left as it is; it is returned on every call.
func EnsureNetnsDir() (note string, err error) {
	netnsDir.Lock()
	defer netnsDir.Unlock()
	if netnsDir.done {
		return netnsDir.note, nil
	}
	note, err = ensureNetnsMount(NetnsDir, "/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("%s: %w", NetnsDir, err)
	}
	netnsDir.done, netnsDir.note = true, note
	return note, nil
}
