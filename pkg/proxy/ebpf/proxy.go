// Package ebpf is Cilium's socket-LB rebuilt for cnilab: a cgroup/connect4
// program written with cilium/ebpf asm rewrites connect() to a ClusterIP
// into a connect() to a backend, using Cilium's two-level lb4 maps
// (service {VIP, port, slot} -> backend id -> backend address). The
// socket then talks to the backend directly: no per-packet NAT, no
// conntrack entry for the VIP.
//
// Only traffic from sockets of processes in the target cgroup is
// translated by socket-LB. For other traffic there is a per-packet TC
// path (AttachTC, or Target.PodHostIfaces): two hand-written sched_cls
// programs on each pod's host-side interface doing DNAT on the way out of
// the pod and reverse NAT on the way in, from the same maps. It stands in
// for Cilium's bpf_lxc service handling and is approximate (TCNote).
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
	tc     map[TCAttachment]bool
	closer func() error
	idx    *proxy.Index
	// backends are shared between services, as in Cilium, refcounted.
	backends map[string]*beRef
	nextID   uint32
	revNat   map[string]uint16
	nextRev  uint16
}

var _ proxy.Proxy = (*Proxy)(nil)

// New returns a proxy writing to m (a Fake in tests).
func New(m Maps) *Proxy {
	return &Proxy{maps: m, tc: map[TCAttachment]bool{}, idx: proxy.NewIndex(), backends: map[string]*beRef{}, revNat: map[string]uint16{}, nextID: 1, nextRev: 1}
}

// NewKernel creates the maps and program and attaches it to the target's
// cgroup, and attaches the TC path to t.PodHostIfaces when there are any.
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
	if err := p.AttachTC(t.PodHostIfaces); err != nil {
		k.Close()
		return nil, err
	}
	return p, nil
}

// TCAttachment is a pod's host-side interface: the netns path it lives in
// (the node's) and its name there.
type TCAttachment = proxy.HostIface

// TCNote is the label for the lab notes when the TC path is attached: the
// proxy's Fidelity() describes socket-LB only.
const TCNote = "services: per-packet TC DNAT is approximate: hand-written program, not Cilium's bpf_lxc " +
	"(LRU flow table instead of Cilium's conntrack: no TCP state, timeouts or GC, UDP flows kept until evicted; no hairpin SNAT, ICMP error translation, fragments or IP options)"

// TCAttacher is a Maps that can carry the per-packet TC path.
type TCAttacher interface {
	AttachTC(ifaces []TCAttachment) error
}

// AttachTC adds the per-packet TC service path on each interface: DNAT to
// a backend at ingress (packets leaving the pod), reverse NAT at egress
// (packets going to the pod). Each interface is attached once; Close
// detaches all. Call it with the pods' host-side veths in the node
// namespace, e.g. {Netns: "/run/netns/<node>", Name: "veth0"}.
func (p *Proxy) AttachTC(ifaces []TCAttachment) error {
	if len(ifaces) == 0 {
		return nil
	}
	a, ok := p.maps.(TCAttacher)
	if !ok {
		return fmt.Errorf("ebpf proxy: %T cannot attach the TC path", p.maps)
	}
	seen := map[TCAttachment]bool{}
	for _, ifc := range ifaces {
		if ifc.Netns == "" || ifc.Name == "" {
			return fmt.Errorf("TC attachment %v: namespace and interface name are required", ifc)
		}
		if p.tc[ifc] || seen[ifc] {
			return fmt.Errorf("TC attachment %v: already attached", ifc)
		}
		seen[ifc] = true
	}
	if err := a.AttachTC(ifaces); err != nil {
		return err
	}
	for _, ifc := range ifaces {
		p.tc[ifc] = true
	}
	return nil
}

// TCAttached reports how many interfaces carry the TC path.
func (p *Proxy) TCAttached() int { return len(p.tc) }

