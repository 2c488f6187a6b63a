package throughput

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/cpustat"
	"github.com/cnilab/cnilab/pkg/iperf"
	"github.com/cnilab/cnilab/pkg/lab/labfake"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/windowlock"
)

// TestMeasureWindowOverPods drives one window through pods that are plain
// values (no namespaces, no cluster): the server starts in the server pod,
// the client in the client pod aimed at the pod IP or the Service, and the
// figures are iperf3's own from real captured output.
func TestMeasureWindowOverPods(t *testing.T) {
	out, err := os.ReadFile("../../iperf/testdata/tcp-8streams.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := iperf.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, test, placement, proxy string
		server, target               string
		wantErr                      string
	}{
		{name: "pod IP cross-node", test: "dtm", placement: CrossNode, server: "server-cross", target: "10.244.2.2"},
		{name: "pod IP same-node", test: "dtm", placement: SameNode, server: "server-same", target: "10.244.1.3"},
		{name: "Service cross-node", test: "stm", placement: CrossNode, proxy: "kube-proxy iptables", server: "server-cross", target: "10.96.0.10"},
		{name: "Service without a proxy", test: "stm", placement: CrossNode, wantErr: "lab has no service proxy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &command.Fake{Responses: map[string]command.FakeResponse{"iperf3": {Func: func(c command.Cmd) (command.Result, error) {
				if slices.Contains(c.Args, "-s") {
					return command.Result{}, nil
				}
				// The client lasts its window, so the CPU samples land in it.
				time.Sleep(1100 * time.Millisecond)
				return command.Result{Stdout: out}, nil
			}}}}
			in := labfake.Lab(f, tc.proxy)
			r := &Runner{Settings: Settings{Seconds: 1, Streams: 8}, Lock: testLock(t)}
			m := r.Measure(context.Background(), in, "throughput", tc.test, tc.placement, 1)
			if tc.wantErr != "" {
				if !strings.Contains(m.Error, tc.wantErr) {
					t.Fatalf("error %q, want %q", m.Error, tc.wantErr)
				}
				return
			}
			if m.Error != "" {
				t.Fatal(m.Error)
			}
			var server, client *command.Cmd
			for i, c := range f.Calls {
				if slices.Contains(c.Args, "-s") {
					server = &f.Calls[i]
				} else {
					client = &f.Calls[i]
				}
			}
			if server == nil || client == nil {
				t.Fatalf("calls %v: want one server and one client", f.Calls)
			}
			if got := labfake.PodOf(*server); got != tc.server {
				t.Errorf("server ran in %q, want %q", got, tc.server)
			}
			if got := labfake.PodOf(*client); got != "client" {
				t.Errorf("client ran in %q", got)
			}
			if i := slices.Index(client.Args, "-c"); i < 0 || client.Args[i+1] != tc.target {
				t.Errorf("client args %v, want -c %s", client.Args, tc.target)
			}
			if got := m.Metrics[results.ThroughputBps]; got != float64(want.Received) {
				t.Errorf("throughput %v, want iperf3's %v", got, float64(want.Received))
			}
			if m.Metrics[results.PodMTU] != 1450 || m.Provider != "fake" || m.Fidelity != results.Real {
				t.Errorf("measurement %+v lacks the pod MTU, provider or fidelity", m)
			}
			if tc.proxy != "" && m.Proxy != tc.proxy {
				t.Errorf("proxy %q, want %q", m.Proxy, tc.proxy)
			}
		})
	}
}

