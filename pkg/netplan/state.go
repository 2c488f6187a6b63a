package netplan

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// State is what a set of namespaces holds, read back after a plan was
// applied: by the Fake from memory, by ReadKernel from the kernel. Two
// appliers that agree on a plan agree on its State. Loopback devices and
// what the kernel derives on its own (the connected route of each address,
// the local table, IPv6 link-local addresses) are not in it: the Fake
// models them through the addresses themselves.
type State map[string]NSState

// NSState is one namespace.
type NSState struct {
	Links []LinkState
	// Addrs, Routes, Neighs and FDBs are one line each in the Fake's text
	// form ("172.18.0.2/24 dev eth0"), sorted.
	Addrs  []string
	Routes []string
	Neighs []string
	FDBs   []string
	// Sysctls holds the keys the plan set, with their values.
	Sysctls map[string]string
}

// LinkState is one device.
type LinkState struct {
	Name string
	Kind string
	MTU  int
	// TxQLen is the device's transmit queue length (txqueuelen).
	TxQLen int
	Up     bool
	// MAC is the address; the Fake knows it only where the plan forces one.
	MAC     string
	Master  string
	Hairpin bool
	// Veth peer.
	PeerNS, PeerName string
	// VXLAN.
	VNI      int
	Port     int
	Local    string
	Parent   string
	Learning bool
}

// DefaultTxQLen is the transmit queue length the kernel gives every device
// kind plans use (ether_setup's DEFAULT_TX_QUEUE_LEN) when nothing sets it,
// as the CNIs leave it on real nodes.
const DefaultTxQLen = 1000

// State returns the fake's state of the named namespaces (every namespace
// when names is empty).
func (f *Fake) State(names ...string) State {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(names) == 0 {
		for n := range f.ns {
			names = append(names, n)
		}
	}
	st := State{}
	for _, name := range names {
		n, ok := f.ns[name]
		if !ok {
			continue
		}
		var ns NSState
		for _, l := range n.links {
			if l.Kind == "loopback" {
				continue
			}
			ls := LinkState{Name: l.Name, Kind: l.Kind, MTU: l.MTU, TxQLen: DefaultTxQLen, Up: true, MAC: l.MAC, Master: l.Master, Hairpin: l.Hairpin}
			switch l.Kind {
			case KindVeth:
				ls.PeerNS, ls.PeerName = l.PeerNS, l.PeerName
			case KindVXLAN:
				ls.VNI, ls.Port, ls.Local, ls.Parent, ls.Learning = l.VNI, l.Port, l.Local.String(), l.Parent, l.Learning
			}
			ns.Links = append(ns.Links, ls)
		}
		for _, a := range n.addrs {
			ns.Addrs = append(ns.Addrs, fmt.Sprintf("%s dev %s", a.Prefix, a.Dev))
		}
		for _, r := range n.routes {
			ns.Routes = append(ns.Routes, describeRoute(r))
		}
		for _, e := range n.neighs {
			ns.Neighs = append(ns.Neighs, describeNeigh(e.IP, e.MAC, e.Dev))
		}
		for _, e := range n.fdbs {
			ns.FDBs = append(ns.FDBs, describeFDB(e.MAC, e.Dev, e.Dst))
		}
		if len(n.sysctls) > 0 {
			ns.Sysctls = map[string]string{}
			for k, v := range n.sysctls {
				ns.Sysctls[k] = v
			}
		}
		st[name] = ns.sorted()
	}
	return st
}

func describeNeigh(ip netip.Addr, mac, dev string) string {
	return fmt.Sprintf("%s lladdr %s dev %s permanent", ip, mac, dev)
}

func describeFDB(mac, dev string, dst netip.Addr) string {
	return fmt.Sprintf("%s dev %s dst %s self permanent", mac, dev, dst)
}

func (ns NSState) sorted() NSState {
	sort.Slice(ns.Links, func(i, j int) bool { return ns.Links[i].Name < ns.Links[j].Name })
	for _, s := range [][]string{ns.Addrs, ns.Routes, ns.Neighs, ns.FDBs} {
		slices.Sort(s)
	}
	return ns
}

