// Package netnstopo builds the smallest topology a service proxy can be
// measured on, for tests, benchmarks and standalone services-scale runs:
// one node namespace routing between pod namespaces, each pod wired to
// the node with a veth (eth0 in the pod, /24 per pod, the node side is the
// gateway). Pod-to-service traffic is routed through the node, so the
// node's netfilter hooks see it as they see it on a real node. Everything
// is named with the caller's prefix and removed by Close; nothing touches
// the host namespace.
package netnstopo

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cnilab/cnilab/pkg/netplan"
)

// Pod is one pod namespace.
type Pod struct {
	Name  string // short name given by the caller
	Netns string // /run/netns/<prefix><name>
	IP    netip.Addr
}

// Star is a node namespace with pods around it.
type Star struct {
	Prefix string
	Node   string // netns path of the node
	Pods   []Pod
	plan   *netplan.Plan
}

// ClusterCIDR holds every pod address of a Star.
var ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")

// Plan lays out the star as a netplan.Plan: pod i gets 10.244.i.2/24 on
// its eth0, the node end veth<i> holds the gateway 10.244.i.1/24, and the
// node forwards.
func Plan(prefix string, pods ...string) (*netplan.Plan, []Pod, error) {
	if !strings.HasPrefix(prefix, "cnl-") {
		return nil, nil, fmt.Errorf("namespace prefix %q must start with cnl-", prefix)
	}
	if len(pods) > 250 {
		return nil, nil, fmt.Errorf("%d pods: at most 250", len(pods))
	}
	node := prefix + "node"
	p := &netplan.Plan{Namespaces: []string{node}}
	p.Sysctls = append(p.Sysctls, netplan.Sysctl{NS: node, Key: "net/ipv4/ip_forward", Value: "1"})
	var out []Pod
	for i, name := range pods {
		ns := prefix + name
		ip := netip.AddrFrom4([4]byte{10, 244, byte(i), 2})
		gw := netip.AddrFrom4([4]byte{10, 244, byte(i), 1})
		hostIf := fmt.Sprintf("veth%d", i)
		p.Namespaces = append(p.Namespaces, ns)
		p.Links = append(p.Links, netplan.Link{NS: node, Name: hostIf, Kind: netplan.KindVeth, MTU: 1500, PeerNS: ns, PeerName: "eth0"})
		p.Addrs = append(p.Addrs,
			netplan.Addr{NS: node, Dev: hostIf, Prefix: netip.PrefixFrom(gw, 24)},
			netplan.Addr{NS: ns, Dev: "eth0", Prefix: netip.PrefixFrom(ip, 24)})
		p.Routes = append(p.Routes, netplan.Route{NS: ns, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: gw, Dev: "eth0"})
		out = append(out, Pod{Name: name, Netns: netplan.NetnsPath(ns), IP: ip})
	}
	return p, out, nil
}

// New creates <prefix>node and one namespace per pod name. prefix must
// start with "cnl-". On error nothing is left behind.
func New(prefix string, pods ...string) (*Star, error) {
	p, ps, err := Plan(prefix, pods...)
	if err != nil {
		return nil, err
	}
	if err := (netplan.Kernel{}).Apply(context.Background(), p); err != nil {
		return nil, err
	}
	return &Star{Prefix: prefix, Node: netplan.NetnsPath(prefix + "node"), Pods: ps, plan: p}, nil
}

// Pod returns the pod called name.
func (s *Star) Pod(name string) (Pod, bool) {
	for _, p := range s.Pods {
		if p.Name == name {
			return p, true
		}
	}
	return Pod{}, false
}

// Close deletes every namespace it created (veths go with them).
// Processes started in them must have been stopped by the caller.
func (s *Star) Close() error {
	if s == nil || s.plan == nil {
		return nil
	}
	return (netplan.Kernel{}).Destroy(context.Background(), s.plan)
}
