package netplan

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Fake is an in-memory Applier. It holds the state of every namespace it
// created, rejects what the kernel would reject (duplicate names, a master
// that is not a bridge, a route through a missing device, a gateway that is
// not reachable on-link), applies each plan all-or-nothing, and prints its
// state as text.
type Fake struct {
	mu sync.Mutex
	ns map[string]*fakeNS
}

type fakeNS struct {
	links   map[string]Link
	addrs   []Addr
	routes  []Route
	neighs  []Neigh
	fdbs    []FDB
	sysctls map[string]string
}

// NewFake returns an empty fake kernel.
func NewFake() *Fake { return &Fake{ns: map[string]*fakeNS{}} }

var _ Applier = (*Fake)(nil)

func (f *Fake) clone() map[string]*fakeNS {
	out := make(map[string]*fakeNS, len(f.ns))
	for k, v := range f.ns {
		n := &fakeNS{links: map[string]Link{}, sysctls: map[string]string{}}
		for lk, l := range v.links {
			n.links[lk] = l
		}
		n.addrs = slices.Clone(v.addrs)
		n.routes = slices.Clone(v.routes)
		n.neighs = slices.Clone(v.neighs)
		n.fdbs = slices.Clone(v.fdbs)
		for sk, s := range v.sysctls {
			n.sysctls[sk] = s
		}
		out[k] = n
	}
	return out
}

// Apply implements Applier.
func (f *Fake) Apply(_ context.Context, p *Plan) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.clone()
	if err := applyTo(st, p); err != nil {
		return err
	}
	f.ns = st
	return nil
}

// Destroy implements Applier.
func (f *Fake) Destroy(_ context.Context, p *Plan) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range p.Namespaces {
		delete(f.ns, n)
	}
	// A veth whose peer's namespace died dies with it, as in the kernel.
	for _, n := range f.ns {
		for name, l := range n.links {
			if l.Kind == KindVeth && l.PeerNS != "" {
				if _, ok := f.ns[l.PeerNS]; !ok {
					delete(n.links, name)
				}
			}
		}
	}
	return nil
}

