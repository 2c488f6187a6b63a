package ebpf

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/proxy/proxytest"
)

func TestSyncGolden(t *testing.T) {
	f := NewFake(1000, 1000)
	p := New(f)
	if err := p.Sync(context.Background(), proxytest.Services(3, 3)); err != nil {
		t.Fatal(err)
	}
	proxytest.Golden(t, "sync-3x3", f.Dump())
}

func TestEntriesPerEndpoint(t *testing.T) {
	ctx := context.Background()
	prev := 0
	for e := 1; e <= 4; e++ {
		p := New(NewFake(1000, 1000))
		if err := p.Sync(ctx, proxytest.Services(1, e)); err != nil {
			t.Fatal(err)
		}
		c, err := p.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// One slot entry plus one backend entry per endpoint, plus the
		// frontend.
		if c.MapEntries != 1+2*e {
			t.Errorf("%d endpoints: %d entries, want %d", e, c.MapEntries, 1+2*e)
		}
		if e > 1 && c.MapEntries-prev != 2 {
			t.Errorf("endpoint %d added %d entries", e, c.MapEntries-prev)
		}
		prev = c.MapEntries
	}
}

func TestUpdateOnlyChanged(t *testing.T) {
	ctx := context.Background()
	f := NewFake(1000, 1000)
	p := New(f)
	svcs := proxytest.Services(3, 3)
	if err := p.Sync(ctx, svcs); err != nil {
		t.Fatal(err)
	}
	// svc2 shrinks to 2 endpoints, one of them new.
	changed := svcs[1]
	changed.Endpoints = []proxy.Endpoint{svcs[1].Endpoints[0], {IP: svcs[1].Endpoints[2].IP.Next(), Port: 8080}}
	if err := p.Update(ctx, []proxy.Service{changed}, nil); err != nil {
		t.Fatal(err)
	}
	b := f.LastBatch
	if len(b.BackendPuts) != 1 || len(b.ServicePuts) != 3 || len(b.ServiceDels) != 1 || len(b.BackendDels) != 2 {
		t.Errorf("batch: %d backend puts, %d service puts, %d service dels, %d backend dels; want 1, 3, 1, 2",
			len(b.BackendPuts), len(b.ServicePuts), len(b.ServiceDels), len(b.BackendDels))
	}
	for _, e := range b.ServicePuts {
		if s := fmtSvcKey(e.Key); !strings.HasPrefix(s, "172.30.0.2:") {
			t.Errorf("update wrote entry %s of an unchanged service", s)
		}
	}
	proxytest.Golden(t, "update-svc2", f.Dump())
	// Remove everything: maps end empty.
	if err := p.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if s, be, _ := f.Len(); s != 0 || be != 0 {
		t.Errorf("after removing all: %d service and %d backend entries\n%s", s, be, f.Dump())
	}
}

func TestSharedBackendsAndFailedApply(t *testing.T) {
	ctx := context.Background()
	f := NewFake(7, 100) // room for two services of 2 endpoints (3 entries each), not three
	p := New(f)
	svcs := proxytest.Services(2, 2)
	svcs[1].Endpoints = svcs[0].Endpoints // same pods behind two services
	if err := p.Sync(ctx, svcs); err != nil {
		t.Fatal(err)
	}
	if _, be, _ := f.Len(); be != 2 {
		t.Errorf("shared backends stored %d times, want 2 entries", be)
	}
	before := f.Dump()
	third := proxytest.Services(3, 2)[2]
	if err := p.Update(ctx, []proxy.Service{third}, nil); err == nil {
		t.Fatal("overflowing update succeeded")
	}
	if f.Dump() != before {
		t.Error("failed update changed the maps")
	}
	// The proxy is still consistent: removing svc1 keeps the shared backends.
	if err := p.Update(ctx, nil, []string{svcs[0].Key()}); err != nil {
		t.Fatal(err)
	}
	if s, be, _ := f.Len(); s != 3 || be != 2 {
		t.Errorf("after removing svc1: %d service entries, %d backends; want 3, 2", s, be)
	}
}

func TestKeyLayout(t *testing.T) {
	s := proxytest.Services(1, 1)[0]
	k := makeSvcKey(s, 2)
	// Address and port in network order, as connect4 reads them from
	// bpf_sock_addr.
	want := []byte{172, 30, 0, 1, 0, 80}
	if string(k[:6]) != string(want) || k[8] != 6 {
		t.Errorf("key = % x", k)
	}
	v := makeBeValue(s.Endpoints[0], proxy.TCP)
	if string(v[:6]) != string([]byte{10, 180, 0, 1, 0x1f, 0x90}) {
		t.Errorf("backend value = % x", v)
	}
}

// countMaps accepts every batch and keeps only its sizes, so what Update
// costs is the proxy's own work.
type countMaps struct{ applies, entries int }

func (c *countMaps) Apply(b Batch) error {
	c.applies++
	c.entries = len(b.BackendPuts) + len(b.ServicePuts) + len(b.ServiceDels) + len(b.BackendDels)
	return nil
}

func (c *countMaps) Len() (int, int, error) { return 0, 0, nil }

// TestUpdateWorkIndependentOfN fails if Update goes back to touching every
// service or copying the allocator: adding and removing one service must
// allocate as much, and write as many entries, at 5000 services as at 10.
func TestUpdateWorkIndependentOfN(t *testing.T) {
	ctx := context.Background()
	var allocs []float64
	var entries []int
	for _, n := range []int{10, 5000} {
		m := &countMaps{}
		p := New(m)
		svcs := proxytest.Services(n+1, 2)
		if err := p.Sync(ctx, svcs[:n]); err != nil {
			t.Fatal(err)
		}
		extra := svcs[n]
		// proxytest's endpoint addresses repeat every 256 services; these
		// are the extra service's own.
		extra.Endpoints = []proxy.Endpoint{{IP: netip.MustParseAddr("10.250.0.1"), Port: 8080}, {IP: netip.MustParseAddr("10.250.0.2"), Port: 8080}}
		allocs = append(allocs, testing.AllocsPerRun(20, func() {
			if err := p.Update(ctx, []proxy.Service{extra}, nil); err != nil {
				t.Fatal(err)
			}
			if err := p.Update(ctx, nil, []string{extra.Key()}); err != nil {
				t.Fatal(err)
			}
		}))
		entries = append(entries, m.entries)
	}
	if allocs[1] > allocs[0]+20 {
		t.Errorf("add+remove one service: %.0f allocations at 10 services, %.0f at 5000", allocs[0], allocs[1])
	}
	if entries[0] != entries[1] || entries[0] == 0 {
		t.Errorf("removing one service wrote %d entries at 10 services, %d at 5000", entries[0], entries[1])
	}
}
