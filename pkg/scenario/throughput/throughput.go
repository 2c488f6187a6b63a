// Package throughput runs the iperf3 matrix (idle, [d|s][t|u][s|m]) in a
// lab: one measurement window per call, with machine-wide CPU sampled over
// the window's steady part. It knows iperf3 and nothing about how the lab
// was built.
package throughput

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/cpustat"
	"github.com/cnilab/cnilab/pkg/iperf"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/windowlock"
)

// Settings apply to every window of a run.
type Settings struct {
	Seconds int
	Omit    int
	Streams int
	// PinCPUs pins the iperf3 client to the lowest CPU its pod may use and
	// the server to the highest its pod may use, when those are two CPUs,
	// as if they ran on two machines. Without it the scheduler moves them
	// and their softirq work around: on a 2-vCPU machine, iperf3 before
	// 3.16 runs all streams in one thread, and whether client, server and
	// softirq share a CPU decides the figure, which shows up as bimodal
	// run-to-run noise.
	PinCPUs bool
}

// Test is a parsed test id.
type Test struct {
	ID       string
	Idle     bool
	Service  bool
	Protocol iperf.Protocol
	Streams  int
}

// ParseTest understands idle and [d|s][t|u][s|m].
func ParseTest(id string, multi int) (Test, error) {
	if id == "idle" {
		return Test{ID: id, Idle: true}, nil
	}
	if len(id) != 3 {
		return Test{}, fmt.Errorf("test %q: want idle or [d|s][t|u][s|m]", id)
	}
	t := Test{ID: id}
	switch id[0] {
	case 'd':
	case 's':
		t.Service = true
	default:
		return Test{}, fmt.Errorf("test %q: first letter must be d (pod IP) or s (service)", id)
	}
	switch id[1] {
	case 't':
		t.Protocol = iperf.TCP
	case 'u':
		t.Protocol = iperf.UDP
	default:
		return Test{}, fmt.Errorf("test %q: second letter must be t (TCP) or u (UDP)", id)
	}
	switch id[2] {
	case 's':
		t.Streams = 1
	case 'm':
		t.Streams = multi
	default:
		return Test{}, fmt.Errorf("test %q: third letter must be s (one stream) or m (%d streams)", id, multi)
	}
	return t, nil
}

// Runner measures windows.
type Runner struct {
	Settings Settings
	// ReadCPU reads the machine's CPU counters at the window's edges
	// (cpustat.ReadSnapshot when nil).
	ReadCPU cpustat.Reader
	// Lock keeps this window from overlapping any other cnilab window on
	// the machine (the zero value is the machine's lock).
	Lock windowlock.Lock
}

func (r *Runner) readCPU() (cpustat.Snapshot, error) {
	if r.ReadCPU != nil {
		return r.ReadCPU()
	}
	return cpustat.ReadSnapshot()
}

// Placement values.
const (
	CrossNode = string(lab.CrossNode)
	SameNode  = string(lab.SameNode)
)

