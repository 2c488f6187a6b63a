package datapath

import (
	"fmt"
	"net/netip"

	"github.com/cnilab/cnilab/pkg/netplan"
)

// VXLAN overhead on IPv4: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
const vxlanOverhead = 50

// IPIP overhead: one extra IPv4 header.
const ipipOverhead = 20

// Routing protocol numbers the CNIs' daemons install routes with.
const (
	protoBird  = 12 // Calico's BIRD
	protoZebra = 17 // kube-router's GoBGP injector uses zebra
)

var calicoGateway = netip.MustParseAddr("169.254.1.1")

// nodeSysctls are set in every node namespace of a CNI lab: forwarding on
// (the bridge plugin, felix and cilium all turn it on) and loose reverse
// path filtering, so results do not depend on the host's defaults.
func (lab *Lab) nodeSysctls(n Node) {
	lab.sysctl(n.NS, "net/ipv4/ip_forward", "1")
	lab.sysctl(n.NS, "net/ipv4/conf/all/rp_filter", "2")
}

// buildHost is the no-CNI baseline: the "pods" are the node namespaces
// themselves, so cross-node traffic crosses only the fabric.
//
// The same-node baseline (PodsPerNode ≥ 2) is a second namespace on node 1,
// n1-p2, joined to the node by one veth pair: the client is node 1 itself,
// as in the cross-node baseline, and the server sits one veth away. Every
// CNI's same-node path contains that hop (the last one, from the node into
// the server pod over its veth), plus more: the client pod's own veth, and a
// bridge (flannel, kube-router) or a routing step (calico, cilium) in the
// node. So this path is a subset of each of them and a true ceiling. Client
// and server in one namespace (loopback over lo, MTU 65536) would not be:
// no veth, no device queue, and a 40-fold MTU no pod has; and pods on a
// bridge would not be a subset of the routed CNIs' paths. The link has the
// underlay MTU, which no pod's MTU exceeds.
func buildHost(lab *Lab) error {
	lab.PodMTU = lab.Spec.UnderlayMTU
	for i, n := range lab.Nodes {
		lab.Pods = append(lab.Pods, Pod{Name: n.Name, NS: n.NS, Node: i, IP: n.IP, HostIf: "eth0"})
	}
	if lab.Spec.PodsPerNode < 2 {
		return nil
	}
	n := lab.Nodes[0]
	// A link subnet of its own, outside the fabric's 172.18.0.0/24.
	link := netip.MustParsePrefix("172.18.1.0/30")
	pod := Pod{Name: n.Name + "-p2", NS: n.NS + "-p2", Node: 0, IP: host(link, 2)}
	pod.HostIf = vethName(pod.NS)
	lab.Plan.Namespaces = append(lab.Plan.Namespaces, pod.NS)
	lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: pod.HostIf, Kind: netplan.KindVeth, MTU: lab.Spec.UnderlayMTU,
		PeerNS: pod.NS, PeerName: "eth0"})
	lab.Plan.Addrs = append(lab.Plan.Addrs,
		netplan.Addr{NS: n.NS, Dev: pod.HostIf, Prefix: netip.PrefixFrom(host(link, 1), link.Bits())},
		netplan.Addr{NS: pod.NS, Dev: "eth0", Prefix: netip.PrefixFrom(pod.IP, link.Bits())})
	lab.Pods = append(lab.Pods, pod)
	return nil
}

