// Package cgroup2 finds (or mounts) a cgroup v2 hierarchy and manages the
// child cgroups cnilab puts lab client processes in, so cgroup BPF hooks
// (socket-LB connect4) see exactly those processes.
package cgroup2

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OwnMount is where cnilab mounts cgroup2 when the host has none mounted.
const OwnMount = "/run/cnilab/cgroup2"

// Prefix starts every cgroup cnilab creates, so leftovers can be found.
const Prefix = "cnl-"

// Root returns the mount point of a cgroup v2 hierarchy, mounting one at
// OwnMount when none is mounted (a cgroup v1 host). mounted says whether
// this call did the mount.
func Root() (root string, mounted bool, err error) {
	if r, err := findMount("/proc/self/mountinfo"); err != nil {
		return "", false, err
	} else if r != "" {
		return r, false, nil
	}
	if err := os.MkdirAll(OwnMount, 0o755); err != nil {
		return "", false, err
	}
	if err := unix.Mount("none", OwnMount, "cgroup2", 0, ""); err != nil {
		return "", false, fmt.Errorf("mount cgroup2 at %s: %w", OwnMount, err)
	}
	return OwnMount, true, nil
}

// findMount returns the first cgroup2 mount point in a mountinfo file.
func findMount(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return parseMountinfo(bufio.NewScanner(f))
}

func parseMountinfo(sc *bufio.Scanner) (string, error) {
	for sc.Scan() {
		// "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			return "", fmt.Errorf("mountinfo line without separator: %q", sc.Text())
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 1 {
			return "", fmt.Errorf("short mountinfo line: %q", sc.Text())
		}
		if qf[0] == "cgroup2" {
			return pf[4], nil
		}
	}
	return "", sc.Err()
}

// Group is one cgroup directory cnilab created.
type Group struct {
	Path string
	fd   int
}

// Create makes <root>/<name> (name must start with Prefix) and opens it.
func Create(root, name string) (*Group, error) {
	if !strings.HasPrefix(name, Prefix) || strings.Contains(name, "/") {
		return nil, fmt.Errorf("cgroup name %q must start with %q and have no slash", name, Prefix)
	}
	p := filepath.Join(root, name)
	if err := os.Mkdir(p, 0o755); err != nil {
		return nil, err
	}
	fd, err := unix.Open(p, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(p)
		return nil, err
	}
	return &Group{Path: p, fd: fd}, nil
}

// FD is an open directory fd of the group, for command.Cmd.CgroupFD.
func (g *Group) FD() int { return g.fd }

// Remove deletes the group. Processes still in it are killed first (a
// cgroup can only be removed empty); bounded to a few seconds.
func (g *Group) Remove() error {
	if g.fd > 0 {
		unix.Close(g.fd)
		g.fd = -1
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.Remove(g.Path)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", g.Path, err)
		}
		if b, rerr := os.ReadFile(filepath.Join(g.Path, "cgroup.procs")); rerr == nil {
			for _, pid := range strings.Fields(string(b)) {
				var n int
				if _, serr := fmt.Sscan(pid, &n); serr == nil && n > 0 {
					_ = unix.Kill(n, unix.SIGKILL)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