// Workloads is what the tests ask of a lab: a pair per placement, and a
// Service per protocol the s-tests use.
func Workloads(tests, placements []string) lab.Workloads {
	var w lab.Workloads
	for _, p := range placements {
		w = w.Merge(lab.Workloads{Placements: []lab.Placement{lab.Placement(p)}})
	}
	for _, id := range tests {
		if t, err := ParseTest(id, 1); err == nil && t.Service {
			w = w.Merge(lab.Workloads{ServiceProtocols: []string{string(t.Protocol)}})
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
	t, err := ParseTest(testID, r.Settings.Streams)
	if err != nil {
		return err
	}
	if t.Idle {
		return r.idle(ctx, in, m)
	}
	client, server, err := in.Pair(lab.Placement(placement))
	if err != nil {
		return err
	}
	port := lab.ServicePort
	target := netip.AddrPortFrom(server.IP(), uint16(port))
	if t.Service {
		svc, err := in.Service(server, string(t.Protocol))
		if err != nil {
			return err
		}
		m.Proxy = in.Services()
		target = svc
	}
	pin, err := r.pinning(ctx, client, server)
	if err != nil {
		return err
	}
	m.Pinning = pin.String()
	serverArgs := iperf.ServerArgs(port)
	args := iperf.ClientArgs{Server: target.Addr().String(), Port: int(target.Port()), Protocol: t.Protocol, Streams: t.Streams, Seconds: r.Settings.Seconds, Omit: r.Settings.Omit}
	if pin.pinned() {
		// Each end pins itself (-A n on both sides) rather than the client
		// asking the server to: the server's CPU must be one its own pod
		// may use, which only the server's side was checked for.
		serverArgs = append(serverArgs, "-A", strconv.Itoa(pin.server))
		args.Affinity = strconv.Itoa(pin.client)
	}
	srv, err := server.Exec().Start(ctx, command.Cmd{Name: "iperf3", Args: serverArgs})
	if err != nil {
		return err
	}
	defer srv.Stop(2 * time.Second)
	w, err := r.runClient(ctx, client.Exec(), command.Cmd{Name: "iperf3", Args: args.Args()}, in.Footprinter)
	if err != nil {
		return err
	}
	res, cpu, fp := w.res, w.cpu, w.fp
	m.CPUs = w.cpus
	m.Metrics[results.ThroughputBps] = float64(res.Received)
	m.Metrics[results.SentBps] = float64(res.Sent)
	if t.Protocol == iperf.TCP {
		m.Metrics[results.Retransmits] = float64(res.Retransmits)
		// TCP delivers what it sends: a gap means the window's edges
		// (omit, shutdown) cut the two ends' counts differently.
		if gap := sentReceivedGap(res); gap > 2 {
			m.Flags = append(m.Flags, fmt.Sprintf("sender %.2f Gbit/s and receiver %.2f Gbit/s are %.1f %% apart", res.Sent.Gbps(), res.Received.Gbps(), gap))
		}
	} else {
		m.Metrics[results.UDPLossPct] = res.LostPercent
		m.Metrics[results.UDPJitterMs] = res.JitterMs
	}
	m.Metrics[results.CPUCores] = cpu.Cores
	m.Metrics[results.SoftirqCores] = cpu.SoftirqCores
	if g := res.Received.Gbps(); g > 0 {
		m.Metrics[results.MCPUPerGbit] = cpu.Cores * 1000 / g
	}
	if mtu := client.MTU(); mtu > 0 {
		m.Metrics[results.PodMTU] = float64(mtu)
	}
	if fp != nil {
		// The window's figures stay; a footprint that could not be read
		// (an agent restarted mid-window) still fails the window.
		return putFootprint(m, *fp)
	}
	return nil
}

// sample is one reading at a window's edge: machine CPU and, where the
// lab has one, the footprint of the CNI's pods.
type sample struct {
	cpu cpustat.Snapshot
	fp  *lab.FootprintSample
	err error
}

// readFootprint adds a footprint reading to s, if the lab has a
// footprinter, and says how long it took.
func (s *sample) readFootprint(ctx context.Context, fp lab.Footprinter) time.Duration {
	if fp == nil {
		return 0
	}
	begin := time.Now()
	r, err := fp.Footprint(ctx)
	if err != nil {
		s.err = errors.Join(s.err, fmt.Errorf("agent footprint: %w", err))
	} else {
		s.fp = &r
	}
	return time.Since(begin)
}

// sampler reads the window's edges: machine CPU startAt and endAt after
// it starts, and the lab's footprint, if it has one. A footprint reading
// takes a while (a docker exec per node) and is stamped with its middle,
// so the closing one starts early by the time the opening one took: both
// are centred inside the window. Once stop closes (the client ended before
// a late timer), it reads at once.
func sampler(ctx context.Context, read cpustat.Reader, fp lab.Footprinter, startAt, endAt time.Duration, stop <-chan struct{}) (first, last <-chan sample) {
	f, l := make(chan sample, 1), make(chan sample, 1)
	t0 := time.Now()
	wait := func(until time.Time) bool {
		timer := time.NewTimer(time.Until(until))
		defer timer.Stop()
		select {
		case <-timer.C:
			return true
		case <-stop:
			return false
		}
	}
	go func() {
		if !wait(t0.Add(startAt)) {
			f <- sample{err: errors.New("window ended early")}
			l <- sample{err: errors.New("window ended early")}
			return
		}
		var a sample
		a.cpu, a.err = read()
		took := a.readFootprint(ctx, fp)
		f <- a
		end := t0.Add(endAt)
		var b sample
		if fp != nil {
			wait(end.Add(-took))
			b.readFootprint(ctx, fp)
		}
		wait(end)
		c, err := read()
		b.cpu, b.err = c, errors.Join(b.err, err)
		l <- b
	}()
	return f, l
}

// window is what one client run yields: iperf3's figures, the machine's
// CPU over the steady part (in all and per CPU) and, where the lab has a
// footprinter, its pods' footprint.
type window struct {
	res  iperf.Result
	cpu  cpustat.Usage
	cpus []results.CPUWindow
	fp   *lab.Footprint
}

// runClient runs the client, retrying while the one-off server is not yet
// listening, and samples CPU (and the lab's footprint, when it has one)
// over the steady part of the window: from the end of the omitted warm-up
// to just before the end.
func (r *Runner) runClient(ctx context.Context, client command.Runner, cmd command.Cmd, fp lab.Footprinter) (window, error) {
	const attempts = 50
	var lastErr error
	for i := 0; i < attempts; i++ {
		startAt := time.Duration(r.Settings.Omit)*time.Second + 100*time.Millisecond
		endAt := time.Duration(r.Settings.Omit+r.Settings.Seconds)*time.Second - 50*time.Millisecond
		stop := make(chan struct{})
		first, last := sampler(ctx, r.readCPU, fp, startAt, endAt, stop)
		// Bound the client: its window plus generous slack.
		cctx, cancel := context.WithTimeout(ctx, time.Duration(r.Settings.Omit+r.Settings.Seconds)*time.Second+15*time.Second)
		out, err := client.Run(cctx, cmd)
		cancel()
		close(stop)
		a, b := <-first, <-last
		var ce *command.Error
		text := string(out.Stdout) + string(out.Stderr)
		if errors.As(err, &ce) {
			text = ce.Stdout + ce.Stderr
		}
		// The one-off server may not be listening yet: retry shortly.
		if notListening(text) && ctx.Err() == nil {
			lastErr = fmt.Errorf("attempt %d: server not listening yet", i+1)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			if ce != nil {
				if _, perr := iperf.Parse([]byte(ce.Stdout)); perr != nil && errors.Is(perr, iperf.ErrIperf) {
					return window{}, perr
				}
			}
			return window{}, err
		}
		w := window{}
		if w.res, err = iperf.Parse(out.Stdout); err != nil {
			return window{}, err
		}
		if a.err != nil || b.err != nil {
			return w, fmt.Errorf("window sample: %v; %v", a.err, b.err)
		}
		if w.cpu, err = cpustat.Between(a.cpu.Sample, b.cpu.Sample); err != nil {
			return w, err
		}
		if w.cpus, err = cpustat.PerCPU(a.cpu, b.cpu); err != nil {
			return w, err
		}
		if fp == nil {
			return w, nil
		}
		f, err := lab.FootprintBetween(*a.fp, *b.fp)
		if err != nil {
			return w, fmt.Errorf("agent footprint: %w", err)
		}
		w.fp = &f
		return w, nil
	}
	return window{}, fmt.Errorf("iperf3 server never listened: %w", lastErr)
}

// putFootprint records what the CNI's own pods used over the window:
// their sum (agent_*), each component (pods_*:<workload>, kube-proxy
// included where it runs) and the nodes as a whole (node_*).
func putFootprint(m *results.Measurement, f lab.Footprint) error {
	cni := f.CNI()
	if cni.Pods == 0 {
		return errors.New("agent footprint: no pod of the CNI was counted")
	}
	m.Metrics[results.AgentCPUCores] = cni.CPUCores
	m.Metrics[results.AgentMemBytes] = cni.WorkingSetBytes
	m.Metrics[results.NodeCPUCores] = f.Nodes.CPUCores
	m.Metrics[results.NodeMemBytes] = f.Nodes.WorkingSetBytes
	for _, c := range f.Components {
		m.Metrics[results.ComponentMetric(results.PodsCPUCores, c.Name)] = c.CPUCores
		m.Metrics[results.ComponentMetric(results.PodsMemBytes, c.Name)] = c.WorkingSetBytes
	}
	return nil
}

func notListening(out string) bool {
	return strings.Contains(out, "Connection refused")
}

// idle samples CPU and memory over the window with no traffic. In a
// netns lab no CNI agent runs, so this is the machine's own floor, kept so
// every run records it; where the CNI's pods run (kind) the window also
// reads their cgroups: the CNI's idle footprint, per component, with the
// nodes' totals beside it.
func (r *Runner) idle(ctx context.Context, in *lab.Instance, m *results.Measurement) error {
	var fa lab.FootprintSample
	if in.Footprinter != nil {
		var err error
		if fa, err = in.Footprinter.Footprint(ctx); err != nil {
			return fmt.Errorf("agent footprint: %w", err)
		}
	}
	a, err := r.readCPU()
	if err != nil {
		return err
	}
	select {
	case <-time.After(time.Duration(r.Settings.Seconds) * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	b, err := r.readCPU()
	if err != nil {
		return err
	}
	u, err := cpustat.Between(a.Sample, b.Sample)
	if err != nil {
		return err
	}
	if m.CPUs, err = cpustat.PerCPU(a, b); err != nil {
		return err
	}
	m.Pinning = Unpinned // nothing runs
	m.Metrics[results.CPUCores] = u.Cores
	mem, err := memUsed()
	if err != nil {
		return err
	}
	m.Metrics[results.MemUsedBytes] = mem
	if in.Footprinter == nil {
		return nil
	}
	fb, err := in.Footprinter.Footprint(ctx)
	if err != nil {
		return fmt.Errorf("agent footprint: %w", err)
	}
	f, err := lab.FootprintBetween(fa, fb)
	if err != nil {
		return fmt.Errorf("agent footprint: %w", err)
	}
	return putFootprint(m, f)
}

// memUsed is MemTotal − MemAvailable from /proc/meminfo.
func memUsed() (float64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	var total, avail float64
	var haveT, haveA bool
	for _, line := range strings.Split(string(data), "\n") {
		var v float64
		if _, err := fmt.Sscanf(line, "MemTotal: %f kB", &v); err == nil {
			total, haveT = v*1024, true
		}
		if _, err := fmt.Sscanf(line, "MemAvailable: %f kB", &v); err == nil {
			avail, haveA = v*1024, true
		}
	}
	if !haveT || !haveA {
		return 0, errors.New("/proc/meminfo lacks MemTotal or MemAvailable")
	}
	return total - avail, nil
}

// sentReceivedGap is |sent − received| / sent in percent.
func sentReceivedGap(r iperf.Result) float64 {
	if r.Sent <= 0 {
		return 0
	}
	d := float64(r.Sent - r.Received)
	if d < 0 {
		d = -d
	}
	return d / float64(r.Sent) * 100
}
