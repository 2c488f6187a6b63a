package proxy

import (
	"fmt"
	"net/netip"
	"sort"
)

// Index holds a proxy's current services by key, with the frontends and
// ClusterIPs they use, so that a change (Update) is validated and applied
// in time proportional to the change, not to the number of services, as
// kube-proxy's partial syncs are.
type Index struct {
	svcs   map[string]Service
	fronts map[frontend]string // frontend -> key of the service using it
	ips    map[netip.Addr]int  // ClusterIP -> number of services using it
}

type frontend struct {
	ip    netip.Addr
	port  uint16
	proto Protocol
}

func frontOf(s Service) frontend { return frontend{s.ClusterIP, s.Port, s.Protocol} }

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{svcs: map[string]Service{}, fronts: map[frontend]string{}, ips: map[netip.Addr]int{}}
}

// Len is the number of services.
func (x *Index) Len() int { return len(x.svcs) }

// Get returns the service with key k.
func (x *Index) Get(k string) (Service, bool) {
	s, ok := x.svcs[k]
	return s, ok
}

// IPUsers is the number of services whose ClusterIP is ip.
func (x *Index) IPUsers(ip netip.Addr) int { return x.ips[ip] }

// Services returns every service, sorted by key (O(N): for full syncs and
// tests, not for Update).
func (x *Index) Services() []Service {
	out := make([]Service, 0, len(x.svcs))
	for _, s := range x.svcs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// Keys returns every key, sorted.
func (x *Index) Keys() []string {
	out := make([]string, 0, len(x.svcs))
	for k := range x.svcs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Change is an Update's arguments normalised: Upsert without the services
// whose key is also in Remove (removal wins, as in Apply), and Remove
// without keys the index does not hold.
type Change struct {
	Upsert []Service
	Remove []string
}

// Check validates a change against the index without modifying it: every
// upserted service (and only those) is validated, no key is upserted
// twice, and no two services of the result share a frontend. It returns
// the normalised change.
func (x *Index) Check(upsert []Service, remove []string) (Change, error) {
	var c Change
	rm := make(map[string]bool, len(remove))
	for _, k := range remove {
		if _, ok := x.svcs[k]; ok && !rm[k] {
			c.Remove = append(c.Remove, k)
		}
		rm[k] = true
	}
	up := make(map[string]Service, len(upsert))
	newFronts := make(map[frontend]string, len(upsert))
	for _, s := range upsert {
		k := s.Key()
		if rm[k] {
			continue
		}
		if err := s.Validate(); err != nil {
			return Change{}, err
		}
		if _, dup := up[k]; dup {
			return Change{}, fmt.Errorf("service %s listed twice", k)
		}
		up[k] = s
		f := frontOf(s)
		if other, dup := newFronts[f]; dup {
			return Change{}, fmt.Errorf("service %s: frontend %v:%d/%s used by service %s", k, f.ip, f.port, f.proto, other)
		}
		newFronts[f] = k
		c.Upsert = append(c.Upsert, s)
	}
	// A frontend already in use is free only if its owner goes away or
	// moves to another frontend in this change.
	for f, k := range newFronts {
		owner, used := x.fronts[f]
		if !used || owner == k || rm[owner] {
			continue
		}
		if moved, ok := up[owner]; ok && frontOf(moved) != f {
			continue
		}
		return Change{}, fmt.Errorf("service %s: frontend %v:%d/%s used by service %s", k, f.ip, f.port, f.proto, owner)
	}
	return c, nil
}

// IPUsersAfter returns IPUsers as it will be once c is applied, computed
// from c alone.
func (x *Index) IPUsersAfter(c Change) func(netip.Addr) int {
	delta := make(map[netip.Addr]int, len(c.Remove)+len(c.Upsert))
	for _, k := range c.Remove {
		delta[x.svcs[k].ClusterIP]--
	}
	for _, s := range c.Upsert {
		if old, ok := x.svcs[s.Key()]; ok {
			delta[old.ClusterIP]--
		}
		delta[s.ClusterIP]++
	}
	return func(ip netip.Addr) int { return x.ips[ip] + delta[ip] }
}

// Apply commits a change Check returned.
func (x *Index) Apply(c Change) {
	for _, k := range c.Remove {
		x.drop(k)
	}
	for _, s := range c.Upsert {
		x.drop(s.Key())
	}
	for _, s := range c.Upsert {
		k := s.Key()
		x.svcs[k] = s
		x.fronts[frontOf(s)] = k
		x.ips[s.ClusterIP]++
	}
}

func (x *Index) drop(k string) {
	s, ok := x.svcs[k]
	if !ok {
		return
	}
	delete(x.svcs, k)
	if x.fronts[frontOf(s)] == k {
		delete(x.fronts, frontOf(s))
	}
	if x.ips[s.ClusterIP]--; x.ips[s.ClusterIP] <= 0 {
		delete(x.ips, s.ClusterIP)
	}
}
