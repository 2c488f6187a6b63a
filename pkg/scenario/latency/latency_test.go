package latency

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/internal/labtest"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
)

func TestMain(m *testing.M) {
	probe.MaybeRunFromTest()
	os.Exit(m.Run())
}

func TestParseTest(t *testing.T) {
	for id, want := range map[string]Test{"drr": {Mode: "rr"}, "dcrr": {Mode: "crr"}, "srr": {Service: true, Mode: "rr"}, "scrr": {Service: true, Mode: "crr"}} {
		if got, err := ParseTest(id); err != nil || got != want {
			t.Errorf("%s → %+v %v", id, got, err)
		}
	}
	for _, id := range []string{"dts", "rr", "xrr", "dcr"} {
		if _, err := ParseTest(id); err == nil {
			t.Errorf("%s accepted", id)
		}
	}
}

// TestRealWindows measures rr and crr through a calico lab, direct and
// through its iptables Service, and through cilium's eBPF socket-LB.
func TestRealWindows(t *testing.T) {
	labs := labtest.New(t)
	r := &Runner{Settings: Settings{Transactions: 300, Window: 2 * time.Second}, Launcher: probe.TestLauncher()}
	for _, name := range []string{"calico", "cilium"} {
		in := labs.Up(name, 2)
		for _, test := range []string{"drr", "dcrr", "srr", "scrr"} {
			m := r.Measure(context.Background(), in, "latency", test, "cross-node", 1)
			if m.Error != "" {
				t.Fatalf("%s %s: %s", name, test, m.Error)
			}
			p50, p99 := m.Metrics[results.LatencyP50], m.Metrics[results.LatencyP99]
			if p50 <= 0 || p99 < p50 || m.Metrics[results.TransactionRate] <= 0 || len(m.Samples["latency_us"]) != 300 {
				t.Errorf("%s %s: p50 %.1f p99 %.1f rate %.0f samples %d", name, test, p50, p99, m.Metrics[results.TransactionRate], len(m.Samples["latency_us"]))
			}
			if test[0] == 's' && m.Proxy != in.Proxy {
				t.Errorf("%s %s: proxy %q, want %q", name, test, m.Proxy, in.Proxy)
			}
		}
	}
}