// bridgeCNI wires pods the way the CNI bridge plugin does (flannel,
// kube-router): a bridge holding the gateway (first address of the node's
// range), one veth per pod as a hairpin bridge port, pod default route via
// the gateway. extraRoute adds flannel's route to the whole cluster network.
func bridgeCNI(lab *Lab, bridge string, mtu int, extraRoute netip.Prefix) error {
	for _, n := range lab.Nodes {
		gw := host(n.PodCIDR, 1)
		lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: bridge, Kind: netplan.KindBridge, MTU: mtu})
		lab.Plan.Addrs = append(lab.Plan.Addrs, netplan.Addr{NS: n.NS, Dev: bridge, Prefix: netip.PrefixFrom(gw, n.PodCIDR.Bits())})
	}
	err := forEachPod(lab, func(n Node, k int) netip.Addr { return host(n.PodCIDR, 2+k) }, func(pod Pod) {
		n := lab.Nodes[pod.Node]
		gw := host(n.PodCIDR, 1)
		lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: vethName(pod.NS), Kind: netplan.KindVeth, MTU: mtu,
			Master: bridge, Hairpin: true, PeerNS: pod.NS, PeerName: "eth0"})
		lab.Plan.Addrs = append(lab.Plan.Addrs, netplan.Addr{NS: pod.NS, Dev: "eth0", Prefix: netip.PrefixFrom(pod.IP, n.PodCIDR.Bits())})
		lab.route(netplan.Route{NS: pod.NS, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: gw, Dev: "eth0"})
		if extraRoute.IsValid() {
			lab.route(netplan.Route{NS: pod.NS, Dst: extraRoute, Gw: gw, Dev: "eth0"})
		}
	})
	fixHostIf(lab, func(p Pod) string { return vethName(p.NS) })
	return err
}

// fixHostIf fills HostIf of pods appended by forEachPod (wire runs before
// the pod is appended).
func fixHostIf(lab *Lab, name func(Pod) string) {
	for i := range lab.Pods {
		if lab.Pods[i].HostIf == "" {
			lab.Pods[i].HostIf = name(lab.Pods[i])
		}
	}
}

// flannelVXLAN adds flannel.1 and, per remote node, the static neighbour,
// FDB entry and onlink route flanneld installs.
func flannelVXLAN(lab *Lab) {
	mtu := lab.Spec.UnderlayMTU - vxlanOverhead
	for i, n := range lab.Nodes {
		lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: "flannel.1", Kind: netplan.KindVXLAN, MTU: mtu,
			MAC: vtepMAC(i + 1), VNI: 1, Port: 8472, Local: n.IP, Parent: "eth0"})
		lab.Plan.Addrs = append(lab.Plan.Addrs, netplan.Addr{NS: n.NS, Dev: "flannel.1", Prefix: netip.PrefixFrom(n.PodCIDR.Addr(), 32)})
		for j, peer := range lab.Nodes {
			if j == i {
				continue
			}
			gw := peer.PodCIDR.Addr() // the peer's subnet .0 is its flannel.1 address
			lab.Plan.Neighs = append(lab.Plan.Neighs, netplan.Neigh{NS: n.NS, Dev: "flannel.1", IP: gw, MAC: vtepMAC(j + 1)})
			lab.Plan.FDBs = append(lab.Plan.FDBs, netplan.FDB{NS: n.NS, Dev: "flannel.1", MAC: vtepMAC(j + 1), Dst: peer.IP})
			lab.route(netplan.Route{NS: n.NS, Dst: peer.PodCIDR, Gw: gw, Dev: "flannel.1", Onlink: true})
		}
	}
	lab.Encap = "vxlan/8472"
}

// directRoutes installs "remote pod range via remote node" on eth0 — flannel
// host-gw, Calico BGP (BIRD), kube-router (GoBGP), Cilium native routing.
func directRoutes(lab *Lab, proto int) {
	for i, n := range lab.Nodes {
		for j, peer := range lab.Nodes {
			if j == i {
				continue
			}
			lab.route(netplan.Route{NS: n.NS, Dst: peer.PodCIDR, Gw: peer.IP, Dev: "eth0", Proto: proto})
		}
	}
}

