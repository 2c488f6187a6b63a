package cgroup2

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/internal/testenv"
)

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"hybrid", "35 24 0:30 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified", false},
		{"optional fields", "30 1 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup", false},
		{"v1 only", "36 35 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "", false},
		{"garbage", "not a mountinfo line\n", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMountinfo(bufio.NewScanner(strings.NewReader(tc.in)))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %q, %v; want %q, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCreateRemove(t *testing.T) {
	testenv.Kernel(t, "create cgroups")
	root, mounted, err := Root()
	if err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	if mounted {
		t.Logf("mounted cgroup2 at %s", root)
	}
	if _, err := Create(root, "bad"); err == nil {
		t.Error("name without prefix accepted")
	}
	g, err := Create(root, "cnl-t-cgroup2-test")
	if err != nil {
		t.Fatal(err)
	}
	if g.FD() <= 0 {
		t.Error("no fd")
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.Path); !os.IsNotExist(err) {
		t.Errorf("cgroup %s still exists", g.Path)
	}
}