// Notes are the lab-notes lines this proxy's setup calls for: TCNote once
// the TC path is attached.
func (p *Proxy) Notes() []string {
	if len(p.tc) == 0 {
		return nil
	}
	return []string{TCNote}
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

// undo records the allocator state a planned change touches, so a batch
// the maps reject is forgotten in time proportional to the change (not by
// copying the allocator).
type undo struct {
	backends map[string]*beRef // nil: the name did not exist
	revNat   map[string]*uint16
	nextID   uint32
	nextRev  uint16
}

func (p *Proxy) newUndo() *undo {
	return &undo{backends: map[string]*beRef{}, revNat: map[string]*uint16{}, nextID: p.nextID, nextRev: p.nextRev}
}

func (u *undo) backend(p *Proxy, name string) {
	if _, seen := u.backends[name]; seen {
		return
	}
	if r := p.backends[name]; r != nil {
		c := *r
		u.backends[name] = &c
	} else {
		u.backends[name] = nil
	}
}

func (u *undo) rev(p *Proxy, name string) {
	if _, seen := u.revNat[name]; seen {
		return
	}
	if v, ok := p.revNat[name]; ok {
		u.revNat[name] = &v
	} else {
		u.revNat[name] = nil
	}
}

func (u *undo) restore(p *Proxy) {
	for name, r := range u.backends {
		if r == nil {
			delete(p.backends, name)
		} else {
			p.backends[name] = r
		}
	}
	for name, v := range u.revNat {
		if v == nil {
			delete(p.revNat, name)
		} else {
			p.revNat[name] = *v
		}
	}
	p.nextID, p.nextRev = u.nextID, u.nextRev
}

// deadBackend is a backend whose last user left in this change.
type deadBackend struct {
	name string
	id   uint32
}

// plan adds s's entries to b, allocating backend ids. Backend puts come
// first, then slots, then the frontend (count), so a reader never sees a
// count larger than the slots present.
func (p *Proxy) plan(b *Batch, u *undo, s proxy.Service) {
	fn := frontName(s)
	rev, ok := p.revNat[fn]
	if !ok {
		u.rev(p, fn)
		rev = p.nextRev
		p.nextRev++
		p.revNat[fn] = rev
	}
	for i, e := range s.Endpoints {
		name := beName(e, s.Protocol)
		u.backend(p, name)
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
// next (nil: the service goes). Backends whose last user left are
// returned; they are deleted last.
func (p *Proxy) unplan(b *Batch, u *undo, old proxy.Service, next *proxy.Service, dead []deadBackend) []deadBackend {
	keepSlots := 0
	if next != nil && frontName(*next) != frontName(old) {
		next = nil // a new frontend: the old one goes entirely
	}
	if next != nil {
		keepSlots = len(next.Endpoints) + 1
	} else {
		b.ServiceDels = append(b.ServiceDels, makeSvcKey(old, 0))
		u.rev(p, frontName(old))
		delete(p.revNat, frontName(old))
	}
	for i, e := range old.Endpoints {
		if i+1 >= keepSlots {
			b.ServiceDels = append(b.ServiceDels, makeSvcKey(old, uint16(i+1)))
		}
		name := beName(e, old.Protocol)
		if r := p.backends[name]; r != nil {
			u.backend(p, name)
			r.refs--
			if r.refs == 0 {
				dead = append(dead, deadBackend{name, r.id})
				delete(p.backends, name)
			}
		}
	}
	return dead
}

// Sync implements proxy.Proxy: entries of services no longer wanted are
// deleted, everything wanted is written.
func (p *Proxy) Sync(ctx context.Context, svcs []proxy.Service) error {
	if err := proxy.ValidateAll(svcs); err != nil {
		return err
	}
	want := make(map[string]bool, len(svcs))
	for _, s := range svcs {
		want[s.Key()] = true
	}
	var remove []string
	for _, k := range p.idx.Keys() {
		if !want[k] {
			remove = append(remove, k)
		}
	}
	return p.Update(ctx, svcs, remove)
}

// Update implements proxy.Proxy: only the changed services' entries are
// written, as Cilium's agent does on a service event, and only the changed
// services are validated and looked at.
func (p *Proxy) Update(ctx context.Context, upsert []proxy.Service, remove []string) error {
	c, err := p.idx.Check(upsert, remove)
	if err != nil {
		return err
	}
	u := p.newUndo()
	var b Batch
	for _, s := range c.Upsert {
		p.plan(&b, u, s)
	}
	var dead []deadBackend
	for _, s := range c.Upsert {
		if o, ok := p.idx.Get(s.Key()); ok {
			s := s
			dead = p.unplan(&b, u, o, &s, dead)
		}
	}
	for _, k := range c.Remove {
		o, _ := p.idx.Get(k)
		dead = p.unplan(&b, u, o, nil, dead)
	}
	// Every plan runs before every unplan, so a backend that lost its last
	// user here cannot have gained a new one; the check is cheap insurance.
	for _, d := range dead {
		if p.backends[d.name] == nil {
			b.BackendDels = append(b.BackendDels, makeBeKey(d.id))
		}
	}
	if err := p.maps.Apply(b); err != nil {
		u.restore(p)
		return fmt.Errorf("ebpf map update: %w", err)
	}
	p.idx.Apply(c)
	return nil
}

// Services returns the services the proxy holds, sorted by key.
func (p *Proxy) Services() []proxy.Service { return p.idx.Services() }

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
	p.idx = proxy.NewIndex()
	p.backends, p.revNat = map[string]*beRef{}, map[string]uint16{}
	p.tc = map[TCAttachment]bool{}
	if p.closer != nil {
		err := p.closer()
		p.closer = nil
		return err
	}
	return nil
}
