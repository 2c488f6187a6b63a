package policy

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/labfake"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/windowlock"
)

type fakeWindow struct{}

func (fakeWindow) Measure(_ context.Context, in *lab.Instance, scenario, test, placement string, repeat int) results.Measurement {
	return in.Measure(scenario, test, placement, repeat, func(m *results.Measurement) error {
		m.Metrics[results.ThroughputBps] = 9e9
		return nil
	})
}

func TestCostPoliciesMix(t *testing.T) {
	ps := CostPolicies("cnilab", 1000)
	if len(ps) != 1000 || ps[0].Name != "cnl-cost-deny" || ps[1].Name != "cnl-cost-allow" {
		t.Fatalf("%d policies, first %s, %s", len(ps), ps[0].Name, ps[1].Name)
	}
	names, onServer := map[string]bool{}, 0
	for _, p := range ps {
		if names[p.Name] {
			t.Errorf("duplicate policy %s", p.Name)
		}
		names[p.Name] = true
		if p.Spec.PodSelector.MatchLabels[lab.BenchRoleLabel] == "server" {
			onServer++
		}
	}
	if onServer < 200 || onServer > 300 {
		t.Errorf("%d of 1000 policies select the server, want about a quarter", onServer)
	}
	if CostPolicies("cnilab", 0) != nil {
		t.Error("K=0 has policies")
	}
}

// TestMeasureCost runs K=0 and K=10 on the reference CNI (the pair holds,
// programming is timed, the ratio to K=0 is there) and on one that denies
// nothing (measured anyway, flagged, no programming time).
func TestMeasureCost(t *testing.T) {
	for _, mode := range []string{"spec", "none"} {
		t.Run(mode, func(t *testing.T) {
			target, fake := fakeTarget(mode)
			lockPath := filepath.Join(t.TempDir(), "window.lock")
			r := &command.Fake{Responses: map[string]command.FakeResponse{"cnilab": {Func: func(c command.Cmd) (command.Result, error) {
				if slices.Contains(c.Args, "connect") {
					// While the probe runs, no other window may start.
					if h, err := (windowlock.Lock{Path: lockPath, Wait: 20 * time.Millisecond}).Acquire(context.Background(), "other"); err == nil {
						h.Release()
						t.Error("the connect window ran without the window lock")
					}
					return command.Result{Stdout: []byte(`{"target":"10.244.2.5:5202","mode":"latency","attempts":3,"ok":3,"failed":0,"elapsed_s":0.01,"samples_us":[100,120,140],"stopped":"count"}` + "\n")}, nil
				}
				return command.Result{}, nil
			}}}}
			server := target.Server.(*labfake.Pod)
			server.Runner = r
			peer := target.Sources[SrcPeer].(*labfake.Pod)
			peer.Runner = r
			in := &lab.Instance{Name: "fake", Provider: "fake", Fidelity: results.Real, Proxy: "kube-proxy iptables", Policy: fake,
				Pairs: map[lab.Placement]lab.PodPair{lab.CrossNode: {Client: peer, Server: server}},
				Peers: map[string]lab.Pod{ClientNamespace + "/client": target.Sources[SrcClient], OtherNamespace + "/other": target.Sources[SrcOther]}}
			var clock time.Time
			pr := &Runner{Settings: Settings{ConvergeTimeout: 2 * time.Second, Poll: time.Second}, Prober: fake, Launcher: probe.Launcher{Path: "cnilab"},
				Now: func() time.Time { clock = clock.Add(10 * time.Millisecond); return clock }, Sleep: func(d time.Duration) { clock = clock.Add(d) }}
			focused, restored := 0, 0
			cr := &CostRunner{Runner: pr, Counts: []int{10, 0}, Connects: 3, Window: time.Second, Throughput: fakeWindow{},
				Lock: windowlock.Lock{Path: lockPath, Wait: 5 * time.Second},
				Focus: func(context.Context, *lab.Instance) (string, func() error, error) {
					focused++
					return "2 other node containers at the lowest CPU weight", func() error { restored++; return nil }, nil
				}}
			ms := cr.MeasureCost(context.Background(), in, 1)
			var tests []string
			by := map[string]results.Measurement{}
			for _, m := range ms {
				tests = append(tests, m.Test)
				by[m.Test] = m
				if m.Error != "" {
					t.Errorf("%s: %s", m.Test, m.Error)
				}
			}
			if want := []string{"k0-connect", "k0-dts", "k0-sts", "k10-connect", "k10-dts", "k10-sts"}; !slices.Equal(tests, want) {
				t.Fatalf("tests %v, want %v", tests, want)
			}
			k10 := by["k10-connect"]
			// The connect probe is a measurement window like any other:
			// focused, and the focus undone, once per K.
			if focused != 2 || restored != 2 || k10.Focus != "2 other node containers at the lowest CPU weight" {
				t.Errorf("focus entered %d, restored %d, recorded %q", focused, restored, k10.Focus)
			}
			if k10.Metrics[results.FirstPacketP50] != 120 || k10.Metrics[FirstP50Ratio] != 1 || k10.Params["policies"] != "10" || by["k10-dts"].Params["policies"] != "10" {
				t.Errorf("k10: %v %v", k10.Metrics, k10.Params)
			}
			_, programmed := k10.Metrics[ProgramS]
			switch mode {
			case "spec":
				if !programmed || len(k10.Flags) > 0 {
					t.Errorf("spec: programmed %v, flags %v", programmed, k10.Flags)
				}
				// The agent's lag is counted from the last create: it
				// is the programming time less the API's.
				if lag, ok := k10.Metrics[ProgramAfterS]; !ok || lag <= 0 || lag >= k10.Metrics[ProgramS] {
					t.Errorf("spec: agent lag %v (ok %v) against programmed %v", lag, ok, k10.Metrics[ProgramS])
				}
			case "none":
				if programmed || k10.Params["enforced"] != "no" || !strings.Contains(strings.Join(k10.Flags, " "), "not enforced") {
					t.Errorf("none: programmed %v, params %v, flags %v", programmed, k10.Params, k10.Flags)
				}
			}
			if len(fake.policies) != 0 {
				t.Errorf("%d policies left after the cost part", len(fake.policies))
			}
		})
	}
}

