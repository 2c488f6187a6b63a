package throughput

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/internal/labtest"
	"github.com/cnilab/cnilab/pkg/results"
)

func TestParseTest(t *testing.T) {
	cases := []struct {
		id      string
		svc     bool
		proto   string
		streams int
		bad     bool
	}{
		{id: "dts", proto: "tcp", streams: 1},
		{id: "dum", proto: "udp", streams: 8},
		{id: "stm", svc: true, proto: "tcp", streams: 8},
		{id: "sus", svc: true, proto: "udp", streams: 1},
		{id: "xts", bad: true}, {id: "dxs", bad: true}, {id: "dtx", bad: true}, {id: "dt", bad: true},
	}
	for _, tc := range cases {
		got, err := ParseTest(tc.id, 8)
		if tc.bad {
			if err == nil {
				t.Errorf("%s accepted", tc.id)
			}
			continue
		}
		if err != nil || got.Service != tc.svc || string(got.Protocol) != tc.proto || got.Streams != tc.streams {
			t.Errorf("%s → %+v, %v", tc.id, got, err)
		}
	}
}

// TestMeasureRealWindow runs real iperf3 windows through a flannel lab and
// checks every figure a report needs is there and plausible.
func TestMeasureRealWindow(t *testing.T) {
	labs := labtest.New(t, "iperf3")
	in := labs.Up("flannel", 2)
	r := &Runner{Settings: Settings{Seconds: 1, Omit: 1, Streams: 2}}
	for _, tc := range []struct {
		test, placement string
		want            []string
	}{
		{"dts", CrossNode, []string{results.ThroughputBps, results.Retransmits, results.CPUCores, results.MCPUPerGbit, results.PodMTU}},
		{"dum", SameNode, []string{results.ThroughputBps, results.UDPLossPct, results.UDPJitterMs, results.CPUCores}},
		{"idle", CrossNode, []string{results.CPUCores, results.MemUsedBytes}},
	} {
		m := r.Measure(context.Background(), in, "throughput", tc.test, tc.placement, 1)
		if m.Error != "" {
			t.Fatalf("%s: %s", tc.test, m.Error)
		}
		for _, k := range tc.want {
			if _, ok := m.Metrics[k]; !ok {
				t.Errorf("%s: metric %s missing (%v)", tc.test, k, m.Metrics)
			}
		}
		if tc.test != "idle" && m.Metrics[results.ThroughputBps] < 1e6 {
			t.Errorf("%s: %.0f bit/s", tc.test, m.Metrics[results.ThroughputBps])
		}
		if m.Provider != "netns" || m.Fidelity == "" || m.Fidelity != in.Fidelity {
			t.Errorf("%s: provider %q fidelity %q", tc.test, m.Provider, m.Fidelity)
		}
	}
	// Pinned, as compare runs by default: iperf3 -A on both ends, and the
	// window's per-CPU view covers every CPU.
	pinned := &Runner{Settings: Settings{Seconds: 1, Omit: 1, Streams: 2, PinCPUs: true}}
	if m := pinned.Measure(context.Background(), in, "throughput", "dtm", CrossNode, 1); m.Error != "" {
		t.Errorf("pinned dtm: %s", m.Error)
	} else if want := fmt.Sprintf("client cpu0, server cpu%d", runtime.NumCPU()-1); runtime.NumCPU() > 1 && m.Pinning != want || len(m.CPUs) < runtime.NumCPU() {
		t.Errorf("pinned dtm: pinning %q, %d CPUs in the window; want %q and every CPU", m.Pinning, len(m.CPUs), want)
	}
	for _, tc := range []struct{ test, placement string }{{"sts", CrossNode}, {"sus", SameNode}} {
		m := r.Measure(context.Background(), in, "throughput", tc.test, tc.placement, 1)
		if m.Error != "" {
			t.Fatalf("%s through %s: %s", tc.test, in.Proxy, m.Error)
		}
		if !strings.HasPrefix(m.Proxy, "iptables-") || m.Metrics[results.ThroughputBps] < 1e6 { // iptables-nft or iptables-legacy: the backend the binaries drive
			t.Errorf("%s: proxy %q, %.0f bit/s", tc.test, m.Proxy, m.Metrics[results.ThroughputBps])
		}
	}
	// Cilium's lab serves its ClusterIPs with the eBPF socket-LB: the client
	// connects to the VIP and the connect4 program sends it to the pod.
	cil := labs.Up("cilium", 2)
	if m := r.Measure(context.Background(), cil, "throughput", "sts", CrossNode, 1); m.Error != "" || m.Proxy != "ebpf" {
		t.Errorf("cilium sts: proxy %q error %q", m.Proxy, m.Error)
	}
	host := labs.Up("host", 0)
	if m := r.Measure(context.Background(), host, "throughput", "sts", CrossNode, 1); m.Error == "" {
		t.Error("service test on the host baseline (no proxy) did not fail")
	}
}
