// Package netplan describes a lab's network as data — namespaces, links,
// addresses, routes, neighbour and FDB entries, sysctls — so datapath
// builders can be tested without root. A Plan is applied by an Applier: the
// Kernel applier programs it with netlink, the Fake applier keeps it in
// memory, checks it the way the kernel would and prints it as text for
// golden comparisons.
package netplan

import (
	"context"
	"net/netip"
)

// Link kinds.
const (
	KindBridge = "bridge"
	KindVeth   = "veth"
	KindVXLAN  = "vxlan"
	KindIPIP   = "ipip"
)

// Plan is everything a lab consists of, in the order it must be created:
// namespaces, then links, addresses, routes, neighbours, FDB entries.
// Sysctls for a link are written after the link exists.
type Plan struct {
	Namespaces []string
	Links      []Link
	Addrs      []Addr
	Routes     []Route
	Neighs     []Neigh
	FDBs       []FDB
	Sysctls    []Sysctl
}

// Link is a network device. Every link is brought up.
type Link struct {
	NS   string
	Name string
	Kind string
	MTU  int
	// MAC, when set, is forced (Calico's ee:ee:ee:ee:ee:ee host veths, VTEP
	// MACs that remote FDB entries refer to).
	MAC string
	// Master is a bridge in the same namespace.
	Master string
	// Hairpin turns on hairpin mode on the bridge port (bridge CNI plugin).
	Hairpin bool

	// Veth: the peer end, created directly in PeerNS.
	PeerNS   string
	PeerName string
	PeerMTU  int
	PeerMAC  string

	// VXLAN.
	VNI   int
	Port  int
	Local netip.Addr
	// Parent is the underlay device in the same namespace the device is
	// bound to; the kernel then caps the VXLAN device's MTU at the
	// parent's minus 50. Empty: none, the outer packet is routed (Cilium's
	// cilium_vxlan).
	Parent   string
	Learning bool
}

// Addr is an address on a link.
type Addr struct {
	NS     string
	Dev    string
	Prefix netip.Prefix
}

// Route types.
const (
	RouteUnicast   = "unicast"
	RouteBlackhole = "blackhole"
)

// Route is an IPv4 route in the main table.
type Route struct {
	NS     string
	Dst    netip.Prefix
	Gw     netip.Addr
	Dev    string
	Onlink bool
	// LinkScope marks a directly connected route (scope link).
	LinkScope bool
	Src       netip.Addr
	Type      string // unicast (default) or blackhole
	// Proto is the routing protocol number that installed it (bird 12,
	// zebra 17, static 4); 0 means boot.
	Proto int
	MTU   int
}

// Neigh is a permanent IPv4 neighbour entry.
type Neigh struct {
	NS  string
	Dev string
	IP  netip.Addr
	MAC string
}

// FDB is a permanent forwarding-database entry on a VXLAN device: frames for
// MAC go to the remote VTEP Dst.
type FDB struct {
	NS  string
	Dev string
	MAC string
	Dst netip.Addr
}

// Sysctl is a per-namespace sysctl under /proc/sys, written as a path
// relative to it ("net/ipv4/ip_forward").
type Sysctl struct {
	NS    string
	Key   string
	Value string
}

// Applier programs a plan.
type Applier interface {
	// Apply creates everything in the plan. On error nothing of the plan
	// is left behind.
	Apply(ctx context.Context, p *Plan) error
	// Destroy removes the plan's namespaces and everything in them.
	Destroy(ctx context.Context, p *Plan) error
}
