// Package servicescale measures how service proxies behave as Services
// multiply (claims C8-C10): time to program N services, time to add one
// at N, rule/map sizes, rules per endpoint, first-packet (TCP connect)
// latency to a real service placed first, in the middle and last, and the
// short-connection rate. It follows the upstream scale model: the N
// services' endpoints are addresses without pods; only the placed
// services lead to a real server.
package servicescale

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/proxy/iptables"
	"github.com/cnilab/cnilab/pkg/proxy/proxies"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/stats"
	"github.com/cnilab/cnilab/pkg/windowlock"
)

// Scenario is the name results carry.
const Scenario = "services-scale"

// Tests (results.Measurement.Test).
const (
	TestProgram     = "program"
	TestFirstPacket = "first-packet"
	TestConnectRate = "connect-rate"
)

// Placements of the real service among the N.
var Placements = []string{"first", "middle", "last"}

// Config is what scenarios/services-scale.yaml sets.
type Config struct {
	Sizes     []int // N values, ascending
	Endpoints int   // endpoints per scale service (E)
	// Proxies to measure: nftables, ebpf, ipvs, iptables-nft,
	// iptables-legacy, or iptables = both iptables backends, the one the
	// system's iptables drives (what the labs run) first and the other
	// beside it, so a user sees what the distro's default costs.
	Proxies []string
	// Fallback is used when a proxy is not reproducible here (ipvs).
	Fallback string
	// Connects per placement for the latency percentiles, and the time
	// bound of one probe window.
	Connects      int
	ConnectWindow time.Duration
	// Short-connection rate window: at most RateConnects within RateWindow.
	RateConnects int
	RateWindow   time.Duration
	// Warmup connects before each N's windows (discarded): ARP, caches.
	// (iptables-nft 1.8.9 needs ~46 s to restore 10k services here, legacy
	// ~0.5 s; both evaluate KUBE-SERVICES linearly per new connection.)
	Warmup int
}

// Quick is the default profile; Full adds 30k services and longer windows.
var (
	Quick = Config{Sizes: []int{100, 1000, 5000, 10000}, Endpoints: 2, Proxies: []string{"iptables", "nftables", "ebpf", "ipvs"}, Fallback: "",
		Connects: 1000, ConnectWindow: 3 * time.Second, RateConnects: 20000, RateWindow: time.Second, Warmup: 50}
	Full = Config{Sizes: []int{100, 1000, 5000, 10000, 30000}, Endpoints: 2, Proxies: []string{"iptables", "nftables", "ebpf", "ipvs"}, Fallback: "",
		Connects: 5000, ConnectWindow: 10 * time.Second, RateConnects: 100000, RateWindow: 5 * time.Second, Warmup: 200}
)

// Validate checks bounds so every loop stays bounded.
func (c Config) Validate() error {
	switch {
	case len(c.Sizes) == 0:
		return errors.New("services-scale: no sizes")
	case c.Endpoints < 1 || c.Endpoints > 100:
		return fmt.Errorf("services-scale: endpoints %d not in 1..100", c.Endpoints)
	case c.Connects < 1 || c.Connects > 1_000_000 || c.ConnectWindow <= 0 || c.ConnectWindow > 10*time.Minute:
		return fmt.Errorf("services-scale: connects %d / window %v out of range", c.Connects, c.ConnectWindow)
	case c.RateConnects < 1 || c.RateConnects > 1_000_000 || c.RateWindow <= 0 || c.RateWindow > 10*time.Minute:
		return fmt.Errorf("services-scale: rate %d / window %v out of range", c.RateConnects, c.RateWindow)
	case c.Warmup < 0 || c.Warmup > 10000:
		return fmt.Errorf("services-scale: warmup %d out of range", c.Warmup)
	}
	for i, n := range c.Sizes {
		if n < 3 || n > 100_000 || (i > 0 && n <= c.Sizes[i-1]) {
			return fmt.Errorf("services-scale: sizes %v must ascend within 3..100000", c.Sizes)
		}
	}
	return nil
}

