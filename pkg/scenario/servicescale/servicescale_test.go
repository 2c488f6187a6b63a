package servicescale

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/proxy/proxies"
	"github.com/cnilab/cnilab/pkg/results"
)

func TestMain(m *testing.M) {
	probe.MaybeRunFromTest()
	os.Exit(m.Run())
}

func TestBuild(t *testing.T) {
	server := netip.MustParseAddrPort("10.244.1.2:8080")
	for _, n := range []int{3, 100, 10000, 30000} {
		svcs, vips := Build(n, 2, []netip.AddrPort{server})
		if len(svcs) != n {
			t.Fatalf("N=%d: %d services", n, len(svcs))
		}
		if err := proxy.ValidateAll(svcs); err != nil {
			t.Fatalf("N=%d: %v", n, err)
		}
		for pl, idx := range map[string]int{"first": 0, "middle": n / 2, "last": n - 1} {
			s := svcs[idx]
			if s.Name != "real-"+pl || netip.AddrPortFrom(s.ClusterIP, s.Port) != vips[pl] || len(s.Endpoints) != 1 || s.Endpoints[0].IP != server.Addr() {
				t.Errorf("N=%d %s: %+v", n, pl, s)
			}
		}
		if x := extra(n, 2, 0); x.Name != "added-0" || proxy.ValidateAll(append(svcs, x, extra(n, 2, 1))) != nil {
			t.Errorf("N=%d: extra services collide", n)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := func(f func(*Config)) Config { c := Quick; f(&c); return c }
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"quick", Quick, true},
		{"full", Full, true},
		{"no sizes", bad(func(c *Config) { c.Sizes = nil }), false},
		{"descending", bad(func(c *Config) { c.Sizes = []int{1000, 100} }), false},
		{"unbounded connects", bad(func(c *Config) { c.Connects = 0 }), false},
		{"unbounded window", bad(func(c *Config) { c.RateWindow = time.Hour }), false},
		{"no endpoints", bad(func(c *Config) { c.Endpoints = 0 }), false},
	}
	for _, tc := range tests {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func needKernel(t *testing.T) {
	t.Helper()
	testenv.Kernel(t, "services-scale on a real kernel")
	for _, tool := range []string{"iptables-restore", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing: %v", tool, err)
		}
	}
}

func standalone(t testing.TB) Env {
	env, cleanup, err := Standalone(context.Background(), command.Exec{}, probe.TestLauncher(), "", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cleanup(); err != nil {
			t.Error(err)
		}
	})
	return env
}

// TestRunSmall runs the scenario end to end at two small sizes and checks
// every measurement is there and sane; it does not judge the shape.
func TestRunSmall(t *testing.T) {
	needKernel(t)
	env := standalone(t)
	cfg := Config{Sizes: []int{10, 200}, Endpoints: 2, Proxies: []string{"iptables", "nftables", "ebpf", "ipvs"}, IPTables: "iptables",
		Connects: 100, ConnectWindow: 2 * time.Second, RateConnects: 500, RateWindow: 300 * time.Millisecond, Warmup: 10}
	var ms []results.Measurement
	err := Run(context.Background(), env, cfg, func(m results.Measurement) error { ms = append(ms, m); return nil })
	checkOnlyNotReproducible(t, err)
	counts := map[string]int{}
	for _, m := range ms {
		counts[m.Proxy+"/"+m.Test]++
		if m.Proxy == "ipvs" {
			if !strings.Contains(m.NotReproducible, "CONFIG_IP_VS missing") || m.Error != "" || m.Fidelity != results.NotModelled {
				t.Errorf("ipvs measurement %+v", m)
			}
			continue
		}
		if m.Error != "" {
			t.Errorf("%s %s N=%s: %s", m.Proxy, m.Test, m.Params["services"], m.Error)
		}
		switch m.Test {
		case TestProgram:
			if m.Metrics[results.ProgramSeconds] <= 0 || m.Metrics[results.AddOneSeconds] <= 0 || m.Metrics[results.RuleCount] <= 0 {
				t.Errorf("program metrics %v", m.Metrics)
			}
		case TestFirstPacket:
			if m.Metrics[results.ConnectFailed] != 0 || m.Metrics[results.ConnectSamples] != 100 || !(m.Metrics[results.FirstPacketP01] <= m.Metrics[results.FirstPacketP50] && m.Metrics[results.FirstPacketP50] <= m.Metrics[results.FirstPacketP99]) {
				t.Errorf("first-packet %s: %v", m.Placement, m.Metrics)
			}
		case TestConnectRate:
			if m.Metrics[results.ConnectRate] <= 0 {
				t.Errorf("rate %v", m.Metrics)
			}
		}
	}
	for _, p := range []string{"iptables", "nftables", "ebpf"} {
		if counts[p+"/"+TestProgram] != 2 || counts[p+"/"+TestFirstPacket] != 6 || counts[p+"/"+TestConnectRate] != 2 {
			t.Errorf("%s: measurements %v", p, counts)
		}
	}
	if ipt := find(ms, "iptables", TestProgram, "10"); ipt.Metrics[results.RulesPerEP] != 3 {
		t.Errorf("iptables rules per endpoint = %v", ipt.Metrics[results.RulesPerEP])
	}
	t.Log("\n" + Markdown(ms))
}

