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
	"github.com/cnilab/cnilab/pkg/proxy/iptables"
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
	cfg := Config{Sizes: []int{10, 200}, Endpoints: 2, Proxies: []string{"iptables", "nftables", "ebpf", "ipvs"},
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
	def, err := iptables.DetectBackend(context.Background(), command.Exec{}, "iptables", "")
	if err != nil {
		t.Fatal(err)
	}
	// "iptables" is both backends, each named, the system default tagged.
	for _, p := range []string{iptables.NFT, iptables.Legacy, "nftables", "ebpf"} {
		if counts[p+"/"+TestProgram] != 2 || counts[p+"/"+TestFirstPacket] != 6 || counts[p+"/"+TestConnectRate] != 2 {
			t.Errorf("%s: measurements %v", p, counts)
		}
	}
	for _, b := range iptables.Backends {
		ipt := find(ms, b, TestProgram, "10")
		if ipt.Metrics[results.RulesPerEP] != 3 || ipt.Params["iptables"] != b || ipt.Params["iptables_default"] != def {
			t.Errorf("%s: rules per endpoint %v, params %v (default %s)", b, ipt.Metrics[results.RulesPerEP], ipt.Params, def)
		}
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
	for _, name := range []string{iptables.Legacy, iptables.NFT, "nftables", "ebpf"} {
		b.Run(name, func(b *testing.B) {
			proxyName := name
			b.StopTimer()
			env := standalone(b)
			svcs, _ := Build(10000, 2, env.Servers)
			for i := 0; i < b.N; i++ {
				p, _, err := proxies.New(proxyName, env.target(), "")
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

// fakeEnv is an Env on command.Fake: enough for the steps before the first
// probe, which is all these tests reach.
func fakeEnv(f *command.Fake) Env {
	return Env{Runner: f, Nodes: []string{"/run/netns/cnl-t-node"}, ClientNetns: "/run/netns/cnl-t-client",
		Servers: []netip.AddrPort{netip.MustParseAddrPort("10.244.1.2:8080")}, Provider: "netns", Lab: "services-scale"}
}

// "iptables" measures both backends: the one the system's iptables drives
// first, the other beside it; explicit names stay as they are.
func TestBackends(t *testing.T) {
	cases := []struct {
		name    string
		version string
		err     error
		proxies []string
		want    []string
		def     string
		wantErr bool
	}{
		{"nft default", "iptables v1.8.9 (nf_tables)\n", nil, []string{"iptables", "nftables", "ebpf"}, []string{iptables.NFT, iptables.Legacy, "nftables", "ebpf"}, iptables.NFT, false},
		{"legacy default", "iptables v1.8.9 (legacy)\n", nil, []string{"iptables"}, []string{iptables.Legacy, iptables.NFT}, iptables.Legacy, false},
		{"explicit backend, no detection", "", errors.New("not asked"), []string{iptables.Legacy, "nftables"}, []string{iptables.Legacy, "nftables"}, "", false},
		{"default unknown: both measured, error says why", "", errors.New("no iptables"), []string{"iptables"}, []string{iptables.NFT, iptables.Legacy}, "", true},
		{"no duplicates", "iptables v1.8.9 (nf_tables)\n", nil, []string{"iptables-nft", "iptables"}, []string{iptables.NFT, iptables.Legacy}, iptables.NFT, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &command.Fake{Responses: map[string]command.FakeResponse{"iptables": {Stdout: tc.version, Err: tc.err}}}
			got, def, err := Backends(context.Background(), fakeEnv(f), tc.proxies)
			if !slices.Equal(got, tc.want) || def != tc.def || (err != nil) != tc.wantErr {
				t.Errorf("got %v default %q err %v; want %v default %q err %v", got, def, err, tc.want, tc.def, tc.wantErr)
			}
		})
	}
}

// A size the proxy failed at is a measurement with the error, tagged with
// the backend, and no larger size is tried: a ranking can tell "failed at
// N" from "never tried N".
func TestFailedSizeIsRecorded(t *testing.T) {
	f := &command.Fake{Responses: map[string]command.FakeResponse{
		"iptables-nft":      {Stdout: "iptables v1.8.9 (nf_tables)\n"},
		"iptables-nft-save": {Err: errors.New("exit status 4"), Stderr: "iptables-nft-save: resource temporarily unavailable"},
	}}
	cfg := Quick
	cfg.Sizes, cfg.Proxies = []int{100, 10000}, []string{iptables.NFT}
	var ms []results.Measurement
	err := Run(context.Background(), fakeEnv(f), cfg, func(m results.Measurement) error { ms = append(ms, m); return nil })
	if err == nil || !strings.Contains(err.Error(), "at 100 services") {
		t.Fatalf("err %v", err)
	}
	if len(ms) != 1 {
		t.Fatalf("%d measurements, want the one failure: %+v", len(ms), ms)
	}
	m := ms[0]
	if m.Proxy != iptables.NFT || m.Test != TestProgram || m.Params["services"] != "100" || !strings.Contains(m.Error, "exit status 4") {
		t.Errorf("failure measurement %+v", m)
	}
}