// Env is where the scenario runs: supplied by a lab, or by Standalone.
type Env struct {
	Runner   command.Runner
	Launcher probe.Launcher
	// Nodes are the netns paths where the proxy's rules go (the client's
	// node first).
	Nodes []string
	// ClientNetns is where the connect probe runs.
	ClientNetns string
	// Servers are the real backends (already listening).
	Servers     []netip.AddrPort
	ClusterCIDR netip.Prefix
	// CgroupDir/CgroupFD: the cgroup v2 the client probe is started in;
	// socket-LB attaches there.
	CgroupDir string
	CgroupFD  int
	// Provider and Lab label the measurements.
	Provider, Lab string
	// Lock keeps each size's measurement (programming, probes, add one)
	// from overlapping any other cnilab window on the machine (the zero
	// value is the machine's lock).
	Lock windowlock.Lock
}

// Emit receives each measurement as soon as it is finished.
type Emit func(results.Measurement) error

// Address plan: decoy ClusterIPs from 10.96.0.0/12, decoy endpoints (no
// pods) from 10.128.0.0/10, real-service VIPs 10.100.0.1-3 (sizes are
// capped at 100k, far below where decoys would reach them).
var (
	clusterIPBase = netip.MustParseAddr("10.96.0.0")
	endpointBase  = netip.MustParseAddr("10.128.0.0")
)

func addrAt(base netip.Addr, off int) netip.Addr {
	b := base.As4()
	v := binary.BigEndian.Uint32(b[:]) + uint32(off)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// realVIP is the ClusterIP of the real service at a placement.
func realVIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 100, 0, byte(i + 1)}) }

// Build returns the N services of the scale model plus, at positions
// first / middle / last, the real services "real-<placement>" backed by
// servers. The real services replace decoys, so the list has N entries.
func Build(n, e int, servers []netip.AddrPort) ([]proxy.Service, map[string]netip.AddrPort) {
	svcs := make([]proxy.Service, n)
	for i := range svcs {
		s := proxy.Service{Namespace: "scale", Name: "svc-" + strconv.Itoa(i), PortName: "p80", ClusterIP: addrAt(clusterIPBase, i+1), Port: 80, Protocol: proxy.TCP}
		for j := 0; j < e; j++ {
			s.Endpoints = append(s.Endpoints, proxy.Endpoint{IP: addrAt(endpointBase, i*e+j+1), Port: 8080})
		}
		svcs[i] = s
	}
	vips := map[string]netip.AddrPort{}
	pos := map[string]int{"first": 0, "middle": n / 2, "last": n - 1}
	for i, pl := range Placements {
		s := proxy.Service{Namespace: "scale", Name: "real-" + pl, PortName: "p80", ClusterIP: realVIP(i), Port: 80, Protocol: proxy.TCP}
		for _, sv := range servers {
			s.Endpoints = append(s.Endpoints, proxy.Endpoint{IP: sv.Addr(), Port: sv.Port()})
		}
		svcs[pos[pl]] = s
		vips[pl] = netip.AddrPortFrom(s.ClusterIP, 80)
	}
	return svcs, vips
}

// extra is the k-th "one more" service added at N: a decoy with index
// n+k, so its addresses continue the plan without touching the real ones.
func extra(n, e, k int) proxy.Service {
	i := n + k
	s := proxy.Service{Namespace: "scale", Name: "added-" + strconv.Itoa(k), PortName: "p80", ClusterIP: addrAt(clusterIPBase, i+1), Port: 80, Protocol: proxy.TCP}
	for j := 0; j < e; j++ {
		s.Endpoints = append(s.Endpoints, proxy.Endpoint{IP: addrAt(endpointBase, i*e+j+1), Port: 8080})
	}
	return s
}

