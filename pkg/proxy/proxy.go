// Package proxy is cnilab's model of a Kubernetes Service proxy: the service
// model (ClusterIP services with endpoints) and the small interface every
// backend (iptables, nftables, ebpf, ipvs) implements. A backend writes its
// state into the kernel of the lab's node namespaces (or a cgroup, for
// socket-LB) and keeps nothing on disk; what it keeps in memory is only what
// it needs to compute the next incremental change, as kube-proxy does.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/results"
)

// Protocol is a service port protocol.
type Protocol string

// Protocols a Service port can have.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Endpoint is one backend address of a service port.
type Endpoint struct {
	IP   netip.Addr
	Port uint16
}

func (e Endpoint) String() string { return netip.AddrPortFrom(e.IP, e.Port).String() }

// Service is one ClusterIP service port (kube-proxy programs per service
// port, so a Service with two ports is two of these).
type Service struct {
	Namespace string
	Name      string
	// PortName is the name of the service port ("p80" when unnamed in the
	// scale model); it is part of every identifier derived from the service.
	PortName  string
	ClusterIP netip.Addr
	Port      uint16
	Protocol  Protocol
	Endpoints []Endpoint
}

// Key identifies a service port the way kube-proxy's ServicePortName does:
// namespace/name:port.
func (s Service) Key() string { return s.Namespace + "/" + s.Name + ":" + s.PortName }

// Validate reports the first thing that makes s impossible to program.
func (s Service) Validate() error {
	switch {
	case s.Namespace == "" || s.Name == "" || s.PortName == "":
		return fmt.Errorf("service %q: namespace, name and port name are required", s.Key())
	case !s.ClusterIP.Is4():
		return fmt.Errorf("service %s: cluster IP %v is not IPv4", s.Key(), s.ClusterIP)
	case s.Port == 0:
		return fmt.Errorf("service %s: port 0", s.Key())
	case s.Protocol != TCP && s.Protocol != UDP:
		return fmt.Errorf("service %s: protocol %q", s.Key(), s.Protocol)
	}
	for _, e := range s.Endpoints {
		if !e.IP.Is4() || e.Port == 0 {
			return fmt.Errorf("service %s: endpoint %v is not an IPv4 address with a port", s.Key(), e)
		}
	}
	return nil
}

// ValidateAll checks every service and that keys and frontends are unique.
func ValidateAll(svcs []Service) error {
	keys := make(map[string]bool, len(svcs))
	fronts := make(map[string]bool, len(svcs))
	for _, s := range svcs {
		if err := s.Validate(); err != nil {
			return err
		}
		if keys[s.Key()] {
			return fmt.Errorf("service %s listed twice", s.Key())
		}
		keys[s.Key()] = true
		f := fmt.Sprintf("%v/%d/%s", s.ClusterIP, s.Port, s.Protocol)
		if fronts[f] {
			return fmt.Errorf("service %s: frontend %s used by another service", s.Key(), f)
		}
		fronts[f] = true
	}
	return nil
}

// Target says where a proxy's state must exist.
type Target struct {
	// Netns are the network namespace paths of the nodes: kube-proxy runs on
	// every node, and pod-to-service DNAT happens on the client's node.
	Netns []string
	// Runner runs iptables-restore, nft and friends.
	Runner command.Runner
	// ClusterCIDR is the pod CIDR; traffic from outside it to a ClusterIP is
	// marked for masquerade, as kube-proxy's local-traffic detector does.
	// Invalid (zero) means "unknown" and the rule is left out.
	ClusterCIDR netip.Prefix
	// IPTables selects the iptables binaries for the iptables proxy:
	// "iptables" (the system default, whichever backend it drives),
	// "iptables-nft" or "iptables-legacy". Empty means "iptables". The
	// proxy asks the binaries which backend they drive and is named by it.
	IPTables string
	// CgroupDir is the cgroup v2 directory holding the lab's client
	// processes; socket-LB attaches there. Unused by the netfilter proxies.
	CgroupDir string
	// PodHostIfaces are the pods' host-side interfaces (the node end of
	// each pod veth). The ebpf proxy attaches its per-packet TC service
	// path there (approximate: see ebpf.TCNote); the other proxies ignore
	// it.
	PodHostIfaces []HostIface
}