// testLock is a window lock of the test's own, so unit tests neither wait
// for nor hold up real measurement windows on the machine.
func testLock(t *testing.T) windowlock.Lock {
	return windowlock.Lock{Path: filepath.Join(t.TempDir(), "window.lock"), Wait: 5 * time.Second}
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	out, err := os.ReadFile(filepath.Join("../../iperf/testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fakeCPU is a CPU reader whose counters are set by the test. It records
// when each reading happened, relative to the client's start.
type fakeCPU struct {
	mu       sync.Mutex
	snaps    []cpustat.Snapshot
	at       []time.Duration
	clientAt time.Time
}

func (f *fakeCPU) read() (cpustat.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := len(f.at)
	f.at = append(f.at, time.Since(f.clientAt))
	if i >= len(f.snaps) {
		return cpustat.Snapshot{}, errors.New("fake /proc/stat: no more readings")
	}
	return f.snaps[i], nil
}

func (f *fakeCPU) started() {
	f.mu.Lock()
	f.clientAt = time.Now()
	f.mu.Unlock()
}

// twoCPUs is a reading of two CPUs; busy, softirq and idle ticks per CPU,
// NET_RX per CPU.
func twoCPUs(at time.Time, busy, soft, idle, netRx [2]uint64) cpustat.Snapshot {
	s := cpustat.Snapshot{Sample: cpustat.Sample{At: at, Busy: busy[0] + busy[1], Idle: idle[0] + idle[1], Softirq: soft[0] + soft[1]}}
	for i := range 2 {
		s.CPUs = append(s.CPUs, cpustat.CPU{CPU: i, Busy: busy[i], Idle: idle[i], Softirq: soft[i], NetRx: netRx[i]})
	}
	return s
}

// iperfFake answers the server with success and the client with client(n)
// for its n-th call (from 1), after sleeping for the client's window.
func iperfFake(cpu *fakeCPU, window time.Duration, client func(n int) (command.Result, error)) *command.Fake {
	var mu sync.Mutex
	calls := 0
	return &command.Fake{Responses: map[string]command.FakeResponse{
		"iperf3": {Func: func(c command.Cmd) (command.Result, error) {
			if slices.Contains(c.Args, "-s") {
				return command.Result{}, nil
			}
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if cpu != nil {
				cpu.started()
			}
			res, err := client(n)
			if err == nil {
				time.Sleep(window)
			}
			return res, err
		}},
		"cat": {Stdout: "Name:\tcat\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n"},
	}}
}

func clientCalls(f *command.Fake) []command.Cmd {
	var out []command.Cmd
	for _, c := range f.Calls {
		if c.Name == "iperf3" && !slices.Contains(c.Args, "-s") {
			out = append(out, c)
		}
	}
	return out
}

// TestWindowCPUIsTheSteadyPart: the machine's CPU is read after the omitted
// warm-up and just before the window's end, never during the warm-up or
// after the client finished; the figures come from those two readings: cores
// = busy ticks / 100 / seconds, mCPU per Gbit/s from iperf3's received rate,
// and the per-CPU view of the same two readings.
func TestWindowCPUIsTheSteadyPart(t *testing.T) {
	t.Parallel()
	out := testdata(t, "tcp-8streams.json")
	want, err := iperf.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	cpu := &fakeCPU{snaps: []cpustat.Snapshot{
		twoCPUs(t0, [2]uint64{1000, 2000}, [2]uint64{100, 300}, [2]uint64{500, 500}, [2]uint64{10, 20}),
		// 2 s later: cpu0 +150 busy (+50 softirq) +50 idle; cpu1 +200 busy
		// (+120 softirq), no idle; NET_RX +4000 and +9000.
		twoCPUs(t0.Add(2*time.Second), [2]uint64{1150, 2200}, [2]uint64{150, 420}, [2]uint64{550, 500}, [2]uint64{4010, 9020}),
	}}
	// The client outlasts its window by 550 ms, so a reading taken when
	// the client ends, not at the window's end, is told apart even on a
	// loaded machine.
	f := iperfFake(cpu, 2500*time.Millisecond, func(int) (command.Result, error) { return command.Result{Stdout: out}, nil })
	r := &Runner{Settings: Settings{Seconds: 1, Omit: 1, Streams: 8}, ReadCPU: cpu.read, Lock: testLock(t)}
	m := r.Measure(context.Background(), labfake.Lab(f, ""), "throughput", "dtm", CrossNode, 1)
	if m.Error != "" {
		t.Fatal(m.Error)
	}
	if len(cpu.at) != 2 {
		t.Fatalf("%d CPU readings, want 2 (window start and end)", len(cpu.at))
	}
	// Omit 1 s + 100 ms settle; end at 2 s − 50 ms; the client lasts 2.5 s.
	// The window's clock starts as the client is launched, a little before
	// the fake client notes its own start, so the bounds allow 100 ms of
	// launch lag on a loaded machine.
	if first := cpu.at[0]; first < 1000*time.Millisecond || first > 1600*time.Millisecond {
		t.Errorf("first reading %v after the client started, want just after the 1 s warm-up", first)
	}
	if last := cpu.at[1]; last < 1850*time.Millisecond || last >= 2500*time.Millisecond {
		t.Errorf("last reading %v after the client started, want just before its 2 s end", last)
	}
	gbps := want.Received.Gbps()
	metrics := map[string]float64{
		results.CPUCores:      350.0 / 100 / 2, // 1.75 cores
		results.SoftirqCores:  170.0 / 100 / 2,
		results.MCPUPerGbit:   1750 / gbps,
		results.ThroughputBps: float64(want.Received),
		results.SentBps:       float64(want.Sent),
		results.Retransmits:   float64(want.Retransmits),
	}
	for k, v := range metrics {
		if got, ok := m.Metrics[k]; !ok || math.Abs(got-v) > 1e-9*math.Max(1, v) {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	wantCPUs := []results.CPUWindow{
		{CPU: 0, BusyPct: 75, SoftirqPct: 25, NetRx: 4000},
		{CPU: 1, BusyPct: 100, SoftirqPct: 60, NetRx: 9000},
	}
	if d := cmp.Diff(wantCPUs, m.CPUs); d != "" {
		t.Errorf("per-CPU window (-want +got):\n%s", d)
	}
	if m.Pinning != Unpinned || len(m.Flags) != 0 {
		t.Errorf("pinning %q flags %v, want unpinned and no flags", m.Pinning, m.Flags)
	}
}

// TestWindowRetriesRefusedConnects: the one-off server may not listen yet
// when the client starts; "Connection refused" is retried, and the window
// that finally runs is the one measured. A server that never listens fails
// the window with that reason.
func TestWindowRetriesRefusedConnects(t *testing.T) {
	t.Parallel()
	out := testdata(t, "tcp-1stream.json")
	refused := &command.Error{Cmd: "iperf3", Stderr: "iperf3: error - unable to connect to server - server may not be listening: Connection refused", Err: errors.New("exit status 1")}
	for _, tc := range []struct {
		name       string
		refusals   int
		wantCalls  int
		wantErrSub string
	}{
		{name: "listens on the third try", refusals: 2, wantCalls: 3},
		{name: "never listens", refusals: 1000, wantCalls: 50, wantErrSub: "iperf3 server never listened"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := iperfFake(nil, 1100*time.Millisecond, func(n int) (command.Result, error) {
				if n <= tc.refusals {
					return command.Result{}, refused
				}
				return command.Result{Stdout: out}, nil
			})
			r := &Runner{Settings: Settings{Seconds: 1, Streams: 1}, Lock: testLock(t)}
			m := r.Measure(context.Background(), labfake.Lab(f, ""), "throughput", "dts", CrossNode, 1)
			if got := len(clientCalls(f)); got != tc.wantCalls {
				t.Errorf("%d client runs, want %d", got, tc.wantCalls)
			}
			if tc.wantErrSub != "" {
				if !strings.Contains(m.Error, tc.wantErrSub) || len(m.Metrics) != 0 {
					t.Fatalf("error %q metrics %v, want %q and no figures", m.Error, m.Metrics, tc.wantErrSub)
				}
				return
			}
			if m.Error != "" || m.Metrics[results.ThroughputBps] <= 0 || len(m.CPUs) == 0 {
				t.Fatalf("error %q, throughput %v, %d CPUs", m.Error, m.Metrics[results.ThroughputBps], len(m.CPUs))
			}
		})
	}
}

// TestWindowIperf3Errors: what iperf3 itself reports is the window's error
// (not a zero figure, and not a retry); a failed run without JSON keeps the
// command's own error; output that is not iperf3's fails the parse.
func TestWindowIperf3Errors(t *testing.T) {
	t.Parallel()
	unreachable := string(testdata(t, "error-unreachable.json"))
	for _, tc := range []struct {
		name   string
		res    command.Result
		err    error
		errSub string
	}{
		{name: "iperf3's own error", err: &command.Error{Cmd: "iperf3", Stdout: unreachable, Err: errors.New("exit status 1")}, errSub: "No route to host"},
		{name: "killed without output", err: &command.Error{Cmd: "iperf3", Err: errors.New("signal: killed")}, errSub: "signal: killed"},
		{name: "not JSON", res: command.Result{Stdout: []byte("iperf 3.12\n")}, errSub: "not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := iperfFake(nil, 0, func(int) (command.Result, error) { return tc.res, tc.err })
			r := &Runner{Settings: Settings{Seconds: 1, Streams: 1}, Lock: testLock(t)}
			m := r.Measure(context.Background(), labfake.Lab(f, ""), "throughput", "dts", CrossNode, 1)
			if !strings.Contains(m.Error, tc.errSub) {
				t.Errorf("error %q, want %q", m.Error, tc.errSub)
			}
			if _, ok := m.Metrics[results.ThroughputBps]; ok {
				t.Errorf("a failed window has a throughput figure: %v", m.Metrics)
			}
			if n := len(clientCalls(f)); n != 1 {
				t.Errorf("%d client runs, want 1 (no retry)", n)
			}
		})
	}
}

// TestWindowMetricDerivation: TCP windows flag a sender/receiver gap above
// 2 %; UDP windows keep loss and jitter and no retransmits.
func TestWindowMetricDerivation(t *testing.T) {
	t.Parallel()
	gapped := func() []byte {
		var doc map[string]any
		if err := json.Unmarshal(testdata(t, "tcp-1stream.json"), &doc); err != nil {
			t.Fatal(err)
		}
		end := doc["end"].(map[string]any)
		sent := end["sum_sent"].(map[string]any)["bits_per_second"].(float64)
		end["sum_received"].(map[string]any)["bits_per_second"] = sent * 0.95
		out, _ := json.Marshal(doc)
		return out
	}()
	udp := testdata(t, "udp-1stream.json")
	for _, tc := range []struct {
		name, test string
		out        []byte
		want       []string
		absent     []string
		flag       string
	}{
		{name: "TCP with a 5 % gap", test: "dts", out: gapped, want: []string{results.ThroughputBps, results.SentBps, results.Retransmits}, absent: []string{results.UDPLossPct}, flag: "5.0 % apart"},
		{name: "UDP", test: "dus", out: udp, want: []string{results.ThroughputBps, results.SentBps, results.UDPLossPct, results.UDPJitterMs}, absent: []string{results.Retransmits}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := iperfFake(nil, 1100*time.Millisecond, func(int) (command.Result, error) { return command.Result{Stdout: tc.out}, nil })
			r := &Runner{Settings: Settings{Seconds: 1, Streams: 1}, Lock: testLock(t)}
			m := r.Measure(context.Background(), labfake.Lab(f, ""), "throughput", tc.test, CrossNode, 1)
			if m.Error != "" {
				t.Fatal(m.Error)
			}
			for _, k := range tc.want {
				if _, ok := m.Metrics[k]; !ok {
					t.Errorf("metric %s missing: %v", k, m.Metrics)
				}
			}
			for _, k := range tc.absent {
				if _, ok := m.Metrics[k]; ok {
					t.Errorf("metric %s present in a %s window", k, tc.test)
				}
			}
			if tc.flag == "" && len(m.Flags) != 0 || tc.flag != "" && (len(m.Flags) != 1 || !strings.Contains(m.Flags[0], tc.flag)) {
				t.Errorf("flags %q, want %q", m.Flags, tc.flag)
			}
		})
	}
}

// TestWindowPinning: by default each end pins itself to a CPU its pod may
// use, the client the lowest, the server the highest, and the window says
// so; pods confined to one CPU run unpinned and say why; a pod whose CPU
// set cannot be read fails the window rather than guessing.
func TestWindowPinning(t *testing.T) {
	t.Parallel()
	out := testdata(t, "tcp-8streams.json")
	status := func(list string) string { return "Name:\tcat\nCpus_allowed_list:\t" + list + "\n" }
	for _, tc := range []struct {
		name                   string
		pin                    bool
		client, server         string // Cpus_allowed_list per pod ("" = cat fails)
		wantClient, wantServer string // -A values, "" = none
		wantPinning, wantErr   string
	}{
		{name: "two CPUs", pin: true, client: "0-1", server: "0-1", wantClient: "0", wantServer: "1", wantPinning: "client cpu0, server cpu1"},
		{name: "four CPUs, sparse", pin: true, client: "0,2-3", server: "0,2-3", wantClient: "0", wantServer: "3", wantPinning: "client cpu0, server cpu3"},
		{name: "pods on disjoint cpusets", pin: true, client: "2", server: "1", wantClient: "2", wantServer: "1", wantPinning: "client cpu2, server cpu1"},
		{name: "one CPU", pin: true, client: "0", server: "0", wantPinning: "unpinned (client and server may only use cpu0)"},
		{name: "opted out", pin: false, client: "0-1", server: "0-1", wantPinning: "unpinned"},
		{name: "CPU set unreadable", pin: true, client: "", server: "0-1", wantErr: "CPU set of pod client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := iperfFake(nil, 1100*time.Millisecond, func(int) (command.Result, error) { return command.Result{Stdout: out}, nil })
			f.Responses["cat"] = command.FakeResponse{Func: func(c command.Cmd) (command.Result, error) {
				list := tc.server
				if labfake.PodOf(c) == "client" {
					list = tc.client
				}
				if list == "" {
					return command.Result{}, &command.Error{Cmd: "cat", Err: errors.New("exec: not found")}
				}
				return command.Result{Stdout: []byte(status(list))}, nil
			}}
			r := &Runner{Settings: Settings{Seconds: 1, Streams: 8, PinCPUs: tc.pin}, Lock: testLock(t)}
			m := r.Measure(context.Background(), labfake.Lab(f, ""), "throughput", "dtm", CrossNode, 1)
			if tc.wantErr != "" {
				if !strings.Contains(m.Error, tc.wantErr) {
					t.Fatalf("error %q, want %q", m.Error, tc.wantErr)
				}
				return
			}
			if m.Error != "" {
				t.Fatal(m.Error)
			}
			affinity := func(c command.Cmd) string {
				if i := slices.Index(c.Args, "-A"); i >= 0 {
					return c.Args[i+1]
				}
				return ""
			}
			var server, client string
			for _, c := range f.Calls {
				if c.Name != "iperf3" {
					continue
				}
				if slices.Contains(c.Args, "-s") {
					server = affinity(c)
				} else {
					client = affinity(c)
				}
			}
			if client != tc.wantClient || server != tc.wantServer {
				t.Errorf("client -A %q server -A %q, want %q and %q", client, server, tc.wantClient, tc.wantServer)
			}
			if m.Pinning != tc.wantPinning {
				t.Errorf("pinning %q, want %q", m.Pinning, tc.wantPinning)
			}
		})
	}
}

// TestWindowWaitsForTheMachineLock: a window does not start while another
// window holds the machine's lock, and one that cannot get it in time
// fails naming the holder, without running anything.
func TestWindowWaitsForTheMachineLock(t *testing.T) {
	t.Parallel()
	lock := testLock(t)
	held, err := lock.Acquire(context.Background(), "throughput calico dtm cross-node r1")
	if err != nil {
		t.Fatal(err)
	}
	out := testdata(t, "tcp-1stream.json")
	f := iperfFake(nil, 1100*time.Millisecond, func(int) (command.Result, error) { return command.Result{Stdout: out}, nil })
	short := lock
	short.Wait = 200 * time.Millisecond
	r := &Runner{Settings: Settings{Seconds: 1, Streams: 1}, Lock: short}
	m := r.Measure(context.Background(), labfake.Lab(f, ""), "throughput", "dts", CrossNode, 1)
	if !strings.Contains(m.Error, "throughput calico dtm cross-node r1") || len(f.Calls) != 0 {
		t.Fatalf("error %q after %d commands, want the holder named and nothing run", m.Error, len(f.Calls))
	}
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		released <- time.Now()
		held.Release()
	}()
	r.Lock = lock
	m = r.Measure(context.Background(), labfake.Lab(f, ""), "throughput", "dts", CrossNode, 1)
	if m.Error != "" {
		t.Fatal(m.Error)
	}
	if at := <-released; m.Started.Before(at) {
		t.Errorf("window started %v before the other window released the lock", at.Sub(m.Started))
	}
}