// TestTargetLauncher: in a netns,kind run the netns labs' probes are this
// machine's binary and the kind labs' the bench image's; neither may take
// the other's (a netns lab handed /usr/local/bin/cnilab from a kind pod
// failed every policy probe with "no such file", run 626dfe).
func TestTargetLauncher(t *testing.T) {
	local := probe.Launcher{Path: "/work/bin/cnilab", Args: []string{"probe"}}
	inPod := &probe.Launcher{Path: "/usr/local/bin/cnilab", Args: []string{"probe"}}
	for _, tc := range []struct {
		provider string
		probe    *probe.Launcher
		want     string
	}{{"netns", nil, local.Path}, {"kind", inPod, inPod.Path}} {
		target, fake := fakeTarget("spec")
		in := &lab.Instance{Name: "flannel", Provider: tc.provider, Policy: fake, Probe: tc.probe,
			Pairs: map[lab.Placement]lab.PodPair{lab.CrossNode: {Client: target.Sources[SrcPeer], Server: target.Server}},
			Peers: map[string]lab.Pod{ClientNamespace + "/client": target.Sources[SrcClient], OtherNamespace + "/other": target.Sources[SrcOther]}}
		got, err := NewTarget(in, local)
		if err != nil {
			t.Fatal(err)
		}
		if got.Launcher.Path != tc.want {
			t.Errorf("%s lab probes with %s, want %s", tc.provider, got.Launcher.Path, tc.want)
		}
	}
}

// laggyCNI takes its policies out only some probes after the API deleted
// them, as an agent working through a thousand deletions does.
type laggyCNI struct {
	*fakeCNI
	lag, left int
}

func (l *laggyCNI) DeletePolicies(context.Context, []string, string) error {
	if len(l.policies) > 0 {
		l.left = l.lag
	}
	return nil
}

func (l *laggyCNI) Probe(ctx context.Context, pl probe.Launcher, from lab.Pod, to netip.Addr, proto string, port int) (Outcome, error) {
	if l.left > 0 {
		if l.left--; l.left == 0 {
			_ = l.fakeCNI.DeletePolicies(ctx, nil, "")
		}
	}
	return l.fakeCNI.Probe(ctx, pl, from, to, proto, port)
}

// TestCostSettles: a lab's cost part ends only once its agent has taken
// the policies out again, so the next lab's windows do not run beside
// that work.
func TestCostSettles(t *testing.T) {
	target, fake := fakeTarget("spec")
	laggy := &laggyCNI{fakeCNI: fake, lag: 4}
	r := &command.Fake{Responses: map[string]command.FakeResponse{"cnilab": {Func: func(c command.Cmd) (command.Result, error) {
		if slices.Contains(c.Args, "connect") {
			return command.Result{Stdout: []byte(`{"target":"10.244.2.5:5202","mode":"latency","attempts":3,"ok":3,"failed":0,"elapsed_s":0.01,"samples_us":[100,120,140],"stopped":"count"}` + "\n")}, nil
		}
		return command.Result{}, nil
	}}}}
	server, peer := target.Server.(*labfake.Pod), target.Sources[SrcPeer].(*labfake.Pod)
	server.Runner, peer.Runner = r, r
	in := &lab.Instance{Name: "fake", Provider: "fake", Fidelity: results.Real, Policy: laggy,
		Pairs: map[lab.Placement]lab.PodPair{lab.CrossNode: {Client: peer, Server: server}},
		Peers: map[string]lab.Pod{ClientNamespace + "/client": target.Sources[SrcClient], OtherNamespace + "/other": target.Sources[SrcOther]}}
	var clock time.Time
	pr := &Runner{Settings: Settings{ConvergeTimeout: 5 * time.Second, Poll: time.Second}, Prober: laggy, Launcher: probe.Launcher{Path: "cnilab"},
		Now: func() time.Time { clock = clock.Add(10 * time.Millisecond); return clock }, Sleep: func(d time.Duration) { clock = clock.Add(d) }}
	cr := &CostRunner{Runner: pr, Counts: []int{0, 10}, Connects: 3, Window: time.Second, Throughput: fakeWindow{},
		Lock: windowlock.Lock{Path: filepath.Join(t.TempDir(), "window.lock"), Wait: 5 * time.Second}}
	for _, m := range cr.MeasureCost(context.Background(), in, 1) {
		if m.Error != "" {
			t.Errorf("%s: %s", m.Test, m.Error)
		}
	}
	if laggy.left != 0 || len(fake.policies) != 0 {
		t.Errorf("the cost part returned with the agent still removing policies (%d probes to go, %d policies in force)", laggy.left, len(fake.policies))
	}
}
