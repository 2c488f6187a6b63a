package iptables

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/proxy/proxytest"
)

const ns = "/run/netns/fake-node"

func newFakeProxy(t *testing.T) (*Proxy, *Fake) {
	t.Helper()
	f := NewFake()
	p, err := New(f, proxy.Target{Netns: []string{ns}, ClusterCIDR: proxytest.ClusterCIDR})
	if err != nil {
		t.Fatal(err)
	}
	return p, f
}

func TestSyncGolden(t *testing.T) {
	ctx := context.Background()
	p, f := newFakeProxy(t)
	if err := p.Sync(ctx, proxytest.Services(3, 3)); err != nil {
		t.Fatal(err)
	}
	proxytest.Golden(t, "sync-3x3", f.Dump(ns))
	proxytest.Golden(t, "sync-3x3-payload", string(f.Payloads[len(f.Payloads)-1]))
}

func TestProbabilities(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 8} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			p, f := newFakeProxy(t)
			svc := proxytest.Services(1, n)
			if err := p.Sync(context.Background(), svc); err != nil {
				t.Fatal(err)
			}
			rules, ok := f.Rules(ns, "nat", svcChain(svc[0]))
			if !ok {
				t.Fatal("service chain missing")
			}
			var probs []float64
			for _, r := range rules {
				if !strings.Contains(r, "KUBE-SEP-") {
					continue
				}
				_, after, found := strings.Cut(r, "--probability ")
				if !found {
					probs = append(probs, 1) // unconditional
					continue
				}
				v, err := strconv.ParseFloat(strings.Fields(after)[0], 64)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Fields(after)[0] != strconv.FormatFloat(v, 'f', 10, 64) {
					t.Errorf("probability %q not printed with 10 decimals", strings.Fields(after)[0])
				}
				probs = append(probs, v)
			}
			if len(probs) != n {
				t.Fatalf("%d endpoint rules, want %d", len(probs), n)
			}
			reach := 1.0 // chance a packet gets to rule i
			for i, pr := range probs {
				if want := 1 / float64(n-i); math.Abs(pr-want) > 1e-9 {
					t.Errorf("rule %d: probability %v, want 1/(n-i)=%v", i, pr, want)
				}
				if share := reach * pr; math.Abs(share-1/float64(n)) > 1e-9 {
					t.Errorf("endpoint %d gets %v of new connections, want %v", i, share, 1/float64(n))
				}
				reach *= 1 - pr
			}
			if last := rules[len(rules)-1]; strings.Contains(last, "statistic") {
				t.Errorf("last rule %q must be unconditional", last)
			}
		})
	}
}

