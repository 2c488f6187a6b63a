// Package datapath rebuilds each CNI's forwarding design as a netplan.Plan:
// a sealed fabric namespace with a bridge (the underlay switch), one
// namespace per node, one per pod, wired the way the CNI wires them
// (reference/datapaths.md). Builders only produce data; netplan applies it.
package datapath

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/cnilab/cnilab/pkg/netplan"
)

// Spec is what a builder needs to lay out one lab.
type Spec struct {
	RunID string
	Lab   string
	// Model and Mode select the builder (see config.ModelModes).
	Model string
	Mode  string
	// PodCIDR and NodeMaskBits give each node its pod range.
	PodCIDR      netip.Prefix
	NodeMaskBits int
	// UnderlayMTU is the fabric MTU (1500, or 9000 like the 2024 lab).
	UnderlayMTU int
	Nodes       int
	PodsPerNode int
}

// Node is one modelled Kubernetes node.
type Node struct {
	Name    string
	NS      string
	IP      netip.Addr
	PodCIDR netip.Prefix
}

// Pod is one modelled pod.
type Pod struct {
	Name string
	NS   string
	Node int // index into Lab.Nodes
	IP   netip.Addr
	// HostIf is the host-side interface in the node namespace.
	HostIf string
}

// Lab is a planned lab: where everything is and how it is built.
type Lab struct {
	Spec   Spec
	Fabric string
	Nodes  []Node
	Pods   []Pod
	// PodMTU is the MTU of the pods' eth0.
	PodMTU int
	// RouteMTU is the MTU on the pod's default route when it differs from
	// the device MTU (Cilium tunnel mode).
	RouteMTU int
	// Encap names the encapsulation in use between nodes: "vxlan/8472",
	// "vxlan/4789", "ipip" or "" for none.
	Encap string
	Plan  netplan.Plan
	// Notes say in words where the model departs from the CNI.
	Notes []string
}

// Prefix is the name prefix of every namespace of a lab in a run.
func Prefix(runID, lab string) string { return "cnl-" + runID + "-" + lab }

// fabricBridge is the switch in the fabric namespace.
const fabricBridge = "br0"

// nodeIP returns the underlay address of node i (0-based): 172.18.0.2, .3,
// ... as on kind's docker network.
func nodeIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{172, 18, 0, byte(2 + i)}) }

var fabricBits = 24

// subnet returns the i-th /bits subnet of p.
func subnet(p netip.Prefix, bits, i int) (netip.Prefix, error) {
	if bits <= p.Bits() || bits > 32 {
		return netip.Prefix{}, fmt.Errorf("node mask /%d does not fit in %s", bits, p)
	}
	if i >= 1<<(bits-p.Bits()) {
		return netip.Prefix{}, fmt.Errorf("%s has no room for %d /%d subnets", p, i+1, bits)
	}
	base := binary.BigEndian.Uint32(p.Addr().AsSlice())
	v := base + uint32(i)<<(32-bits)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.PrefixFrom(netip.AddrFrom4(b), bits), nil
}

// host returns address n of a subnet (n=0 is the network address).
func host(p netip.Prefix, n int) netip.Addr {
	base := binary.BigEndian.Uint32(p.Addr().AsSlice())
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], base+uint32(n))
	return netip.AddrFrom4(b)
}

// vtepMAC is a stable, locally administered MAC for node i's tunnel device,
// so remote FDB entries can be planned before anything exists.
func vtepMAC(i int) string { return fmt.Sprintf("0e:c1:1a:b0:%02x:%02x", i>>8&0xff, i&0xff) }

// caliName is Calico's host-side veth name: "cali" + 11 hex of
// sha1("<namespace>.<pod>").
func caliName(pod string) string {
	s := sha1.Sum([]byte("default." + pod))
	return "cali" + hex.EncodeToString(s[:])[:11]
}

// lxcName is Cilium's host-side veth name: "lxc" + 12 hex of sha256(id).
func lxcName(pod string) string {
	s := sha256.Sum256([]byte(pod))
	return "lxc" + hex.EncodeToString(s[:])[:12]
}