// Run measures every proxy in cfg at every size, emitting measurements
// as they finish. A proxy that cannot run here yields one measurement
// with the error; the others go on.
func Run(ctx context.Context, env Env, cfg Config, emit Emit) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(env.Nodes) == 0 || env.ClientNetns == "" || len(env.Servers) == 0 {
		return errors.New("services-scale: env needs nodes, a client namespace and a server")
	}
	var errs []error
	backends, defaultIPT, err := Backends(ctx, env, cfg.Proxies)
	if err != nil {
		m := env.base("iptables", nil, TestProgram, cfg.Sizes[0], cfg.Endpoints)
		m.Error = err.Error()
		if eerr := emit(m); eerr != nil {
			return eerr
		}
		errs = append(errs, err)
	}
	for _, name := range backends {
		if err := runProxy(ctx, env, cfg, name, defaultIPT, emit); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Backends expands the proxies to measure: "iptables" becomes the backend
// the system's iptables drives (iptables -V in the client's node, the
// binaries the labs use) followed by the other one. defaultIPT is that
// default ("" when no iptables backend was asked for). When the default
// cannot be read, both backends are still measured, and err says why the
// default is unknown.
func Backends(ctx context.Context, env Env, proxies []string) (out []string, defaultIPT string, err error) {
	add := func(n string) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, name := range proxies {
		if name != "iptables" {
			add(name)
			continue
		}
		ns := ""
		if len(env.Nodes) > 0 {
			ns = env.Nodes[0]
		}
		d, derr := iptables.DetectBackend(ctx, env.Runner, "iptables", ns)
		if derr != nil {
			err = fmt.Errorf("services-scale: which iptables backend the system uses: %w", derr)
			for _, b := range iptables.Backends {
				add(b)
			}
			continue
		}
		defaultIPT = d
		add(d)
		add(iptables.Other(d))
	}
	return out, defaultIPT, err
}

func (env Env) target() proxy.Target {
	return proxy.Target{Netns: env.Nodes, Runner: env.Runner, ClusterCIDR: env.ClusterCIDR, CgroupDir: env.CgroupDir}
}

func (env Env) base(proxyName string, p proxy.Proxy, test string, n, e int) results.Measurement {
	m := results.Measurement{Lab: env.Lab, Scenario: Scenario, Test: test, Provider: env.Provider, Proxy: proxyName,
		Started: time.Now().UTC(), Params: map[string]string{"services": strconv.Itoa(n), "endpoints": strconv.Itoa(e)},
		Metrics: map[string]float64{}}
	if p != nil {
		m.Fidelity = p.Fidelity()
		m.Proxy = p.Name()
	}
	return m
}

func runProxy(ctx context.Context, env Env, cfg Config, name, defaultIPT string, emit Emit) error {
	for i, n := range cfg.Sizes {
		p, note, err := proxies.New(name, env.target(), cfg.Fallback)
		if err != nil {
			m := env.base(name, nil, TestProgram, n, cfg.Endpoints)
			if proxies.CanFallBack(err) {
				// Recorded, not failed: the kernel lacks what this proxy
				// needs (or cnilab has not built it), and the result says so.
				m.Fidelity = results.NotModelled
				m.NotReproducible = err.Error()
				return emit(m)
			}
			m.Error = err.Error()
			if eerr := emit(m); eerr != nil {
				return eerr
			}
			return err
		}
		err = env.Lock.Do(ctx, fmt.Sprintf("%s %s N=%d", Scenario, name, n), func() error {
			return measureSize(ctx, env, cfg, name, defaultIPT, p, note, n, i == 0, emit)
		})
		if cerr := p.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			// Recorded, so a ranking can tell "failed at 10k" from "never
			// tried 10k": larger sizes are not attempted.
			m := env.base(name, p, TestProgram, n, cfg.Endpoints)
			m.Error = err.Error()
			if eerr := emit(m); eerr != nil {
				return eerr
			}
			return fmt.Errorf("at %d services: %w", n, err)
		}
	}
	return nil
}

