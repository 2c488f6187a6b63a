package cpufocus

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/command"
)

// fakeMachine lays out /proc/<pid>/cgroup and the cgroup files for
// containers as Docker's cgroupfs driver on cgroup v1 (this machine) or
// systemd on the unified hierarchy leave them.
func fakeMachine(t *testing.T, v2 bool, containers map[string]int) (*Focus, string) {
	t.Helper()
	root := t.TempDir()
	proc, cg := filepath.Join(root, "proc"), filepath.Join(root, "cgroup")
	var ps, inspect []string
	for name, pid := range containers {
		ps = append(ps, name)
		inspect = append(inspect, "/"+name+" "+strconv.Itoa(pid))
		dir := filepath.Join(proc, strconv.Itoa(pid))
		must(t, os.MkdirAll(dir, 0o755))
		var content, file string
		if v2 {
			content = "0::/system.slice/docker-" + name + ".scope\n"
			file = filepath.Join(cg, "system.slice", "docker-"+name+".scope", "cpu.weight")
		} else {
			content = "12:pids:/docker/" + name + "\n2:cpuacct:/docker/" + name + "\n1:cpu:/docker/" + name + "\n0::/\n"
			file = filepath.Join(cg, "cpu", "docker", name, "cpu.shares")
		}
		must(t, os.WriteFile(filepath.Join(dir, "cgroup"), []byte(content), 0o644))
		must(t, os.MkdirAll(filepath.Dir(file), 0o755))
		must(t, os.WriteFile(file, []byte("1024\n"), 0o644))
	}
	fake := &command.Fake{Responses: map[string]command.FakeResponse{"docker": {Func: func(c command.Cmd) (command.Result, error) {
		switch c.Args[0] {
		case "ps":
			return command.Result{Stdout: []byte(strings.Join(ps, "\n") + "\n")}, nil
		case "inspect":
			return command.Result{Stdout: []byte(strings.Join(inspect, "\n") + "\n")}, nil
		}
		t.Fatalf("unexpected docker %v", c.Args)
		return command.Result{}, nil
	}}}}
	f := New(fake, "r1")
	f.Proc, f.Cgroup = proc, cg
	return f, cg
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func weight(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	must(t, err)
	return strings.TrimSpace(string(b))
}

// TestEnterLowersOthersAndRestores: while flannel's workers are measured,
// its control plane and cilium's nodes run at the lowest weight; after the
// window every weight is what it was.
func TestEnterLowersOthersAndRestores(t *testing.T) {
	containers := map[string]int{
		"cnl-r1-flannel-control-plane": 101, "cnl-r1-flannel-worker": 102, "cnl-r1-flannel-worker2": 103,
		"cnl-r1-cilium-control-plane": 201, "cnl-r1-cilium-worker": 202,
	}
	for _, v2 := range []bool{false, true} {
		name := "cgroup v1 cpu.shares"
		if v2 {
			name = "cgroup v2 cpu.weight"
		}
		t.Run(name, func(t *testing.T) {
			f, cg := fakeMachine(t, v2, containers)
			file := func(c string) string {
				if v2 {
					return filepath.Join(cg, "system.slice", "docker-"+c+".scope", "cpu.weight")
				}
				return filepath.Join(cg, "cpu", "docker", c, "cpu.shares")
			}
			low := "2"
			if v2 {
				low = "1"
			}
			what, restore, err := f.Enter(context.Background(), []string{"cnl-r1-flannel-worker", "cnl-r1-flannel-worker2"})
			must(t, err)
			if what != "3 other node containers at the lowest CPU weight" {
				t.Errorf("Enter said %q", what)
			}
			for c := range containers {
				want := low
				if strings.HasPrefix(c, "cnl-r1-flannel-worker") {
					want = "1024"
				}
				if got := weight(t, file(c)); got != want {
					t.Errorf("during the window %s weighs %s, want %s", c, got, want)
				}
			}
			must(t, restore())
			for c := range containers {
				if got := weight(t, file(c)); got != "1024" {
					t.Errorf("after the window %s weighs %s, want 1024", c, got)
				}
			}
		})
	}
}

// TestEnterWithoutContainers: a netns-only run has nothing to lower.
func TestEnterWithoutContainers(t *testing.T) {
	f, _ := fakeMachine(t, false, nil)
	what, restore, err := f.Enter(context.Background(), nil)
	if err != nil || what != "" {
		t.Fatalf("Enter = %q, %v", what, err)
	}
	must(t, restore())
}

// TestOtherRunsUntouched: docker's name filter is a regexp match; a
// container of another run that slipped through is still left alone.
func TestOtherRunsUntouched(t *testing.T) {
	f, cg := fakeMachine(t, false, map[string]int{"cnl-r1-flannel-worker": 1, "cnl-r10-flannel-worker": 2})
	_, restore, err := f.Enter(context.Background(), nil)
	must(t, err)
	defer restore()
	if got := weight(t, filepath.Join(cg, "cpu", "docker", "cnl-r10-flannel-worker", "cpu.shares")); got != "1024" {
		t.Errorf("another run's container was lowered to %s", got)
	}
	if got := weight(t, filepath.Join(cg, "cpu", "docker", "cnl-r1-flannel-worker", "cpu.shares")); got != "2" {
		t.Errorf("the run's own container weighs %s, want 2", got)
	}
}