// vethName is the bridge CNI plugin's "veth%x" with 4 bytes, here derived
// from the pod name so plans are deterministic.
func vethName(pod string) string {
	s := sha256.Sum256([]byte(pod))
	return "veth" + hex.EncodeToString(s[:4])
}

// Plan lays out the lab for a spec.
func Plan(spec Spec) (*Lab, error) {
	if spec.Nodes < 1 || spec.Nodes > 250 {
		return nil, fmt.Errorf("%d nodes: must be 1..250", spec.Nodes)
	}
	if spec.UnderlayMTU == 0 {
		spec.UnderlayMTU = 1500
	}
	if spec.UnderlayMTU < 1280 || spec.UnderlayMTU > 9000 {
		return nil, fmt.Errorf("underlay MTU %d: must be 1280..9000", spec.UnderlayMTU)
	}
	b, ok := builders[spec.Model]
	if !ok {
		return nil, fmt.Errorf("no datapath builder for model %q", spec.Model)
	}
	pre := Prefix(spec.RunID, spec.Lab)
	lab := &Lab{Spec: spec, Fabric: pre + "-fab"}
	p := &lab.Plan
	p.Namespaces = append(p.Namespaces, lab.Fabric)
	p.Links = append(p.Links, netplan.Link{NS: lab.Fabric, Name: fabricBridge, Kind: netplan.KindBridge, MTU: spec.UnderlayMTU})
	for i := 0; i < spec.Nodes; i++ {
		n := Node{Name: fmt.Sprintf("n%d", i+1), NS: fmt.Sprintf("%s-n%d", pre, i+1), IP: nodeIP(i)}
		if spec.Model != "none" {
			sn, err := subnet(spec.PodCIDR, spec.NodeMaskBits, i+1)
			if err != nil {
				return nil, err
			}
			n.PodCIDR = sn
		}
		lab.Nodes = append(lab.Nodes, n)
		p.Namespaces = append(p.Namespaces, n.NS)
		// The node's NIC: eth0 in the node, a port of the fabric bridge on
		// the other end. Nothing connects to the host namespace.
		p.Links = append(p.Links, netplan.Link{NS: lab.Fabric, Name: "p-" + n.Name, Kind: netplan.KindVeth, MTU: spec.UnderlayMTU,
			Master: fabricBridge, PeerNS: n.NS, PeerName: "eth0"})
		p.Addrs = append(p.Addrs, netplan.Addr{NS: n.NS, Dev: "eth0", Prefix: netip.PrefixFrom(n.IP, fabricBits)})
	}
	if err := b(lab); err != nil {
		return nil, err
	}
	return lab, nil
}

var builders = map[string]func(*Lab) error{
	"none":        buildHost,
	"flannel":     buildFlannel,
	"calico":      buildCalico,
	"kube-router": buildKubeRouter,
	"cilium":      buildCilium,
	"canal":       buildCanal,
}

// forEachPod allocates pod names and namespaces node by node and calls wire
// for each; addresses are given by the builder via addr(node, k).
func forEachPod(lab *Lab, addr func(node Node, k int) netip.Addr, wire func(pod Pod)) error {
	for ni, n := range lab.Nodes {
		for k := 0; k < lab.Spec.PodsPerNode; k++ {
			ip := addr(n, k)
			if !n.PodCIDR.Contains(ip) {
				return fmt.Errorf("node %s: %d pods do not fit in %s", n.Name, lab.Spec.PodsPerNode, n.PodCIDR)
			}
			pod := Pod{Name: fmt.Sprintf("%s-p%d", n.Name, k+1), Node: ni, IP: ip}
			pod.NS = n.NS + "-p" + fmt.Sprint(k+1)
			lab.Plan.Namespaces = append(lab.Plan.Namespaces, pod.NS)
			wire(pod)
			lab.Pods = append(lab.Pods, pod)
		}
	}
	return nil
}

func (lab *Lab) sysctl(ns, key, value string) {
	lab.Plan.Sysctls = append(lab.Plan.Sysctls, netplan.Sysctl{NS: ns, Key: key, Value: value})
}

func (lab *Lab) route(r netplan.Route) { lab.Plan.Routes = append(lab.Plan.Routes, r) }