// HostIface names an interface by the network namespace it lives in (a
// path such as /run/netns/<name>, as in Target.Netns) and its name there.
type HostIface struct {
	Netns string
	Name  string
}

func (h HostIface) String() string { return h.Netns + ":" + h.Name }

// Counts describes how big a proxy's kernel state is.
type Counts struct {
	// Rules is the number of rules (iptables/nft) in the proxy's tables, or
	// map entries for ebpf, summed over one node.
	Rules int
	// Chains counts chains (iptables/nft); 0 for ebpf.
	Chains int
	// MapEntries counts nft map/set elements or BPF map entries.
	MapEntries int
}

// Proxy is one service-proxy backend bound to a Target.
type Proxy interface {
	// Name is the backend's identity, what results and rankings match
	// on: iptables-legacy, iptables-nft, nftables, ebpf, ipvs. labs/*.yaml
	// asks for "iptables" (the system's binaries) and the iptables proxy
	// names the backend they turned out to drive.
	Name() string
	// Fidelity of this backend's model of the real proxy.
	Fidelity() results.Fidelity
	// Sync makes the kernel hold exactly svcs, rewriting everything (a
	// kube-proxy full sync).
	Sync(ctx context.Context, svcs []Service) error
	// Update applies only a change: services in upsert are added or
	// replaced, services whose Key is in remove are deleted. Each backend
	// does what its real counterpart does for a partial sync.
	Update(ctx context.Context, upsert []Service, remove []string) error
	// Counts reads the size of the proxy's state back from the kernel of
	// the first node (or from the fake), so counts are measured, not
	// computed.
	Counts(ctx context.Context) (Counts, error)
	// Close removes everything the proxy installed. It is safe to call
	// after a failed Sync.
	Close(ctx context.Context) error
}

// NamespaceScoped is implemented by proxies whose whole state lives in the
// target's network namespaces (netfilter rules). Deleting those namespaces
// removes it, so a lab being torn down need not Close them; a proxy that
// holds programs, maps or links in this process (ebpf) must be closed.
type NamespaceScoped interface {
	NamespaceScoped() bool
}

// ErrNotReproducible is wrapped by errors that say a backend cannot run on
// this kernel; callers fall back and record the message.
var ErrNotReproducible = errors.New("not reproducible here")

// ErrNotBuilt is wrapped by errors that say the kernel could run a backend
// but cnilab has no implementation of it yet. Like ErrNotReproducible it
// lets a lab fall back to its recorded alternative instead of failing; the
// note says which of the two happened.
var ErrNotBuilt = errors.New("not built in cnilab yet")

// Apply merges a change into a desired-state list, keeping order: replaced
// services stay where they were, new ones go to the end. Backends use it to
// keep the order kube-proxy would write (which matters for iptables).
func Apply(cur []Service, upsert []Service, remove []string) []Service {
	rm := make(map[string]bool, len(remove))
	for _, k := range remove {
		rm[k] = true
	}
	up := make(map[string]Service, len(upsert))
	for _, s := range upsert {
		up[s.Key()] = s
	}
	out := make([]Service, 0, len(cur)+len(upsert))
	seen := make(map[string]bool, len(cur))
	for _, s := range cur {
		k := s.Key()
		if rm[k] {
			continue
		}
		if n, ok := up[k]; ok {
			s = n
		}
		seen[k] = true
		out = append(out, s)
	}
	for _, s := range upsert {
		if !seen[s.Key()] && !rm[s.Key()] {
			out = append(out, s)
			seen[s.Key()] = true
		}
	}
	return out
}

// SortedKeys returns the keys of svcs in order, for deterministic output.
func SortedKeys(svcs []Service) []string {
	ks := make([]string, len(svcs))
	for i, s := range svcs {
		ks[i] = s.Key()
	}
	sort.Strings(ks)
	return ks
}