func buildFlannel(lab *Lab) error {
	for _, n := range lab.Nodes {
		lab.nodeSysctls(n)
	}
	cluster := lab.Spec.PodCIDR
	switch lab.Spec.Mode {
	case "vxlan":
		lab.PodMTU = lab.Spec.UnderlayMTU - vxlanOverhead
		if err := bridgeCNI(lab, "cni0", lab.PodMTU, cluster); err != nil {
			return err
		}
		flannelVXLAN(lab)
	case "host-gw":
		lab.PodMTU = lab.Spec.UnderlayMTU
		if err := bridgeCNI(lab, "cni0", lab.PodMTU, cluster); err != nil {
			return err
		}
		directRoutes(lab, 0)
	default:
		return fmt.Errorf("flannel: unknown mode %q", lab.Spec.Mode)
	}
	return nil
}

func buildKubeRouter(lab *Lab) error {
	for _, n := range lab.Nodes {
		lab.nodeSysctls(n)
	}
	lab.PodMTU = lab.Spec.UnderlayMTU
	if err := bridgeCNI(lab, "kube-bridge", lab.PodMTU, netip.Prefix{}); err != nil {
		return err
	}
	directRoutes(lab, protoZebra)
	return nil
}

// calicoPods wires pods the Calico way (Calico and Canal): cali* veth with
// the fixed ee:ee:ee:ee:ee:ee MAC and proxy ARP, /32 pod address, link route
// to 169.254.1.1 and default via it, a /32 host route per pod.
func calicoPods(lab *Lab, mtu int, first int) error {
	// Proxy ARP answers only for addresses the node has a unicast route
	// to through another interface. Real nodes cover 169.254.1.1 with their
	// default route; the sealed lab has none, so a host route on eth0
	// stands in for it. Nothing is ever sent to 169.254.1.1 itself.
	for _, n := range lab.Nodes {
		lab.route(netplan.Route{NS: n.NS, Dst: netip.PrefixFrom(calicoGateway, 32), Dev: "eth0", LinkScope: true})
	}
	err := forEachPod(lab, func(n Node, k int) netip.Addr { return host(n.PodCIDR, first+k) }, func(pod Pod) {
		n := lab.Nodes[pod.Node]
		hostIf := caliName(pod.NS)
		lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: hostIf, Kind: netplan.KindVeth, MTU: mtu,
			MAC: "ee:ee:ee:ee:ee:ee", PeerNS: pod.NS, PeerName: "eth0"})
		lab.Plan.Addrs = append(lab.Plan.Addrs, netplan.Addr{NS: pod.NS, Dev: "eth0", Prefix: netip.PrefixFrom(pod.IP, 32)})
		lab.route(netplan.Route{NS: pod.NS, Dst: netip.PrefixFrom(calicoGateway, 32), Dev: "eth0", LinkScope: true})
		lab.route(netplan.Route{NS: pod.NS, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: calicoGateway, Dev: "eth0"})
		lab.route(netplan.Route{NS: n.NS, Dst: netip.PrefixFrom(pod.IP, 32), Dev: hostIf, LinkScope: true})
		lab.sysctl(n.NS, "net/ipv4/conf/"+hostIf+"/proxy_arp", "1")
		lab.sysctl(n.NS, "net/ipv4/neigh/"+hostIf+"/proxy_delay", "0")
		lab.sysctl(n.NS, "net/ipv4/conf/"+hostIf+"/route_localnet", "1")
		lab.sysctl(n.NS, "net/ipv4/conf/"+hostIf+"/forwarding", "1")
	})
	fixHostIf(lab, func(p Pod) string { return caliName(p.NS) })
	return err
}

