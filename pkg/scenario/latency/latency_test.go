package latency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/netns"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/scenarios"
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
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds a network-namespace lab")
	}
	caps, err := kernelcap.Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	p := netns.New(caps, command.Exec{})
	r := &Runner{Settings: Settings{Transactions: 300, Window: 2 * time.Second}, Launcher: probe.TestLauncher()}
	for _, name := range []string{"calico", "cilium"} {
		in, err := p.Up(context.Background(), lab.Spec{Def: set.Labs[name], RunID: "l" + hex.EncodeToString(b[:]), Nodes: 2, PodsPerNode: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Down(context.Background(), in) })
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
