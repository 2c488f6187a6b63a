// Package cpufocus gives the lab being measured the machine's CPUs for the
// length of a window. Windows already run one at a time, but the other
// labs' kind clusters do not stop between them: three control planes
// (etcd, kube-apiserver, controllers, kubelets) and the other CNIs' agents
// keep waking up on the same two CPUs and land in whichever window is
// running, on netns and kind labs alike. Focus lowers the CPU weight of
// every node container of the run except the measured lab's workers for
// the window and restores the weights afterwards; the lab's own workers
// (its CNI agent, kube-proxy, the pods) keep theirs, since on a real
// cluster they share the node with the traffic. Control planes are
// lowered even for their own lab: on a real cluster they run elsewhere.
//
// It changes only weights, never limits: a lowered container still runs
// whenever a CPU is otherwise idle, so no lease or probe starves, and a
// window that needs no CPU from it loses nothing.
package cpufocus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cnilab/cnilab/pkg/command"
)

// Lowered weights: cgroup v1 cpu.shares' minimum, cgroup v2 cpu.weight's.
const (
	lowSharesV1 = "2"
	lowWeightV2 = "1"
)

// Focus tracks the node containers of one run (names starting with
// Prefix, "cnl-<run>-") and their CPU cgroups.
type Focus struct {
	Runner command.Runner
	// Prefix selects the run's containers; other runs' are never touched.
	Prefix string
	// Proc and Cgroup are /proc and /sys/fs/cgroup (tests point them
	// elsewhere).
	Proc, Cgroup string

	mu     sync.Mutex
	groups map[string]string // container name → weight file
}

// New is a Focus over the containers of run id on this machine.
func New(r command.Runner, runID string) *Focus {
	return &Focus{Runner: r, Prefix: "cnl-" + runID + "-", Proc: "/proc", Cgroup: "/sys/fs/cgroup"}
}

// discover finds the run's containers and each one's weight file.
func (f *Focus) discover(ctx context.Context) error {
	res, err := f.Runner.Run(ctx, command.Cmd{Name: "docker", Args: []string{"ps", "--filter", "name=^" + f.Prefix, "--format", "{{.Names}}"}})
	if err != nil {
		return fmt.Errorf("list the run's containers: %w", err)
	}
	var names []string
	for _, n := range strings.Fields(string(res.Stdout)) {
		if strings.HasPrefix(n, f.Prefix) {
			names = append(names, n)
		}
	}
	groups := map[string]string{}
	if len(names) > 0 {
		res, err = f.Runner.Run(ctx, command.Cmd{Name: "docker", Args: append([]string{"inspect", "-f", "{{.Name}} {{.State.Pid}}"}, names...)})
		if err != nil {
			return fmt.Errorf("find the containers' processes: %w", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
			name, pid, ok := strings.Cut(strings.TrimSpace(line), " ")
			if !ok {
				return fmt.Errorf("docker inspect: unexpected line %q", line)
			}
			name = strings.TrimPrefix(name, "/")
			if !strings.HasPrefix(name, f.Prefix) {
				continue
			}
			p, err := strconv.Atoi(pid)
			if err != nil || p <= 0 {
				return fmt.Errorf("docker inspect: container %s has no running process (pid %q)", name, pid)
			}
			file, err := f.weightFile(p)
			if err != nil {
				return fmt.Errorf("container %s: %w", name, err)
			}
			groups[name] = file
		}
	}
	f.groups = groups
	return nil
}

// weightFile is the CPU weight file of a process's cgroup: cpu.shares of
// the cgroup v1 cpu controller, else cpu.weight of the unified hierarchy.
func (f *Focus) weightFile(pid int) (string, error) {
	fh, err := os.Open(filepath.Join(f.Proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", err
	}
	defer fh.Close()
	unified := ""
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "cpu" {
				dir := "cpu"
				if parts[1] != "cpu" {
					dir = parts[1] // e.g. cpu,cpuacct mounted together
				}
				// The pair may be mounted as cpu,cpuacct, with cpu
				// a link to it.
				for _, d := range []string{dir, "cpu"} {
					p := filepath.Join(f.Cgroup, d, parts[2], "cpu.shares")
					if _, err := os.Stat(p); err == nil {
						return p, nil
					}
				}
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if unified != "" {
		p := filepath.Join(f.Cgroup, unified, "cpu.weight")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no cpu controller in /proc/%d/cgroup", pid)
}

// Enter lowers every container of the run except those named in keep
// (the measured lab's workers) and returns what it did, in words, and a
// restore function that puts every changed weight back (call it even on
// error; it is safe to call once). With no containers it does nothing.
func (f *Focus) Enter(ctx context.Context, keep []string) (string, func() error, error) {
	f.mu.Lock()
	if f.groups == nil {
		if err := f.discover(ctx); err != nil {
			f.mu.Unlock()
			return "", func() error { return nil }, err
		}
	}
	groups := f.groups
	f.mu.Unlock()
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	type saved struct{ file, value string }
	var changed []saved
	restore := func() error {
		var errs []error
		for _, s := range changed {
			if err := os.WriteFile(s.file, []byte(s.value), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		changed = nil
		return errors.Join(errs...)
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	var lowered []string
	for _, n := range names {
		if kept[n] {
			continue
		}
		file := groups[n]
		old, err := os.ReadFile(file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the container went away
			}
			return "", restore, errors.Join(err, restore())
		}
		low := lowSharesV1
		if filepath.Base(file) == "cpu.weight" {
			low = lowWeightV2
		}
		if err := os.WriteFile(file, []byte(low), 0o644); err != nil {
			return "", restore, errors.Join(fmt.Errorf("lower %s: %w", n, err), restore())
		}
		changed = append(changed, saved{file, strings.TrimSpace(string(old))})
		lowered = append(lowered, n)
	}
	if len(lowered) == 0 {
		return "", restore, nil
	}
	return fmt.Sprintf("%d other node containers at the lowest CPU weight", len(lowered)), restore, nil
}