func buildCalico(lab *Lab) error {
	for _, n := range lab.Nodes {
		lab.nodeSysctls(n)
		// The node owns its block; unused addresses in it go nowhere.
		lab.route(netplan.Route{NS: n.NS, Dst: n.PodCIDR, Type: netplan.RouteBlackhole, Proto: protoBird})
	}
	under := lab.Spec.UnderlayMTU
	switch lab.Spec.Mode {
	case "bgp":
		lab.PodMTU = under
		if err := calicoPods(lab, lab.PodMTU, 1); err != nil {
			return err
		}
		directRoutes(lab, protoBird)
	case "vxlan":
		lab.PodMTU = under - vxlanOverhead
		// Address 0 of each block is the node's VXLAN tunnel address.
		if err := calicoPods(lab, lab.PodMTU, 1); err != nil {
			return err
		}
		for i, n := range lab.Nodes {
			lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: "vxlan.calico", Kind: netplan.KindVXLAN, MTU: lab.PodMTU,
				MAC: vtepMAC(i + 1), VNI: 4096, Port: 4789, Local: n.IP, Parent: "eth0"})
			lab.Plan.Addrs = append(lab.Plan.Addrs, netplan.Addr{NS: n.NS, Dev: "vxlan.calico", Prefix: netip.PrefixFrom(n.PodCIDR.Addr(), 32)})
			for j, peer := range lab.Nodes {
				if j == i {
					continue
				}
				tun := peer.PodCIDR.Addr()
				lab.Plan.Neighs = append(lab.Plan.Neighs, netplan.Neigh{NS: n.NS, Dev: "vxlan.calico", IP: tun, MAC: vtepMAC(j + 1)})
				lab.Plan.FDBs = append(lab.Plan.FDBs, netplan.FDB{NS: n.NS, Dev: "vxlan.calico", MAC: vtepMAC(j + 1), Dst: peer.IP})
				lab.route(netplan.Route{NS: n.NS, Dst: peer.PodCIDR, Gw: tun, Dev: "vxlan.calico", Onlink: true, MTU: lab.PodMTU})
			}
		}
		lab.Encap = "vxlan/4789"
	case "ipip":
		lab.PodMTU = under - ipipOverhead
		if err := calicoPods(lab, lab.PodMTU, 1); err != nil {
			return err
		}
		for i, n := range lab.Nodes {
			lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: "tunl0", Kind: netplan.KindIPIP, MTU: lab.PodMTU})
			lab.Plan.Addrs = append(lab.Plan.Addrs, netplan.Addr{NS: n.NS, Dev: "tunl0", Prefix: netip.PrefixFrom(n.PodCIDR.Addr(), 32)})
			for j, peer := range lab.Nodes {
				if j != i {
					lab.route(netplan.Route{NS: n.NS, Dst: peer.PodCIDR, Gw: peer.IP, Dev: "tunl0", Onlink: true, Proto: protoBird})
				}
			}
		}
		lab.Encap = "ipip"
	default:
		return fmt.Errorf("calico: unknown mode %q", lab.Spec.Mode)
	}
	return nil
}

func buildCanal(lab *Lab) error {
	for _, n := range lab.Nodes {
		lab.nodeSysctls(n)
	}
	lab.PodMTU = lab.Spec.UnderlayMTU - vxlanOverhead
	// host-local IPAM on the node's podCIDR: .0 is flannel.1's address, pods
	// start at .2 as with the bridge plugin's numbering.
	if err := calicoPods(lab, lab.PodMTU, 2); err != nil {
		return err
	}
	flannelVXLAN(lab)
	return nil
}

