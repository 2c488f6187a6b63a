// Package ebpf is Cilium's socket-LB rebuilt for cnilab: a cgroup/connect4
// program written with cilium/ebpf asm rewrites connect() to a ClusterIP
// into a connect() to a backend, using Cilium's two-level lb4 maps
// (service {VIP, port, slot} -> backend id -> backend address). The
// socket then talks to the backend directly: no per-packet NAT, no
// conntrack entry for the VIP.
//
// Only traffic from sockets of processes in the target cgroup is
// translated. Cilium's tc-level LB for traffic that does not come from
// such a socket is not built here.
package ebpf

import (
	"context"
	"fmt"

	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/results"
)

// Default map sizes: Cilium's default is 64k, which does not hold 30k
// services × (1 frontend + 2 slots); these do.
const (
	DefaultMaxServices = 1 << 18
	DefaultMaxBackends = 1 << 17
)

type beRef struct {
	id   uint32
	refs int
}

// Proxy is socket-LB over a Maps.
type Proxy struct {
	maps   Maps
	closer func() error
	cur    []proxy.Service
	// backends are shared between services, as in Cilium, refcounted.
	backends map[string]*beRef
	nextID   uint32
	revNat   map[string]uint16
	nextRev  uint16
}

var _ proxy.Proxy = (*Proxy)(nil)

// New returns a proxy writing to m (a Fake in tests).
func New(m Maps) *Proxy {
	return &Proxy{maps: m, backends: map[string]*beRef{}, revNat: map[string]uint16{}, nextID: 1, nextRev: 1}
}

// NewKernel creates the maps and program and attaches it to the target's
// cgroup.
func NewKernel(t proxy.Target) (*Proxy, error) {
	if t.CgroupDir == "" {
		return nil, fmt.Errorf("ebpf proxy: target has no cgroup directory")
	}
	k, err := NewKernelMaps(DefaultMaxServices, DefaultMaxBackends)
	if err != nil {
		return nil, err
	}
	if err := k.Attach(t.CgroupDir); err != nil {
		k.Close()
		return nil, err
	}
	p := New(k)
	p.closer = k.Close
	return p, nil
}

// Name implements proxy.Proxy.
func (p *Proxy) Name() string { return "ebpf" }

// Fidelity implements proxy.Proxy: the socket-LB mechanism and map layout
// are Cilium's; the program is ours (hand-written asm, no reverse-NAT or
// getpeername hook).
func (p *Proxy) Fidelity() results.Fidelity { return results.Faithful }

func beName(e proxy.Endpoint, pr proxy.Protocol) string { return e.String() + "/" + string(pr) }

func frontName(s proxy.Service) string {
	return fmt.Sprintf("%v:%d/%s", s.ClusterIP, s.Port, s.Protocol)
}

// plan adds s's entries to b, allocating backend ids. Backend puts come
// first, then slots, then the frontend (count), so a reader never sees a
// count larger than the slots present.
func (p *Proxy) plan(b *Batch, s proxy.Service) {
	rev, ok := p.revNat[frontName(s)]
	if !ok {
		rev = p.nextRev
		p.nextRev++
		p.revNat[frontName(s)] = rev
	}
	for i, e := range s.Endpoints {
		name := beName(e, s.Protocol)
		r := p.backends[name]
		if r == nil {
			r = &beRef{id: p.nextID}
			p.nextID++
			p.backends[name] = r
			b.BackendPuts = append(b.BackendPuts, BackendEntry{makeBeKey(r.id), makeBeValue(e, s.Protocol)})
		}
		r.refs++
		b.ServicePuts = append(b.ServicePuts, ServiceEntry{makeSvcKey(s, uint16(i+1)), makeSvcValue(r.id, 0, rev)})
	}
	b.ServicePuts = append(b.ServicePuts, ServiceEntry{makeSvcKey(s, 0), makeSvcValue(0, uint16(len(s.Endpoints)), rev)})
}

