package netplan

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/pkg/internal/testenv"
)

func TestParseMountinfo(t *testing.T) {
	// This machine's /proc/self/mountinfo (first lines and three of the
	// namespace files of a run): no mount is shared and /run/netns is not
	// a mount point, only the files in it are (nsfs).
	host, err := os.ReadFile("testdata/mountinfo-host-private.txt")
	if err != nil {
		t.Fatal(err)
	}
	// Captured in TestNetnsDirMount's child ("empty") after EnsureNetnsDir:
	// tmpfs on /run, /run/netns bound onto itself and shared, two
	// namespaces in it.
	ensured, err := os.ReadFile("testdata/mountinfo-netns-shared.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		data            string
		entries         int
		mounted, shared bool
		wantErr         string
	}{
		{"host, not a mount point", string(host), 15, false, false, ""},
		{"after EnsureNetnsDir", string(ensured), 0, true, true, ""},
		{"escaped mount point", "40 27 0:4 / /run/net\\040ns rw shared:7 - tmpfs tmpfs rw\n", 1, false, false, ""},
		{"no separator", "40 27 0:4 / /run/netns rw shared:7 tmpfs tmpfs rw\n", 0, false, false, "line 1"},
		{"bad peer group", "40 27 0:4 / /run/netns rw shared:x - tmpfs tmpfs rw\n", 0, false, false, `optional field "shared:x"`},
		{"short line", "40 27 0:4 /\n", 0, false, false, "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := ParseMountinfo([]byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.entries > 0 && len(es) != tc.entries {
				t.Errorf("%d entries, want %d", len(es), tc.entries)
			}
			if m, s := mountState(es, NetnsDir); m != tc.mounted || s != tc.shared {
				t.Errorf("/run/netns mounted %v shared %v, want %v %v", m, s, tc.mounted, tc.shared)
			}
		})
	}
	es, _ := ParseMountinfo([]byte("40 27 0:4 / /run/net\\040ns rw shared:7 - tmpfs tmpfs rw\n"))
	if m, s := mountState(es, "/run/net ns"); !m || !s {
		t.Errorf("escaped mount point not read back: %+v", es)
	}
}

// childCase names the case TestNetnsDirChild runs; set only by
// TestNetnsDirMount for the child it starts in a private mount namespace.
const childCase = "CNILAB_NETPLAN_NETNS_DIR_CASE"

// TestNetnsDirMount runs each case in a child test process in a mount
// namespace of its own (the runtime makes its mounts private, so nothing
// propagates back) with a tmpfs over /run: the host's /run/netns is never
// touched, and the namespaces the child creates die with its mount
// namespace.
func TestNetnsDirMount(t *testing.T) {
	testenv.Kernel(t, "mount namespaces, tmpfs and network namespaces")
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"empty", "holds-namespaces", "shared-already", "private-mount"} {
		t.Run(c, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNetnsDirChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childCase+"="+c, "CNILAB_NETPLAN_PARENT_MNTNS="+self)
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
			out, err := cmd.CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("--- PASS: TestNetnsDirChild")) {
				t.Fatalf("child (%s): %v\n%s", c, err, out)
			}
			t.Logf("child:\n%s", out)
		})
	}
}

// newNamedUnchecked creates a named namespace the way CreateNamespace
// did before EnsureNetnsDir, to set up what an earlier run left.
func newNamedUnchecked(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	return <-errc
}

func netnsMounts(t *testing.T) (entries []MountEntry, dirMounts int, nsfs []string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	entries, err = ParseMountinfo(data)
	if err != nil {
		t.Fatal(err)
	}
	// Only mounts stacked on the /run the test sees count: the host's own
	// /run/netns mount is still listed, covered by the test's tmpfs.
	run, err := visibleMountID("/run")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch {
		case e.MountPoint == NetnsDir && e.Parent == run:
			dirMounts++
		case strings.HasPrefix(e.MountPoint, NetnsDir+"/cnl-nsdir-") && e.FSType == "nsfs":
			nsfs = append(nsfs, strings.TrimPrefix(e.MountPoint, NetnsDir+"/"))
		}
	}
	return entries, dirMounts, nsfs
}