// checkOnlyNotReproducible fails on any error except a backend this
// kernel cannot run (ipvs).
func checkOnlyNotReproducible(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		if !errors.Is(e, proxy.ErrNotReproducible) {
			t.Fatal(e)
		}
	}
}

func find(ms []results.Measurement, proxyName, test, n string) results.Measurement {
	for _, m := range ms {
		if m.Proxy == proxyName && m.Test == test && m.Params["services"] == n {
			return m
		}
	}
	return results.Measurement{}
}

// TestQuickProfile runs the quick profile (N up to 10k) and logs the
// tables; it takes a minute or two, so it only runs when asked:
// CNILAB_SERVICES_SCALE=quick (or full) go test -run TestQuickProfile -v.
func TestQuickProfile(t *testing.T) {
	cfg := Quick
	switch os.Getenv("CNILAB_SERVICES_SCALE") {
	case "quick":
	case "full":
		cfg = Full
	default:
		t.Skip("set CNILAB_SERVICES_SCALE=quick|full to run the services-scale profile")
	}
	needKernel(t)
	env := standalone(t)
	start := time.Now()
	var ms []results.Measurement
	err := Run(context.Background(), env, cfg, func(m results.Measurement) error { ms = append(ms, m); return nil })
	checkOnlyNotReproducible(t, err)
	t.Logf("profile took %v\n%s", time.Since(start).Round(time.Second), Markdown(ms))
	for _, line := range ShapeSummary(ms) {
		t.Log(line)
	}
}

// BenchmarkProgram10k programs 10k services × 2 endpoints into an empty
// proxy on the real kernel (the targets: iptables ≤ 2 s, nftables
// ≤ 1 s, ebpf ≤ 0.1 s).
func BenchmarkProgram10k(b *testing.B) {
	testenv.Kernel(b, "real kernel")
	for _, name := range []string{"iptables-legacy", "iptables", "nftables", "ebpf"} {
		b.Run(name, func(b *testing.B) {
			cfg := Quick
			proxyName := name
			if name == "iptables" {
				cfg.IPTables = "iptables" // the system default: nf_tables backend
			} else if name == "iptables-legacy" {
				proxyName = "iptables"
			}
			b.StopTimer()
			env := standalone(b)
			svcs, _ := Build(10000, 2, env.Servers)
			for i := 0; i < b.N; i++ {
				p, _, err := proxies.New(proxyName, env.target(cfg), "")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				err = p.Sync(context.Background(), svcs)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestFromConfig(t *testing.T) {
	sc := &config.Scenario{Name: "services-scale", Kind: "services-scale",
		Scale:    &config.ScaleParams{Services: []int{100, 1000}, EndpointsPerSvc: 3, Positions: []string{"first", "last"}, Connects: 500, Proxies: []string{"nftables"}, RateSeconds: 0.5},
		Profiles: map[string]config.Profile{"quick": {DurationSeconds: 2}, "full": {DurationSeconds: 10, Services: []int{100, 30000}}}}
	tests := []struct {
		profile string
		want    func(Config) bool
		wantErr bool
	}{
		{"quick", func(c Config) bool {
			return slices.Equal(c.Sizes, []int{100, 1000}) && c.Endpoints == 3 && c.Connects == 500 && c.ConnectWindow == 2*time.Second && c.RateWindow == 500*time.Millisecond && slices.Equal(c.Proxies, []string{"nftables"})
		}, false},
		{"full", func(c Config) bool {
			return slices.Equal(c.Sizes, []int{100, 30000}) && c.ConnectWindow == 10*time.Second
		}, false},
		{"bogus", nil, true},
	}
	for _, tc := range tests {
		c, err := FromConfig(sc, tc.profile)
		if (err != nil) != tc.wantErr || (err == nil && !tc.want(c)) {
			t.Errorf("%s: %+v, %v", tc.profile, c, err)
		}
	}
	bad := *sc
	bad.Scale = &config.ScaleParams{Positions: []string{"top"}}
	if _, err := FromConfig(&bad, "quick"); err == nil {
		t.Error("unknown position accepted")
	}
}
