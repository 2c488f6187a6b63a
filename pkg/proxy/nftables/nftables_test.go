package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/proxy/proxytest"
)

func newFakeProxy(t *testing.T) (*Proxy, FakeBackend) {
	t.Helper()
	f := NewFakeBackend()
	p, err := New([]Backend{f}, proxy.Target{ClusterCIDR: proxytest.ClusterCIDR})
	if err != nil {
		t.Fatal(err)
	}
	return p, f
}

func TestSyncGolden(t *testing.T) {
	p, f := newFakeProxy(t)
	if err := p.Sync(context.Background(), proxytest.Services(3, 3)); err != nil {
		t.Fatal(err)
	}
	proxytest.Golden(t, "sync-3x3", f.Dump())
}

func TestNumgenVmap(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			p, f := newFakeProxy(t)
			svc := proxytest.Services(1, n)
			if err := p.Sync(context.Background(), svc); err != nil {
				t.Fatal(err)
			}
			ch := f.Table.Chains[serviceChainName(svc[0])]
			if ch == nil {
				t.Fatal("service chain missing")
			}
			last := ch.Rules[len(ch.Rules)-1].Rule
			if !strings.HasPrefix(last, fmt.Sprintf("numgen random mod %d vmap {", n)) {
				t.Errorf("dispatch rule %q", last)
			}
			for i, e := range svc[0].Endpoints {
				if !strings.Contains(last, fmt.Sprintf("%d : goto %s", i, endpointChainName(svc[0], e))) {
					t.Errorf("slot %d does not go to endpoint %v", i, e)
				}
			}
			el := f.Table.Maps[serviceIPsMap].FindElement("172.30.0.1", "tcp", "80")
			if el == nil || el.Value[0] != "goto "+serviceChainName(svc[0]) {
				t.Errorf("service-ips element = %+v", el)
			}
		})
	}
}