// visible fails t unless exactly names are listed in /run/netns and each
// still opens as a network namespace.
func visible(t *testing.T, names ...string) {
	t.Helper()
	got, err := ListNamespaces("cnl-nsdir-")
	if err != nil {
		t.Fatal(err)
	}
	names = slices.Sorted(slices.Values(names))
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("/run/netns lists %v, want %v", got, names)
	}
	for _, n := range names {
		h, err := netns.GetFromPath(NetnsPath(n))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		h.Close()
	}
}

func TestNetnsDirChild(t *testing.T) {
	c := os.Getenv(childCase)
	if c == "" {
		t.Skip("runs only as TestNetnsDirMount's child, in a private mount namespace")
	}
	// Never on the host's mounts: the child must be in a mount namespace
	// of its own before it mounts anything.
	if self, _ := os.Readlink("/proc/self/ns/mnt"); self == "" || self == os.Getenv("CNILAB_NETPLAN_PARENT_MNTNS") {
		t.Fatalf("child mount namespace %q is the parent's: refusing to mount", self)
	}
	if err := unix.Mount("cnl-nsdir-test", "/run", "tmpfs", 0, "size=1m,mode=755"); err != nil {
		t.Fatalf("tmpfs on /run: %v", err)
	}
	bindSelf := func(propagation uintptr) {
		if err := os.Mkdir(NetnsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("", NetnsDir, "none", propagation, ""); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	switch c {
	case "empty":
		// No /run/netns at all: the first namespace makes it.
	case "holds-namespaces":
		// An earlier run's namespace in a plain directory: a bind now
		// would hide it.
		if err := newNamedUnchecked("cnl-nsdir-old"); err != nil {
			t.Fatal(err)
		}
		want = []string{"cnl-nsdir-old"}
	case "shared-already":
		bindSelf(unix.MS_SHARED)
	case "private-mount":
		bindSelf(unix.MS_PRIVATE)
		if err := newNamedUnchecked("cnl-nsdir-old"); err != nil {
			t.Fatal(err)
		}
		want = []string{"cnl-nsdir-old"}
	default:
		t.Fatalf("unknown case %q", c)
	}

	var notes []string
	k := Kernel{Log: func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }}
	p := &Plan{Namespaces: []string{"cnl-nsdir-a"}}
	if err := k.Apply(t.Context(), p); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := CreateNamespace("cnl-nsdir-b"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "cnl-nsdir-a", "cnl-nsdir-b")
	visible(t, want...)
	entries, dirMounts, nsfs := netnsMounts(t)
	id, err := visibleMountID(NetnsDir)
	if err != nil {
		t.Fatal(err)
	}
	mounted, shared := visibleState(entries, NetnsDir, id)
	t.Logf("mountinfo under /run: %d mounts on %s, namespace files %v, notes %q", dirMounts, NetnsDir, nsfs, notes)
	for _, line := range strings.Split(string(must(os.ReadFile("/proc/self/mountinfo"))), "\n") {
		if strings.Contains(line, " /run ") || strings.Contains(line, " /run/netns ") || strings.Contains(line, " /run/netns/cnl-nsdir-") {
			t.Logf("mountinfo: %s", line)
		}
	}

	switch c {
	case "holds-namespaces":
		if mounted || len(notes) != 1 || !strings.Contains(notes[0], "is not a mount point and already holds cnl-nsdir-old (1 in all): left as it is") {
			t.Errorf("mounted %v, notes %q: want /run/netns left alone with a note naming cnl-nsdir-old", mounted, notes)
		}
	default:
		// One mount on /run/netns, shared, none stacked on it, and no note.
		if !mounted || !shared || dirMounts != 1 || len(notes) != 0 {
			t.Errorf("mounted %v shared %v, %d mounts on %s, notes %q: want one shared mount and no note", mounted, shared, dirMounts, NetnsDir, notes)
		}
		// What iproute2 tries first: making /run/netns shared. It succeeds
		// (no EINVAL), so `ip netns add` would not bind it over itself.
		if err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			t.Errorf("iproute2's make-shared on %s: %v: it would bind-mount and hide the namespaces", NetnsDir, err)
		}
	}
	// Every namespace deletes cleanly (the incident: EBUSY on hidden ones).
	for _, n := range want {
		if err := DeleteNamespace(n); err != nil {
			t.Errorf("delete %s: %v", n, err)
		}
	}
	visible(t)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