// unplan removes old's entries from b, except slots still present in
// next (nil: the service goes). Backends whose last user left go last.
func (p *Proxy) unplan(b *Batch, old proxy.Service, next *proxy.Service) {
	keepSlots := 0
	if next != nil && frontName(*next) != frontName(old) {
		next = nil // a new frontend: the old one goes entirely
	}
	if next != nil {
		keepSlots = len(next.Endpoints) + 1
	} else {
		b.ServiceDels = append(b.ServiceDels, makeSvcKey(old, 0))
		delete(p.revNat, frontName(old))
	}
	for i, e := range old.Endpoints {
		if i+1 >= keepSlots {
			b.ServiceDels = append(b.ServiceDels, makeSvcKey(old, uint16(i+1)))
		}
		name := beName(e, old.Protocol)
		if r := p.backends[name]; r != nil {
			r.refs--
			if r.refs == 0 {
				b.BackendDels = append(b.BackendDels, makeBeKey(r.id))
				delete(p.backends, name)
			}
		}
	}
}

// Sync implements proxy.Proxy: entries of services no longer wanted are
// deleted, everything wanted is written.
func (p *Proxy) Sync(ctx context.Context, svcs []proxy.Service) error {
	if err := proxy.ValidateAll(svcs); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range svcs {
		want[s.Key()] = true
	}
	var remove []string
	for _, s := range p.cur {
		if !want[s.Key()] {
			remove = append(remove, s.Key())
		}
	}
	return p.Update(ctx, svcs, remove)
}

// Update implements proxy.Proxy: only the changed services' entries are
// written, as Cilium's agent does on a service event.
func (p *Proxy) Update(ctx context.Context, upsert []proxy.Service, remove []string) error {
	next := proxy.Apply(p.cur, upsert, remove)
	if err := proxy.ValidateAll(next); err != nil {
		return err
	}
	old := make(map[string]proxy.Service, len(p.cur))
	for _, s := range p.cur {
		old[s.Key()] = s
	}
	// Plan on copies of the allocator state so a failed apply leaves the
	// proxy consistent with the (unchanged) maps.
	saved := p.snapshot()
	var b Batch
	for _, s := range upsert {
		p.plan(&b, s)
	}
	for _, s := range upsert {
		if o, ok := old[s.Key()]; ok {
			s := s
			p.unplan(&b, o, &s)
		}
	}
	for _, k := range remove {
		if o, ok := old[k]; ok {
			p.unplan(&b, o, nil)
		}
	}
	// A backend dropped by one service and added by another in the same
	// batch is both put and deleted; keep it.
	b.BackendDels = withoutLive(b.BackendDels, p.backends)
	if err := p.maps.Apply(b); err != nil {
		p.restore(saved)
		return fmt.Errorf("ebpf map update: %w", err)
	}
	p.cur = next
	return nil
}

func withoutLive(dels []beKey, live map[string]*beRef) []beKey {
	ids := make(map[beKey]bool, len(live))
	for _, r := range live {
		ids[makeBeKey(r.id)] = true
	}
	out := dels[:0]
	for _, k := range dels {
		if !ids[k] {
			out = append(out, k)
		}
	}
	return out
}

type allocState struct {
	backends map[string]beRef
	nextID   uint32
	revNat   map[string]uint16
	nextRev  uint16
}

func (p *Proxy) snapshot() allocState {
	s := allocState{backends: make(map[string]beRef, len(p.backends)), nextID: p.nextID, revNat: make(map[string]uint16, len(p.revNat)), nextRev: p.nextRev}
	for k, v := range p.backends {
		s.backends[k] = *v
	}
	for k, v := range p.revNat {
		s.revNat[k] = v
	}
	return s
}

func (p *Proxy) restore(s allocState) {
	p.backends = make(map[string]*beRef, len(s.backends))
	for k, v := range s.backends {
		v := v
		p.backends[k] = &v
	}
	p.revNat, p.nextID, p.nextRev = s.revNat, s.nextID, s.nextRev
}

// Counts implements proxy.Proxy: map entries read back from the maps.
func (p *Proxy) Counts(context.Context) (proxy.Counts, error) {
	s, b, err := p.maps.Len()
	if err != nil {
		return proxy.Counts{}, err
	}
	return proxy.Counts{Rules: s + b, MapEntries: s + b}, nil
}

// Close implements proxy.Proxy: detach the program and free the maps.
func (p *Proxy) Close(ctx context.Context) error {
	p.cur = nil
	if p.closer != nil {
		err := p.closer()
		p.closer = nil
		return err
	}
	return nil
}