// Namespaces lists the namespaces the fake holds.
func (f *Fake) Namespaces() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.ns {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func applyTo(st map[string]*fakeNS, p *Plan) error {
	for _, n := range p.Namespaces {
		if _, ok := st[n]; ok {
			return fmt.Errorf("netns %s: already exists", n)
		}
		st[n] = &fakeNS{links: map[string]Link{"lo": {NS: n, Name: "lo", Kind: "loopback", MTU: 65536}}, sysctls: map[string]string{}}
	}
	get := func(ns string) (*fakeNS, error) {
		n, ok := st[ns]
		if !ok {
			return nil, fmt.Errorf("netns %s: does not exist", ns)
		}
		return n, nil
	}
	for _, l := range p.Links {
		n, err := get(l.NS)
		if err != nil {
			return fmt.Errorf("link %s: %w", l.Name, err)
		}
		if len(l.Name) > 15 {
			return fmt.Errorf("link %s/%s: name longer than 15 bytes", l.NS, l.Name)
		}
		if _, dup := n.links[l.Name]; dup {
			return fmt.Errorf("link %s/%s: file exists", l.NS, l.Name)
		}
		switch l.Kind {
		case KindBridge, KindIPIP:
		case KindVeth:
			pn, err := get(l.PeerNS)
			if err != nil {
				return fmt.Errorf("veth %s peer: %w", l.Name, err)
			}
			if _, dup := pn.links[l.PeerName]; dup {
				return fmt.Errorf("veth %s peer %s/%s: file exists", l.Name, l.PeerNS, l.PeerName)
			}
			if len(l.PeerName) > 15 {
				return fmt.Errorf("veth peer %s/%s: name longer than 15 bytes", l.PeerNS, l.PeerName)
			}
			mtu := l.PeerMTU
			if mtu == 0 {
				mtu = l.MTU
			}
			pn.links[l.PeerName] = Link{NS: l.PeerNS, Name: l.PeerName, Kind: KindVeth, MTU: mtu, MAC: l.PeerMAC, PeerNS: l.NS, PeerName: l.Name}
		case KindVXLAN:
			if l.VNI <= 0 || l.VNI >= 1<<24 {
				return fmt.Errorf("vxlan %s/%s: VNI %d out of range", l.NS, l.Name, l.VNI)
			}
			if l.Parent != "" {
				parent, ok := n.links[l.Parent]
				if !ok {
					return fmt.Errorf("vxlan %s/%s: parent %s: no such device", l.NS, l.Name, l.Parent)
				}
				// The kernel caps a bound VXLAN device at its parent's
				// MTU minus the IPv4 VXLAN overhead, without an error.
				if top := parent.MTU - 50; l.MTU > top {
					l.MTU = top
				}
			}
		default:
			return fmt.Errorf("link %s/%s: unknown kind %q", l.NS, l.Name, l.Kind)
		}
		if l.Master != "" {
			m, ok := n.links[l.Master]
			if !ok || m.Kind != KindBridge {
				return fmt.Errorf("link %s/%s: master %s is not a bridge in that namespace", l.NS, l.Name, l.Master)
			}
		}
		n.links[l.Name] = l
	}
	for _, a := range p.Addrs {
		n, err := get(a.NS)
		if err != nil {
			return fmt.Errorf("addr %s: %w", a.Prefix, err)
		}
		if _, ok := n.links[a.Dev]; !ok {
			return fmt.Errorf("addr %s on %s/%s: no such device", a.Prefix, a.NS, a.Dev)
		}
		n.addrs = append(n.addrs, a)
	}
	for _, r := range p.Routes {
		n, err := get(r.NS)
		if err != nil {
			return fmt.Errorf("route %s: %w", r.Dst, err)
		}
		if r.Type == RouteBlackhole {
			n.routes = append(n.routes, r)
			continue
		}
		if _, ok := n.links[r.Dev]; !ok {
			return fmt.Errorf("route %s in %s: dev %s: no such device", r.Dst, r.NS, r.Dev)
		}
		if r.Gw.IsValid() && !r.Onlink && !reachable(n, r.Dev, r.Gw) {
			// The kernel answers "Nexthop has invalid gateway".
			return fmt.Errorf("route %s via %s dev %s in %s: gateway not on-link", r.Dst, r.Gw, r.Dev, r.NS)
		}
		for _, old := range n.routes {
			if old.Dst == r.Dst && old.Type != RouteBlackhole {
				return fmt.Errorf("route %s in %s: file exists", r.Dst, r.NS)
			}
		}
		n.routes = append(n.routes, r)
	}
	for _, e := range p.Neighs {
		n, err := get(e.NS)
		if err != nil {
			return err
		}
		if _, ok := n.links[e.Dev]; !ok {
			return fmt.Errorf("neigh %s on %s/%s: no such device", e.IP, e.NS, e.Dev)
		}
		n.neighs = append(n.neighs, e)
	}
	for _, e := range p.FDBs {
		n, err := get(e.NS)
		if err != nil {
			return err
		}
		l, ok := n.links[e.Dev]
		if !ok || l.Kind != KindVXLAN {
			return fmt.Errorf("fdb %s on %s/%s: not a vxlan device", e.MAC, e.NS, e.Dev)
		}
		n.fdbs = append(n.fdbs, e)
	}
	for _, s := range p.Sysctls {
		n, err := get(s.NS)
		if err != nil {
			return err
		}
		// Per-device keys need the device (net/ipv4/conf/<dev>/...).
		if dev := sysctlDev(s.Key); dev != "" && dev != "all" && dev != "default" {
			if _, ok := n.links[dev]; !ok {
				return fmt.Errorf("sysctl %s in %s: no such device %s", s.Key, s.NS, dev)
			}
		}
		n.sysctls[s.Key] = s.Value
	}
	return nil
}

// sysctlDev returns the device of a per-device key such as
// net/ipv4/conf/cali123/proxy_arp or net/ipv4/neigh/cali123/proxy_delay.
func sysctlDev(key string) string {
	parts := strings.Split(key, "/")
	if len(parts) == 5 && parts[0] == "net" && (parts[2] == "conf" || parts[2] == "neigh") {
		return parts[3]
	}
	return ""
}

// reachable reports whether gw lies in a prefix configured on dev (or, with
// an empty dev, any device).
func reachable(n *fakeNS, dev string, gw netip.Addr) bool {
	for _, a := range n.addrs {
		if (dev == "" || a.Dev == dev) && a.Prefix.Masked().Contains(gw) && a.Prefix.Bits() < 32 {
			return true
		}
	}
	for _, r := range n.routes {
		if r.Dev == dev && r.LinkScope && r.Dst.Contains(gw) {
			return true
		}
	}
	return false
}

// String prints the whole state, sorted, one namespace after another.
func (f *Fake) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	names := make([]string, 0, len(f.ns))
	for n := range f.ns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		n := f.ns[name]
		fmt.Fprintf(&b, "netns %s\n", name)
		var lines []string
		for _, l := range n.links {
			if l.Kind == "loopback" {
				continue
			}
			lines = append(lines, "  link "+describeLink(l))
		}
		sort.Strings(lines)
		b.WriteString(joinLines(lines))
		lines = lines[:0]
		for _, a := range n.addrs {
			lines = append(lines, fmt.Sprintf("  addr %s dev %s", a.Prefix, a.Dev))
		}
		sort.Strings(lines)
		b.WriteString(joinLines(lines))
		lines = lines[:0]
		for _, r := range n.routes {
			lines = append(lines, "  route "+describeRoute(r))
		}
		sort.Strings(lines)
		b.WriteString(joinLines(lines))
		lines = lines[:0]
		for _, e := range n.neighs {
			lines = append(lines, fmt.Sprintf("  neigh %s lladdr %s dev %s permanent", e.IP, e.MAC, e.Dev))
		}
		for _, e := range n.fdbs {
			lines = append(lines, fmt.Sprintf("  fdb %s dev %s dst %s self permanent", e.MAC, e.Dev, e.Dst))
		}
		for k, v := range n.sysctls {
			lines = append(lines, fmt.Sprintf("  sysctl %s=%s", k, v))
		}
		sort.Strings(lines)
		b.WriteString(joinLines(lines))
	}
	return b.String()
}

func joinLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func describeLink(l Link) string {
	s := fmt.Sprintf("%s %s mtu %d", l.Name, l.Kind, l.MTU)
	if l.MAC != "" {
		s += " mac " + l.MAC
	}
	switch l.Kind {
	case KindVeth:
		s += fmt.Sprintf(" peer %s/%s", l.PeerNS, l.PeerName)
	case KindVXLAN:
		s += fmt.Sprintf(" id %d dstport %d local %s", l.VNI, l.Port, l.Local)
		if l.Parent != "" {
			s += " dev " + l.Parent
		}
		if !l.Learning {
			s += " nolearning"
		}
	}
	if l.Master != "" {
		s += " master " + l.Master
	}
	if l.Hairpin {
		s += " hairpin"
	}
	return s
}

func describeRoute(r Route) string {
	if r.Type == RouteBlackhole {
		s := "blackhole " + r.Dst.String()
		if r.Proto != 0 {
			s += fmt.Sprintf(" proto %d", r.Proto)
		}
		return s
	}
	s := r.Dst.String()
	if r.Gw.IsValid() {
		s += " via " + r.Gw.String()
	}
	s += " dev " + r.Dev
	if r.LinkScope {
		s += " scope link"
	}
	if r.Onlink {
		s += " onlink"
	}
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	if r.Proto != 0 {
		s += fmt.Sprintf(" proto %d", r.Proto)
	}
	if r.MTU != 0 {
		s += fmt.Sprintf(" mtu %d", r.MTU)
	}
	return s
}
