// Package latency measures request/response latency between pods (rr) and
// whole connect/request/response transactions (crr), to a pod IP or through
// the lab's Service proxy, with cnilab's own probe run inside the pods.
package latency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/cpustat"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/stats"
	"github.com/cnilab/cnilab/pkg/windowlock"
)

// Settings bound every window.
type Settings struct {
	Transactions int
	Window       time.Duration
}

// Runner measures latency windows.
type Runner struct {
	Settings Settings
	Launcher probe.Launcher
	// ReadCPU reads the machine's CPU counters around the window
	// (cpustat.ReadSnapshot when nil).
	ReadCPU cpustat.Reader
	// Lock keeps this window from overlapping any other cnilab window on
	// the machine (the zero value is the machine's lock).
	Lock windowlock.Lock
}

// Test is a parsed latency test id: [d|s](rr|crr).
type Test struct {
	Service bool
	Mode    string // rr or crr
}

// ParseTest understands drr, dcrr, srr, scrr.
func ParseTest(id string) (Test, error) {
	if len(id) < 3 || (id[0] != 'd' && id[0] != 's') || (id[1:] != "rr" && id[1:] != "crr") {
		return Test{}, fmt.Errorf("test %q: want [d|s]rr or [d|s]crr", id)
	}
	return Test{Service: id[0] == 's', Mode: id[1:]}, nil
}

// Workloads is what the tests ask of a lab: a pair per placement and, for
// s-tests, a TCP Service.
func Workloads(tests, placements []string) lab.Workloads {
	var w lab.Workloads
	for _, p := range placements {
		w = w.Merge(lab.Workloads{Placements: []lab.Placement{lab.Placement(p)}})
	}
	for _, id := range tests {
		if t, err := ParseTest(id); err == nil && t.Service {
			w = w.Merge(lab.Workloads{ServiceProtocols: []string{"tcp"}})
		}
	}
	return w
}

// Measure runs one window, once no other window runs on the machine.
func (r *Runner) Measure(ctx context.Context, in *lab.Instance, scenario, testID, placement string, repeat int) results.Measurement {
	held, lerr := r.Lock.Acquire(ctx, fmt.Sprintf("%s %s %s %s r%d", scenario, in.Name, testID, placement, repeat))
	defer held.Release()
	return in.Measure(scenario, testID, placement, repeat, func(m *results.Measurement) error {
		if lerr != nil {
			return lerr
		}
		return r.measure(ctx, in, testID, placement, m)
	})
}

func (r *Runner) measure(ctx context.Context, in *lab.Instance, testID, placement string, m *results.Measurement) error {
	t, err := ParseTest(testID)
	if err != nil {
		return err
	}
	client, server, err := in.Pair(lab.Placement(placement))
	if err != nil {
		return err
	}
	target := fmt.Sprintf("%s:%d", server.IP(), lab.ServicePort)
	if t.Service {
		svc, err := in.Service(server, "tcp")
		if err != nil {
			return err
		}
		m.Proxy = in.Services()
		target = svc.String()
	}
	// The probe is the cnilab binary: this one where pods share the
	// machine's filesystem, the bench image's on a cluster.
	launcher := r.Launcher
	if in.Probe != nil {
		launcher = *in.Probe
	}
	// The echo server lives a little longer than the window, and is
	// stopped as soon as the window ends.
	life := r.Settings.Window + 10*time.Second
	echo := launcher.Cmd("echo", "-listen", fmt.Sprintf("0.0.0.0:%d", lab.ServicePort), "-duration", life.String())
	srv, err := server.Exec().Start(ctx, echo)
	if err != nil {
		return err
	}
	defer srv.Stop(2 * time.Second)
	run := func(count int, window time.Duration) (probe.ConnectResult, error) {
		cmd := launcher.Cmd("rr", "-target", target, "-mode", t.Mode, "-count", strconv.Itoa(count), "-duration", window.String())
		cctx, cancel := context.WithTimeout(ctx, window+15*time.Second)
		defer cancel()
		out, err := client.Exec().Run(cctx, cmd)
		if err != nil {
			return probe.ConnectResult{}, err
		}
		return probe.ParseConnectResult(out.Stdout)
	}
	// Wait, bounded, until one transaction succeeds: the echo server is
	// listening and the path is warm. Only then does the window start, so
	// it never counts connects to a server that was not up yet.
	ready := false
	for attempt := 0; attempt < 100 && ctx.Err() == nil; attempt++ {
		res, err := run(1, time.Second)
		if err != nil {
			return err
		}
		if res.OK == 1 {
			ready = true
			break
		}
		if !refused(res.Errors) {
			return fmt.Errorf("echo server unreachable: %v", res.Errors)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !ready {
		return errors.New("echo server never listened")
	}
	read := r.ReadCPU
	if read == nil {
		read = cpustat.ReadSnapshot
	}
	before, err := read()
	if err != nil {
		return err
	}
	res, err := run(r.Settings.Transactions, r.Settings.Window)
	if err != nil {
		return err
	}
	after, err := read()
	if err != nil {
		return err
	}
	// A window of a few milliseconds has no per-CPU share to show; the
	// figures stand without it.
	if m.CPUs, err = cpustat.PerCPU(before, after); err != nil && !errors.Is(err, cpustat.ErrNoTicks) {
		return err
	}
	// The probe's client and echo server are not pinned: one connection
	// at a time keeps one CPU busy at most, and the kernel keeps a
	// connection's softirq work where the socket lives.
	m.Pinning = "unpinned"
	if res.OK == 0 {
		return fmt.Errorf("no transaction succeeded: %v", res.Errors)
	}
	for name, q := range map[string]float64{results.LatencyP50: 50, results.LatencyP90: 90, results.LatencyP99: 99} {
		v, err := stats.Percentile(res.SamplesUS, q)
		if err != nil {
			return err
		}
		m.Metrics[name] = v
	}
	m.Metrics[results.TransactionRate] = res.Rate()
	m.Metrics[results.ConnectFailed] = float64(res.Failed)
	m.Samples = map[string][]float64{"latency_us": res.SamplesUS}
	if res.Failed > 0 {
		// Failed transactions are kept visible, not silently dropped.
		m.Error = fmt.Sprintf("%d of %d transactions failed: %v", res.Failed, res.Attempts, res.Errors)
	}
	return nil
}

func refused(errs map[string]int) bool {
	for e := range errs {
		if strings.Contains(e, "connection refused") {
			return true
		}
	}
	return false
}