// ReadKernel reads the state of the plan's namespaces from the kernel: every
// device, IPv4 address, main-table route, permanent neighbour and VXLAN FDB
// entry in them, and the values of the sysctls the plan sets.
func ReadKernel(p *Plan) (State, error) {
	hs, err := openHandles(p.Namespaces)
	if err != nil {
		return nil, err
	}
	defer hs.close()
	// Peers in other namespaces are named by the id each namespace gives
	// the other (IFLA_LINK_NETNSID).
	type nsKey struct {
		from string
		id   int
	}
	peerNS := map[nsKey]string{}
	for _, from := range p.Namespaces {
		for _, to := range p.Namespaces {
			if id, err := hs.nl[from].GetNetNsIdByFd(int(hs.ns[to])); err == nil && id >= 0 {
				peerNS[nsKey{from, id}] = to
			}
		}
	}
	byIndex := map[string]map[int]string{}
	links := map[string][]netlink.Link{}
	for _, n := range p.Namespaces {
		ls, err := hs.nl[n].LinkList()
		if err != nil {
			return nil, fmt.Errorf("links in %s: %w", n, err)
		}
		links[n] = ls
		byIndex[n] = map[int]string{}
		for _, l := range ls {
			byIndex[n][l.Attrs().Index] = l.Attrs().Name
		}
	}
	sysctls := map[string][]string{}
	for _, s := range p.Sysctls {
		sysctls[s.NS] = append(sysctls[s.NS], s.Key)
	}
	st := State{}
	for _, n := range p.Namespaces {
		h := hs.nl[n]
		var ns NSState
		for _, l := range links[n] {
			a := l.Attrs()
			if a.Name == "lo" {
				continue
			}
			ls := LinkState{Name: a.Name, Kind: l.Type(), MTU: a.MTU, TxQLen: a.TxQLen, Up: a.Flags&net.FlagUp != 0, MAC: a.HardwareAddr.String()}
			if a.MasterIndex != 0 {
				ls.Master = byIndex[n][a.MasterIndex]
				pi, err := h.LinkGetProtinfo(l)
				if err != nil {
					return nil, fmt.Errorf("%s/%s bridge port: %w", n, a.Name, err)
				}
				ls.Hairpin = pi.Hairpin
			}
			switch v := l.(type) {
			case *netlink.Veth:
				peer := n
				if a.NetNsID >= 0 {
					var ok bool
					if peer, ok = peerNS[nsKey{n, a.NetNsID}]; !ok {
						return nil, fmt.Errorf("%s/%s: peer in namespace id %d, not one of the plan's", n, a.Name, a.NetNsID)
					}
				}
				ls.PeerNS, ls.PeerName = peer, byIndex[peer][a.ParentIndex]
			case *netlink.Vxlan:
				ls.VNI, ls.Port, ls.Learning = v.VxlanId, v.Port, v.Learning
				ls.Parent = byIndex[n][v.VtepDevIndex]
				if ip, ok := netip.AddrFromSlice(v.SrcAddr); ok {
					ls.Local = ip.Unmap().String()
				}
			}
			ns.Links = append(ns.Links, ls)
			addrs, err := h.AddrList(l, netlink.FAMILY_V4)
			if err != nil {
				return nil, fmt.Errorf("addresses of %s/%s: %w", n, a.Name, err)
			}
			for _, ad := range addrs {
				pfx, err := prefixOf(ad.IPNet)
				if err != nil {
					return nil, err
				}
				ns.Addrs = append(ns.Addrs, fmt.Sprintf("%s dev %s", pfx, a.Name))
			}
		}
		routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("routes in %s: %w", n, err)
		}
		for _, r := range routes {
			if r.Protocol == unix.RTPROT_KERNEL {
				continue // the connected route of an address
			}
			pr := Route{NS: n, Dev: byIndex[n][r.LinkIndex], Onlink: r.Flags&int(netlink.FLAG_ONLINK) != 0,
				LinkScope: r.Scope == netlink.SCOPE_LINK, Proto: int(r.Protocol), MTU: r.MTU}
			if r.Protocol == unix.RTPROT_BOOT {
				pr.Proto = 0 // a Plan's zero Proto is boot, which netlink sends for it
			}
			if r.Dst == nil {
				pr.Dst = netip.MustParsePrefix("0.0.0.0/0")
			} else if pr.Dst, err = prefixOf(r.Dst); err != nil {
				return nil, err
			}
			if r.Type == unix.RTN_BLACKHOLE {
				pr.Type = RouteBlackhole
			}
			if ip, ok := netip.AddrFromSlice(r.Gw); ok {
				pr.Gw = ip.Unmap()
			}
			if ip, ok := netip.AddrFromSlice(r.Src); ok {
				pr.Src = ip.Unmap()
			}
			ns.Routes = append(ns.Routes, describeRoute(pr))
		}
		neighs, err := h.NeighList(0, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("neighbours in %s: %w", n, err)
		}
		for _, e := range neighs {
			if e.State&netlink.NUD_PERMANENT == 0 {
				continue
			}
			ip, _ := netip.AddrFromSlice(e.IP)
			ns.Neighs = append(ns.Neighs, describeNeigh(ip.Unmap(), e.HardwareAddr.String(), byIndex[n][e.LinkIndex]))
		}
		for _, l := range links[n] {
			if l.Type() != KindVXLAN {
				continue
			}
			fdbs, err := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
			if err != nil {
				return nil, fmt.Errorf("fdb of %s/%s: %w", n, l.Attrs().Name, err)
			}
			for _, e := range fdbs {
				ip, ok := netip.AddrFromSlice(e.IP)
				if !ok || e.State&netlink.NUD_PERMANENT == 0 {
					continue
				}
				ns.FDBs = append(ns.FDBs, describeFDB(e.HardwareAddr.String(), l.Attrs().Name, ip.Unmap()))
			}
		}
		if keys := sysctls[n]; len(keys) > 0 {
			ns.Sysctls = map[string]string{}
			if err := InNamespace(n, func() error {
				for _, k := range keys {
					v, err := os.ReadFile(filepath.Join("/proc/sys", k))
					if err != nil {
						return err
					}
					ns.Sysctls[k] = strings.TrimSpace(string(v))
				}
				return nil
			}); err != nil {
				return nil, fmt.Errorf("sysctls in %s: %w", n, err)
			}
		}
		st[n] = ns.sorted()
	}
	return st, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, error) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("address %v is not IP", n.IP)
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), bits), nil
}