func TestIncrementalTouchesOnlyChanged(t *testing.T) {
	ctx := context.Background()
	p, f := newFakeProxy(t)
	svcs := proxytest.Services(3, 3)
	if err := p.Sync(ctx, svcs); err != nil {
		t.Fatal(err)
	}
	changed := svcs[1]
	changed.Endpoints = append(append([]proxy.Endpoint(nil), changed.Endpoints[:2]...), proxy.Endpoint{IP: changed.Endpoints[2].IP.Next().Next(), Port: 8080})
	added := proxytest.Services(4, 2)[3]
	if err := p.Update(ctx, []proxy.Service{changed, added}, nil); err != nil {
		t.Fatal(err)
	}
	tx := f.LastTransaction.String()
	proxytest.Golden(t, "update-svc2-add-svc4", tx)
	for _, s := range []proxy.Service{svcs[0], svcs[2]} {
		if strings.Contains(tx, "/"+s.Name+"/") || strings.Contains(tx, s.ClusterIP.String()+" ") {
			t.Errorf("incremental update mentions unchanged service %s", s.Key())
		}
	}
	if _, ok := f.Table.Chains[endpointChainName(svcs[1], svcs[1].Endpoints[2])]; ok {
		t.Error("chain of the dropped endpoint still exists")
	}
	if err := p.Update(ctx, nil, []string{svcs[0].Key()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range chainsOf(svcs[0]) {
		if _, ok := f.Table.Chains[c]; ok {
			t.Errorf("chain %s of removed service still exists", c)
		}
	}
	// The incremental result equals a full sync of the same services.
	p2, f2 := newFakeProxy(t)
	if err := p2.Sync(ctx, p.Services()); err != nil {
		t.Fatal(err)
	}
	// Element order in the fake follows insertion; nft maps are unordered.
	if sortedLines(f.Dump()) != sortedLines(f2.Dump()) {
		t.Errorf("incremental state differs from full sync:\n%s\nvs\n%s", f.Dump(), f2.Dump())
	}
}

func TestUpdateSizeIndependentOfN(t *testing.T) {
	ctx := context.Background()
	var ops []int
	for _, n := range []int{10, 1000} {
		p, _ := newFakeProxy(t)
		if err := p.Sync(ctx, proxytest.Services(n, 2)); err != nil {
			t.Fatal(err)
		}
		extra := proxytest.Services(n+1, 2)[n]
		if err := p.Update(ctx, []proxy.Service{extra}, nil); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, p.LastOps)
	}
	if ops[0] != ops[1] {
		t.Errorf("adding one service took %d ops at 10 and %d at 1000 services", ops[0], ops[1])
	}
}

func TestRulesPerEndpoint(t *testing.T) {
	ctx := context.Background()
	var prev proxy.Counts
	for e := 1; e <= 4; e++ {
		p, f := newFakeProxy(t)
		if err := p.Sync(ctx, proxytest.Services(1, e)); err != nil {
			t.Fatal(err)
		}
		c, err := f.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e > 1 {
			// An endpoint is one more chain with two rules (hairpin mark,
			// DNAT) and one more vmap slot inside the existing rule.
			if c.Rules-prev.Rules != 2 || c.Chains-prev.Chains != 1 || c.MapEntries != prev.MapEntries {
				t.Errorf("endpoint %d: %+v after %+v", e, c, prev)
			}
		}
		prev = c
	}
}

func TestNoEndpoints(t *testing.T) {
	p, f := newFakeProxy(t)
	svcs := proxytest.Services(1, 0)
	if err := p.Sync(context.Background(), svcs); err != nil {
		t.Fatal(err)
	}
	if el := f.Table.Maps[noEndpointSvcMap].FindElement("172.30.0.1", "tcp", "80"); el == nil || el.Value[0] != "goto "+rejectChain {
		t.Errorf("no-endpoint-services element = %+v", el)
	}
}

func TestClose(t *testing.T) {
	p, f := newFakeProxy(t)
	if err := p.Sync(context.Background(), proxytest.Services(2, 2)); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.Table != nil {
		t.Errorf("table left after Close:\n%s", f.Dump())
	}
}

func TestExecBackendRejectsBrokenTransaction(t *testing.T) {
	r := &command.Fake{Responses: map[string]command.FakeResponse{"nft": {}}}
	b := NewExecBackend(r, "/run/netns/x")
	tx := b.NewTransaction()
	tx.Add(&knftables.Chain{Name: "c", Type: ptr(knftables.NATType)}) // base chain without hook: invalid
	if err := b.Run(context.Background(), tx); err == nil {
		t.Fatal("invalid transaction was run")
	}
	if len(r.Calls) != 0 {
		t.Errorf("nft was called for an invalid transaction: %v", r.Calls)
	}
	tx = b.NewTransaction()
	tx.Add(&knftables.Table{})
	if err := b.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	if len(r.Calls) != 1 || r.Calls[0].Netns != "/run/netns/x" || strings.Join(r.Calls[0].Args, " ") != "-f -" {
		t.Errorf("calls = %+v", r.Calls)
	}
}

func TestCountJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    proxy.Counts
		wantErr bool
	}{
		{"table", `{"nftables":[{"metainfo":{}},{"table":{"name":"kube-proxy"}},{"chain":{"name":"a"}},{"chain":{"name":"b"}},{"map":{"name":"m","elem":[[1,2],[3,4]]}},{"set":{"name":"s","elem":["1.2.3.4"]}},{"rule":{}}]}`, proxy.Counts{Rules: 1, Chains: 2, MapEntries: 3}, false},
		{"empty map", `{"nftables":[{"table":{}},{"map":{"name":"m"}}]}`, proxy.Counts{}, false},
		{"no table", `{"nftables":[]}`, proxy.Counts{}, true},
		{"garbage", `Error: No such file or directory`, proxy.Counts{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CountJSON([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func sortedLines(s string) string {
	l := strings.Split(s, "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// recordBackend builds transactions like the real backends and only
// records them: no table copy, so what Update costs is the proxy's own
// work.
type recordBackend struct {
	txf  *knftables.Fake
	txs  []string
	fail int // Run number (1-based) that fails; 0: none
	keep bool
}

func newRecordBackend() *recordBackend {
	return &recordBackend{txf: knftables.NewFake(knftables.IPv4Family, tableName)}
}

func (r *recordBackend) NewTransaction() *knftables.Transaction { return r.txf.NewTransaction() }

func (r *recordBackend) Run(_ context.Context, tx *knftables.Transaction) error {
	if r.keep {
		r.txs = append(r.txs, tx.String())
	}
	if r.fail != 0 && len(r.txs) == r.fail {
		return fmt.Errorf("injected failure")
	}
	return nil
}

func (r *recordBackend) Count(context.Context) (proxy.Counts, error) { return proxy.Counts{}, nil }

// TestUpdateWorkIndependentOfN fails if Update goes back to touching every
// service (merging the whole list, validating or indexing all of it): the
// number of allocations of adding and removing one service must not grow
// with N.
func TestUpdateWorkIndependentOfN(t *testing.T) {
	ctx := context.Background()
	var allocs []float64
	for _, n := range []int{10, 5000} {
		p, err := New([]Backend{newRecordBackend()}, proxy.Target{ClusterCIDR: proxytest.ClusterCIDR})
		if err != nil {
			t.Fatal(err)
		}
		svcs := proxytest.Services(n+1, 2)
		if err := p.Sync(ctx, svcs[:n]); err != nil {
			t.Fatal(err)
		}
		extra := svcs[n]
		allocs = append(allocs, testing.AllocsPerRun(20, func() {
			if err := p.Update(ctx, []proxy.Service{extra}, nil); err != nil {
				t.Fatal(err)
			}
			if err := p.Update(ctx, nil, []string{extra.Key()}); err != nil {
				t.Fatal(err)
			}
		}))
	}
	if allocs[1] > allocs[0]+20 {
		t.Errorf("add+remove one service: %.0f allocations at 10 services, %.0f at 5000", allocs[0], allocs[1])
	}
}

// TestChunkedSync: a Sync larger than Chunk is split into skeleton and
// chains, endpoint-choice chunks, then every element at once, and ends in
// the same state as one transaction.
func TestChunkedSync(t *testing.T) {
	ctx := context.Background()
	svcs := proxytest.Services(5, 2)
	svcs = append(svcs, proxytest.Services(6, 0)[5]) // one without endpoints
	rec := newRecordBackend()
	rec.keep = true
	p, err := New([]Backend{rec}, proxy.Target{ClusterCIDR: proxytest.ClusterCIDR})
	if err != nil {
		t.Fatal(err)
	}
	p.Chunk = 2
	if err := p.Sync(ctx, svcs); err != nil {
		t.Fatal(err)
	}
	// 1 skeleton+chains, ceil(6/2)=3 chunks, 1 elements.
	if len(rec.txs) != 5 {
		t.Fatalf("%d transactions, want 5", len(rec.txs))
	}
	for i, tx := range rec.txs {
		last := i == len(rec.txs)-1
		if strings.Contains(tx, "add element") != last {
			t.Errorf("transaction %d: elements only and all in the last one:\n%s", i+1, tx)
		}
		if strings.Contains(tx, "numgen") != (i > 0 && !last) {
			t.Errorf("transaction %d: numgen rules only in the chunks:\n%s", i+1, tx)
		}
		if i > 0 && !last && strings.Count(tx, "numgen") > 2 {
			t.Errorf("transaction %d has more than Chunk numgen rules", i+1)
		}
	}
	// Same state as the one-transaction Sync, through the fake.
	f1, f2 := NewFakeBackend(), NewFakeBackend()
	p1, _ := New([]Backend{f1}, proxy.Target{ClusterCIDR: proxytest.ClusterCIDR})
	p2, _ := New([]Backend{f2}, proxy.Target{ClusterCIDR: proxytest.ClusterCIDR})
	p1.Chunk = 2
	if err := p1.Sync(ctx, svcs); err != nil {
		t.Fatal(err)
	}
	if err := p2.Sync(ctx, svcs); err != nil {
		t.Fatal(err)
	}
	if sortedLines(f1.Dump()) != sortedLines(f2.Dump()) {
		t.Errorf("chunked sync differs:\n%s\nvs\n%s", f1.Dump(), f2.Dump())
	}
	// And a later Update works on it.
	if err := p1.Update(ctx, nil, []string{svcs[0].Key()}); err != nil {
		t.Fatal(err)
	}
}

func TestFailedSyncNeedsSync(t *testing.T) {
	ctx := context.Background()
	rec := newRecordBackend()
	rec.keep, rec.fail = true, 2
	p, _ := New([]Backend{rec}, proxy.Target{})
	p.Chunk = 1
	svcs := proxytest.Services(3, 2)
	if err := p.Sync(ctx, svcs); err == nil {
		t.Fatal("sync with a failing transaction succeeded")
	}
	if err := p.Update(ctx, nil, []string{svcs[0].Key()}); err == nil {
		t.Error("update after a failed sync accepted")
	}
	rec.fail = 0
	if err := p.Sync(ctx, svcs); err != nil {
		t.Fatal(err)
	}
	if err := p.Update(ctx, nil, []string{svcs[0].Key()}); err != nil {
		t.Error(err)
	}
}

// TestChainNamesAreKubeProxys checks the chain names against kube-proxy's
// documented scheme, with hashes worked out by hand
// (base32(sha256(name))[:8] of the readable name).
func TestChainNamesAreKubeProxys(t *testing.T) {
	cases := []struct {
		svc  proxy.Service
		ep   proxy.Endpoint
		want []string
	}{
		{proxy.Service{Namespace: "ns1", Name: "svc1", PortName: "p80", Protocol: proxy.TCP},
			proxy.Endpoint{IP: netip.MustParseAddr("10.180.0.1"), Port: 80},
			[]string{"service-ULMVA6XW-ns1/svc1/tcp/p80", "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"}},
		{proxy.Service{Namespace: "ns2", Name: "svc2", PortName: "p80", Protocol: proxy.TCP},
			proxy.Endpoint{IP: netip.MustParseAddr("10.180.0.2"), Port: 80},
			[]string{"service-42NFTM6N-ns2/svc2/tcp/p80", "endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80"}},
	}
	for _, tc := range cases {
		got := []string{serviceChainName(tc.svc), endpointChainName(tc.svc, tc.ep)}
		if got[0] != tc.want[0] || got[1] != tc.want[1] {
			t.Errorf("%s: chains %q, want %q", tc.svc.Key(), got, tc.want)
		}
	}
}