func measureSize(ctx context.Context, env Env, cfg Config, name, defaultIPT string, p proxy.Proxy, note string, n int, first bool, emit Emit) error {
	e := cfg.Endpoints
	svcs, vips := Build(n, e, env.Servers)
	prog := env.base(name, p, TestProgram, n, e)
	if note != "" {
		prog.Params["note"] = note
	}
	if isIPTables(p.Name()) {
		prog.Params["iptables"] = p.Name()
		if defaultIPT != "" {
			prog.Params["iptables_default"] = defaultIPT
		}
	}
	t0 := time.Now()
	if err := p.Sync(ctx, svcs); err != nil {
		return err
	}
	prog.Metrics[results.ProgramSeconds] = time.Since(t0).Seconds()
	c, err := p.Counts(ctx)
	if err != nil {
		return fmt.Errorf("counts: %w", err)
	}
	prog.Metrics[results.RuleCount] = float64(c.Rules)
	prog.Metrics[results.ChainCount] = float64(c.Chains)
	prog.Metrics[results.MapEntryCount] = float64(c.MapEntries)

	// First-packet latency and connect rate, on the freshly programmed N.
	if cfg.Warmup > 0 {
		if _, err := runProbe(ctx, env, vips["middle"], "latency", cfg.Warmup, cfg.ConnectWindow); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	for _, pl := range Placements {
		m := env.base(name, p, TestFirstPacket, n, e)
		m.Placement = pl
		r, err := runProbe(ctx, env, vips[pl], "latency", cfg.Connects, cfg.ConnectWindow)
		if err != nil {
			return fmt.Errorf("first-packet %s: %w", pl, err)
		}
		m.Metrics[results.ConnectFailed] = float64(r.Failed)
		m.Metrics[results.ConnectSamples] = float64(len(r.SamplesUS))
		if len(r.SamplesUS) == 0 {
			m.Error = fmt.Sprintf("no connect succeeded: %v", r.Errors)
		} else {
			for metric, q := range map[string]float64{results.FirstPacketP01: 1, results.FirstPacketP50: 50, results.FirstPacketP90: 90, results.FirstPacketP99: 99} {
				v, err := stats.Percentile(r.SamplesUS, q)
				if err != nil {
					return err
				}
				m.Metrics[metric] = v
			}
			m.Samples = map[string][]float64{"connect_us": r.SamplesUS}
		}
		if err := emit(m); err != nil {
			return err
		}
	}
	rate := env.base(name, p, TestConnectRate, n, e)
	rate.Placement = "middle"
	r, err := runProbe(ctx, env, vips["middle"], "rate", cfg.RateConnects, cfg.RateWindow)
	if err != nil {
		return fmt.Errorf("connect rate: %w", err)
	}
	rate.Metrics[results.ConnectRate] = r.Rate()
	rate.Metrics[results.ConnectFailed] = float64(r.Failed)
	if r.OK == 0 {
		rate.Error = fmt.Sprintf("no connect succeeded: %v", r.Errors)
	}
	if err := emit(rate); err != nil {
		return err
	}

	// Add one service at N. iptables: a full sync (kube-proxy before 1.28
	// rewrote everything) and a partial sync (since 1.28); the others
	// apply the one change.
	cur := svcs
	one := extra(n, e, 0)
	if isIPTables(name) && isIPTables(p.Name()) {
		next := append(append([]proxy.Service(nil), cur...), one)
		t0 = time.Now()
		if err := p.Sync(ctx, next); err != nil {
			return fmt.Errorf("add one (full sync): %w", err)
		}
		prog.Metrics[results.AddOneSeconds] = time.Since(t0).Seconds()
		cur = next
		two := extra(n, e, 1)
		t0 = time.Now()
		if err := p.Update(ctx, []proxy.Service{two}, nil); err != nil {
			return fmt.Errorf("add one (partial sync): %w", err)
		}
		prog.Metrics[results.AddOnePartialSeconds] = time.Since(t0).Seconds()
		cur = append(cur, two)
	} else {
		t0 = time.Now()
		if err := p.Update(ctx, []proxy.Service{one}, nil); err != nil {
			return fmt.Errorf("add one: %w", err)
		}
		prog.Metrics[results.AddOneSeconds] = time.Since(t0).Seconds()
		cur = append(cur, one)
	}
	// Rules one more endpoint adds (claim C10): measured once, at the
	// smallest N, from the kernel's own counts.
	if first {
		before, err := p.Counts(ctx)
		if err != nil {
			return err
		}
		grown := cur[len(cur)-1]
		grown.Endpoints = append(append([]proxy.Endpoint(nil), grown.Endpoints...), proxy.Endpoint{IP: netip.MustParseAddr("10.246.0.1"), Port: 8080})
		if err := p.Update(ctx, []proxy.Service{grown}, nil); err != nil {
			return fmt.Errorf("add endpoint: %w", err)
		}
		after, err := p.Counts(ctx)
		if err != nil {
			return err
		}
		prog.Metrics[results.RulesPerEP] = float64(after.Rules - before.Rules)
	}
	return emit(prog)
}

// isIPTables says whether a proxy name is an iptables backend.
func isIPTables(name string) bool { return name == "iptables" || strings.HasPrefix(name, "iptables-") }

func runProbe(ctx context.Context, env Env, target netip.AddrPort, mode string, count int, window time.Duration) (probe.ConnectResult, error) {
	c := env.Launcher.Cmd("connect", "-target", target.String(), "-mode", mode, "-count", strconv.Itoa(count), "-duration", window.String(), "-timeout", "1s")
	c.Netns = env.ClientNetns
	c.CgroupFD = env.CgroupFD
	// The probe's own window bounds it; the context adds a hard stop.
	pctx, cancel := context.WithTimeout(ctx, window+15*time.Second)
	defer cancel()
	res, err := env.Runner.Run(pctx, c)
	if err != nil {
		return probe.ConnectResult{}, err
	}
	return probe.ParseConnectResult(res.Stdout)
}