// buildCilium: lxc* veths with /32 pod addresses whose gateway is the
// node's router IP on cilium_host. Cilium answers the pod's ARP from BPF;
// here the kernel's proxy ARP on lxc* answers instead (noted). Tunnel mode
// uses a kernel VXLAN device on 8472 with static neighbour/FDB entries where
// Cilium sets the tunnel key from BPF, so the encapsulation and its MTU are
// the same, the code path is not.
func buildCilium(lab *Lab) error {
	under := lab.Spec.UnderlayMTU
	lab.PodMTU = under
	for _, n := range lab.Nodes {
		lab.nodeSysctls(n)
		router := host(n.PodCIDR, 1)
		lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: "cilium_host", Kind: netplan.KindVeth, MTU: under,
			PeerNS: n.NS, PeerName: "cilium_net"})
		lab.Plan.Addrs = append(lab.Plan.Addrs, netplan.Addr{NS: n.NS, Dev: "cilium_host", Prefix: netip.PrefixFrom(router, 32)})
	}
	err := forEachPod(lab, func(n Node, k int) netip.Addr { return host(n.PodCIDR, 2+k) }, func(pod Pod) {
		n := lab.Nodes[pod.Node]
		router := host(n.PodCIDR, 1)
		hostIf := lxcName(pod.NS)
		lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: hostIf, Kind: netplan.KindVeth, MTU: under,
			PeerNS: pod.NS, PeerName: "eth0"})
		lab.Plan.Addrs = append(lab.Plan.Addrs, netplan.Addr{NS: pod.NS, Dev: "eth0", Prefix: netip.PrefixFrom(pod.IP, 32)})
		lab.route(netplan.Route{NS: pod.NS, Dst: netip.PrefixFrom(router, 32), Dev: "eth0", LinkScope: true})
		routeMTU := 0
		if lab.Spec.Mode == "tunnel" {
			routeMTU = under - vxlanOverhead
		}
		lab.route(netplan.Route{NS: pod.NS, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: router, Dev: "eth0", MTU: routeMTU})
		lab.route(netplan.Route{NS: n.NS, Dst: netip.PrefixFrom(pod.IP, 32), Dev: hostIf, LinkScope: true})
		lab.sysctl(n.NS, "net/ipv4/conf/"+hostIf+"/proxy_arp", "1")
		lab.sysctl(n.NS, "net/ipv4/neigh/"+hostIf+"/proxy_delay", "0")
		lab.sysctl(n.NS, "net/ipv4/conf/"+hostIf+"/forwarding", "1")
	})
	if err != nil {
		return err
	}
	fixHostIf(lab, func(p Pod) string { return lxcName(p.NS) })
	lab.Notes = append(lab.Notes, "pod ARP for the router IP is answered by kernel proxy_arp on lxc*, where Cilium answers from its BPF program")
	switch lab.Spec.Mode {
	case "tunnel":
		lab.RouteMTU = under - vxlanOverhead
		for i, n := range lab.Nodes {
			// Not bound to eth0, as Cilium's own device is not: bound,
			// the kernel would cap it at 1450 where Cilium's has the
			// underlay's MTU and leaves the 50 bytes to the route MTU.
			lab.Plan.Links = append(lab.Plan.Links, netplan.Link{NS: n.NS, Name: "cilium_vxlan", Kind: netplan.KindVXLAN, MTU: under,
				MAC: vtepMAC(i + 1), VNI: 2, Port: 8472, Local: n.IP})
			for j, peer := range lab.Nodes {
				if j == i {
					continue
				}
				gw := host(peer.PodCIDR, 1) // the peer's router IP
				lab.Plan.Neighs = append(lab.Plan.Neighs, netplan.Neigh{NS: n.NS, Dev: "cilium_vxlan", IP: gw, MAC: vtepMAC(j + 1)})
				lab.Plan.FDBs = append(lab.Plan.FDBs, netplan.FDB{NS: n.NS, Dev: "cilium_vxlan", MAC: vtepMAC(j + 1), Dst: peer.IP})
				lab.route(netplan.Route{NS: n.NS, Dst: peer.PodCIDR, Gw: gw, Dev: "cilium_vxlan", Onlink: true, MTU: under - vxlanOverhead})
			}
		}
		lab.Encap = "vxlan/8472"
		lab.Notes = append(lab.Notes, "tunnel: kernel VXLAN device with static FDB entries where Cilium sets the tunnel key per packet from BPF (same encapsulation and MTU, different code path)")
	case "native":
		directRoutes(lab, 0)
	default:
		return fmt.Errorf("cilium: unknown mode %q", lab.Spec.Mode)
	}
	return nil
}