func TestPartialSyncTouchesOnlyChanged(t *testing.T) {
	ctx := context.Background()
	p, f := newFakeProxy(t)
	svcs := proxytest.Services(3, 3)
	if err := p.Sync(ctx, svcs); err != nil {
		t.Fatal(err)
	}
	before := map[string][]string{}
	for _, s := range svcs {
		for _, c := range serviceChains(s) {
			before[c], _ = f.Rules(ns, "nat", c)
		}
	}
	// svc2 loses its last endpoint and gains another.
	changed := svcs[1]
	changed.Endpoints = append(append([]proxy.Endpoint(nil), changed.Endpoints[:2]...), proxy.Endpoint{IP: changed.Endpoints[0].IP.Next().Next().Next().Next(), Port: 8080})
	if err := p.Update(ctx, []proxy.Service{changed}, nil); err != nil {
		t.Fatal(err)
	}
	payload := string(f.Payloads[len(f.Payloads)-1])
	proxytest.Golden(t, "partial-svc2-payload", payload)
	for _, s := range []proxy.Service{svcs[0], svcs[2]} {
		for _, c := range serviceChains(s) {
			if strings.Contains(payload, ":"+c+" ") || strings.Contains(payload, "-A "+c+" ") {
				t.Errorf("partial sync wrote chain %s of unchanged service %s", c, s.Key())
			}
			after, _ := f.Rules(ns, "nat", c)
			if strings.Join(after, "\n") != strings.Join(before[c], "\n") {
				t.Errorf("chain %s of unchanged service changed", c)
			}
		}
	}
	dropped := sepChain(svcs[1], svcs[1].Endpoints[2])
	if _, ok := f.Rules(ns, "nat", dropped); ok {
		t.Errorf("chain %s of the dropped endpoint still exists", dropped)
	}
	if _, ok := f.Rules(ns, "nat", sepChain(changed, changed.Endpoints[2])); !ok {
		t.Errorf("chain of the new endpoint missing")
	}
	// Removing a service deletes all its chains.
	if err := p.Update(ctx, nil, []string{svcs[0].Key()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range serviceChains(svcs[0]) {
		if _, ok := f.Rules(ns, "nat", c); ok {
			t.Errorf("chain %s of removed service still exists", c)
		}
	}
	// A full sync now gives the same state as a fresh full sync.
	p2, f2 := newFakeProxy(t)
	if err := p2.Sync(ctx, p.cur); err != nil {
		t.Fatal(err)
	}
	if f.Dump(ns) != f2.Dump(ns) {
		t.Errorf("partial syncs drifted from a full sync:\n%s\nvs\n%s", f.Dump(ns), f2.Dump(ns))
	}
}

// TestRulesPerEndpoint measures claim C10 on the layout: how many iptables
// rules one more endpoint of a service adds.
func TestRulesPerEndpoint(t *testing.T) {
	ctx := context.Background()
	var prev int
	for e := 1; e <= 5; e++ {
		p, _ := newFakeProxy(t)
		if err := p.Sync(ctx, proxytest.Services(1, e)); err != nil {
			t.Fatal(err)
		}
		c, err := p.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e > 1 {
			// One KUBE-SVC statistic rule plus the KUBE-SEP hairpin and DNAT
			// rules: 3, fewer than the claimed "five or more".
			if d := c.Rules - prev; d != 3 {
				t.Errorf("endpoint %d added %d rules, layout gives 3", e, d)
			}
		}
		prev = c.Rules
	}
}

func TestLargeClusterDropsComments(t *testing.T) {
	tests := []struct {
		n, e         int
		wantComments bool
	}{
		{3, 3, true},
		{500, 2, true},  // 1000 endpoints: still small
		{501, 2, false}, // 1002 endpoints: large-cluster mode
	}
	for _, tc := range tests {
		payload := string(render(renderOpts{all: proxytest.Services(tc.n, tc.e)}))
		if got := strings.Contains(payload, "--comment"); got != tc.wantComments {
			t.Errorf("%d×%d: comments %v, want %v", tc.n, tc.e, got, tc.wantComments)
		}
	}
}

func TestNoEndpointsRejects(t *testing.T) {
	p, f := newFakeProxy(t)
	svcs := proxytest.Services(2, 1)
	svcs[1].Endpoints = nil
	if err := p.Sync(context.Background(), svcs); err != nil {
		t.Fatal(err)
	}
	rules, _ := f.Rules(ns, "filter", chainServices)
	if len(rules) != 1 || !strings.Contains(rules[0], "-d 172.30.0.2/32") || !strings.Contains(rules[0], "REJECT") {
		t.Errorf("filter KUBE-SERVICES = %q, want one REJECT for svc2", rules)
	}
	if _, ok := f.Rules(ns, "nat", svcChain(svcs[1])); ok {
		t.Error("service without endpoints got a KUBE-SVC chain")
	}
}

func TestFakeAllOrNothing(t *testing.T) {
	tests := []struct {
		name, payload string
	}{
		{"dangling jump", "*nat\n:KUBE-A - [0:0]\n-A KUBE-A -j KUBE-MISSING\nCOMMIT\n"},
		{"append to missing chain", "*nat\n:KUBE-A - [0:0]\n-A KUBE-B -j RETURN\nCOMMIT\n"},
		{"no commit", "*nat\n:KUBE-A - [0:0]\n"},
		{"delete referenced", "*nat\n:KUBE-A - [0:0]\n:KUBE-B - [0:0]\n-A KUBE-A -j KUBE-B\n-X KUBE-B\nCOMMIT\n"},
		{"bad line", "*nat\n:KUBE-A - [0:0]\n-Q KUBE-A\nCOMMIT\n"},
		{"second table fails", "*filter\n:KUBE-A - [0:0]\nCOMMIT\n*nat\n-A NOPE -j RETURN\nCOMMIT\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake()
			before := f.Dump(ns)
			if err := f.Restore(context.Background(), ns, []byte(tc.payload)); err == nil {
				t.Fatal("bad payload accepted")
			}
			if after := f.Dump(ns); after != before {
				t.Errorf("failed restore changed state:\n%s", after)
			}
		})
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	p, f := newFakeProxy(t)
	empty := f.Dump(ns)
	if err := p.Sync(ctx, proxytest.Services(3, 2)); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.Dump(ns); got != empty {
		t.Errorf("Close left state:\n%s", got)
	}
}

func TestCountSavedRejectsGarbage(t *testing.T) {
	if _, _, err := CountSaved([]byte("iptables: command not found\n")); err == nil {
		t.Error("CountSaved accepted output without a table")
	}
}
