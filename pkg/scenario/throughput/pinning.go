package throughput

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
)

// Unpinned is the Pinning of a window whose processes the scheduler placed.
const Unpinned = "unpinned"

// placement is where a window's client and server run.
type placement struct {
	client, server int // CPU numbers; -1 when unpinned
	// why says why a window asked to pin is not pinned.
	why string
}

func (p placement) pinned() bool { return p.client >= 0 && p.server >= 0 }

// String is the Measurement.Pinning text.
func (p placement) String() string {
	if !p.pinned() {
		if p.why != "" {
			return Unpinned + " (" + p.why + ")"
		}
		return Unpinned
	}
	return fmt.Sprintf("client cpu%d, server cpu%d", p.client, p.server)
}

// pinning decides the window's placement: with PinCPUs, the client on the
// lowest CPU its pod may use and the server on the highest CPU its pod may
// use, if those differ. The pods' CPU sets are read inside the pods: a netns
// pod inherits cnilab's own affinity, a kind pod its container's cpuset,
// and iperf3 fails outright when -A names a CPU outside it.
func (r *Runner) pinning(ctx context.Context, client, server lab.Pod) (placement, error) {
	none := placement{client: -1, server: -1}
	if !r.Settings.PinCPUs {
		return none, nil
	}
	cs, err := allowedCPUs(ctx, client)
	if err != nil {
		return none, err
	}
	ss, err := allowedCPUs(ctx, server)
	if err != nil {
		return none, err
	}
	c, s := cs[0], ss[len(ss)-1]
	if c == s {
		// Try the other way round before giving up: the client's highest
		// and the server's lowest.
		if alt := ss[0]; alt != cs[len(cs)-1] {
			c, s = cs[len(cs)-1], alt
		}
	}
	if c == s {
		none.why = fmt.Sprintf("client and server may only use cpu%d", c)
		return none, nil
	}
	return placement{client: c, server: s}, nil
}

// allowedCPUs is the CPU set a pod's processes may run on, from the
// Cpus_allowed_list of a process started in the pod. It is read before
// every window, outside it: a kind pod's cpuset can change with its node's
// CPU manager, and one exec is cheap next to a window.
func allowedCPUs(ctx context.Context, pod lab.Pod) ([]int, error) {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := pod.Exec().Run(cctx, command.Cmd{Name: "cat", Args: []string{"/proc/self/status"}})
	if err != nil {
		return nil, fmt.Errorf("CPU set of pod %s: %w", pod.Name(), err)
	}
	cpus, err := parseAllowedCPUs(string(out.Stdout))
	if err != nil {
		return nil, fmt.Errorf("CPU set of pod %s: %w", pod.Name(), err)
	}
	return cpus, nil
}

// parseAllowedCPUs reads the Cpus_allowed_list line ("0-3,6,8-9") of
// /proc/<pid>/status into sorted CPU numbers.
func parseAllowedCPUs(status string) ([]int, error) {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		var cpus []int
		for _, part := range strings.Split(strings.TrimSpace(v), ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return nil, fmt.Errorf("cpus_allowed_list %q: %w", strings.TrimSpace(v), err)
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil || b < a {
					return nil, fmt.Errorf("cpus_allowed_list %q: bad range %q", strings.TrimSpace(v), part)
				}
			}
			for c := a; c <= b; c++ {
				cpus = append(cpus, c)
			}
		}
		slices.Sort(cpus)
		return slices.Compact(cpus), nil
	}
	return nil, fmt.Errorf("no Cpus_allowed_list line in /proc/self/status")
}
