package policy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cnilab/cnilab/pkg/lab"
)

// Sources of the matrix. The server is the bench cross-node server; peer is
// the bench cross-node client (same namespace as the server); client and
// other are peers in namespaces of their own, labelled trusted and
// untrusted, on the client's node. client also carries the bench client's
// role label, so a podSelector alone must still not admit it from another
// namespace.
const (
	SrcPeer   = "peer"
	SrcClient = "client"
	SrcOther  = "other"

	ClientNamespace = "cnl-pol-client"
	OtherNamespace  = "cnl-pol-other"
	// TenantLabel labels the peers' namespaces.
	TenantLabel = "cnilab.io/policy-tenant"
	// PolicyLabel marks every policy the scenario applies, so cleanup
	// removes exactly those.
	PolicyLabel = "cnilab.io/policy"
)

// Ports the server listens on during the matrix.
const (
	portTCP      = lab.ServicePort // 5201: the allowed port
	portTCPOther = 8080
	portUDP      = lab.ServicePort // 5201/udp
	portUDPOther = 5302
)

// Peers are the pods the matrix needs besides the bench pair.
func Peers() []lab.Peer {
	beside := "cross-node-client"
	return []lab.Peer{
		{Name: "client", Namespace: ClientNamespace, Beside: beside,
			Labels:          map[string]string{"app": "client", lab.BenchRoleLabel: "client"},
			NamespaceLabels: map[string]string{TenantLabel: "trusted"}},
		{Name: "other", Namespace: OtherNamespace, Beside: beside,
			Labels:          map[string]string{"app": "client", lab.BenchRoleLabel: "client"},
			NamespaceLabels: map[string]string{TenantLabel: "untrusted"}},
	}
}

// Env is what a case's policies refer to.
type Env struct {
	// ServerNS is the bench namespace (the server's and peer's).
	ServerNS string
	ClientIP netip.Addr
	ServerIP netip.Addr
}

// Case is one row of the matrix.
type Case struct {
	Name  string
	Title string
	// Required cases are what the networking/v1 API specifies; a CNI that
	// claims NetworkPolicy and fails one is excluded where policy is
	// required. Optional ones are left to the implementation.
	Required bool
	// Why explains an optional case.
	Why string
	// Kind: static (apply, probe), update (timed transitions) or
	// established (a connection open across a new deny).
	Kind     string
	Policies func(Env) []*networkingv1.NetworkPolicy
	Checks   []Check
}

func tcp(from string, port int, want Outcome) Check {
	return Check{From: from, Proto: "tcp", Port: port, Expect: want}
}

func udp(from string, port int, want Outcome) Check {
	return Check{From: from, Proto: "udp", Port: port, Expect: want}
}

func np(name, ns string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "cnl-" + name, Namespace: ns, Labels: map[string]string{PolicyLabel: "matrix"}},
		Spec:       spec,
	}
}

var (
	ingress = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egress  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
)

// denyIngress selects every pod of ns and allows no ingress.
func denyIngress(ns string) *networkingv1.NetworkPolicy {
	return np("deny-ingress", ns, networkingv1.NetworkPolicySpec{PolicyTypes: ingress})
}

func serverSelector() metav1.LabelSelector {
	return metav1.LabelSelector{MatchLabels: map[string]string{lab.BenchRoleLabel: "server"}}
}

func port(proto corev1.Protocol, p int) networkingv1.NetworkPolicyPort {
	pr := proto
	v := intstr.FromInt32(int32(p))
	return networkingv1.NetworkPolicyPort{Protocol: &pr, Port: &v}
}

// allowFrom is an ingress allow on the server from peers on ports.
func allowFrom(name, ns string, from []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) *networkingv1.NetworkPolicy {
	return np(name, ns, networkingv1.NetworkPolicySpec{PodSelector: serverSelector(), PolicyTypes: ingress,
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: from, Ports: ports}}})
}

// Cases is the matrix, in the order it runs.
func Cases() []Case {
	return []Case{
		{Name: "baseline", Title: "no policy: every source reaches every listener", Required: true, Kind: "static",
			Policies: func(Env) []*networkingv1.NetworkPolicy { return nil },
			Checks: []Check{tcp(SrcPeer, portTCP, Allowed), tcp(SrcClient, portTCP, Allowed), tcp(SrcOther, portTCP, Allowed),
				tcp(SrcClient, portTCPOther, Allowed), udp(SrcClient, portUDP, Allowed), udp(SrcClient, portUDPOther, Allowed)}},
		{Name: "default-deny-ingress", Title: "podSelector {} with no ingress rule denies all ingress", Required: true, Kind: "static",
			Policies: func(e Env) []*networkingv1.NetworkPolicy {
				return []*networkingv1.NetworkPolicy{denyIngress(e.ServerNS)}
			},
			Checks: []Check{tcp(SrcPeer, portTCP, Denied), tcp(SrcClient, portTCP, Denied), udp(SrcClient, portUDP, Denied)}},
		{Name: "default-deny-egress", Title: "podSelector {} with no egress rule denies the namespace's egress, nobody else's", Required: true, Kind: "static",
			Policies: func(Env) []*networkingv1.NetworkPolicy {
				return []*networkingv1.NetworkPolicy{np("deny-egress", ClientNamespace, networkingv1.NetworkPolicySpec{PolicyTypes: egress})}
			},
			Checks: []Check{tcp(SrcClient, portTCP, Denied), udp(SrcClient, portUDP, Denied), tcp(SrcOther, portTCP, Allowed)}},
		{Name: "allow-pod-selector", Title: "from podSelector alone admits matching pods of the policy's own namespace only", Required: true, Kind: "static",
			Policies: func(e Env) []*networkingv1.NetworkPolicy {
				from := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{lab.BenchRoleLabel: "client"}}}}
				return []*networkingv1.NetworkPolicy{denyIngress(e.ServerNS), allowFrom("allow-pods", e.ServerNS, from)}
			},
			Checks: []Check{tcp(SrcPeer, portTCP, Allowed), tcp(SrcClient, portTCP, Denied)}},
		{Name: "allow-namespace-selector", Title: "from namespaceSelector admits every pod of the labelled namespaces", Required: true, Kind: "static",
			Policies: func(e Env) []*networkingv1.NetworkPolicy {
				from := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{TenantLabel: "trusted"}}}}
				return []*networkingv1.NetworkPolicy{denyIngress(e.ServerNS), allowFrom("allow-ns", e.ServerNS, from)}
			},
			Checks: []Check{tcp(SrcClient, portTCP, Allowed), tcp(SrcOther, portTCP, Denied), tcp(SrcPeer, portTCP, Denied)}},
		{Name: "allow-port-tcp", Title: "an allow on TCP 5201 admits that port and protocol only", Required: true, Kind: "static",
			Policies: func(e Env) []*networkingv1.NetworkPolicy {
				return []*networkingv1.NetworkPolicy{denyIngress(e.ServerNS), allowFrom("allow-tcp", e.ServerNS, nil, port(corev1.ProtocolTCP, portTCP))}
			},
			Checks: []Check{tcp(SrcClient, portTCP, Allowed), tcp(SrcClient, portTCPOther, Denied), udp(SrcClient, portUDP, Denied)}},
		{Name: "allow-port-udp", Title: "an allow on UDP 5201 admits that port and protocol only", Required: true, Kind: "static",
			Policies: func(e Env) []*networkingv1.NetworkPolicy {
				return []*networkingv1.NetworkPolicy{denyIngress(e.ServerNS), allowFrom("allow-udp", e.ServerNS, nil, port(corev1.ProtocolUDP, portUDP))}
			},
			Checks: []Check{udp(SrcClient, portUDP, Allowed), udp(SrcClient, portUDPOther, Denied), tcp(SrcClient, portTCP, Denied)}},
		{Name: "ipblock-except", Title: "from ipBlock with except admits the block minus the excepted /32", Kind: "static",
			Why: "the sources are pod IPs, and the API says ipBlock should name cluster-external addresses; over pod IPs the outcome is the implementation's",
			Policies: func(e Env) []*networkingv1.NetworkPolicy {
				block := netip.PrefixFrom(e.ServerIP, 16).Masked()
				from := []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: block.String(), Except: []string{netip.PrefixFrom(e.ClientIP, 32).String()}}}}
				return []*networkingv1.NetworkPolicy{denyIngress(e.ServerNS), allowFrom("allow-ipblock", e.ServerNS, from)}
			},
			Checks: []Check{tcp(SrcPeer, portTCP, Allowed), tcp(SrcClient, portTCP, Denied)}},
		{Name: "policy-update", Title: "adding an allow to a default deny, then removing it, takes effect (timed)", Required: true, Kind: "update",
			Policies: func(e Env) []*networkingv1.NetworkPolicy {
				from := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{TenantLabel: "trusted"}}}}
				return []*networkingv1.NetworkPolicy{denyIngress(e.ServerNS), allowFrom("allow-update", e.ServerNS, from)}
			},
			Checks: []Check{
				{Name: "client → server tcp/5201 under the deny", From: SrcClient, Proto: "tcp", Port: portTCP, Expect: Denied},
				{Name: "client → server tcp/5201 after the allow is added", From: SrcClient, Proto: "tcp", Port: portTCP, Expect: Allowed},
				{Name: "client → server tcp/5201 after the allow is removed", From: SrcClient, Proto: "tcp", Port: portTCP, Expect: Denied},
			}},
		{Name: "established-under-deny", Title: "a connection open before a default deny: new connections are denied; the open one is the implementation's choice", Kind: "established",
			Why: "the API does not say whether a new policy cuts established connections (conntrack-based CNIs keep them)",
			Policies: func(e Env) []*networkingv1.NetworkPolicy {
				return []*networkingv1.NetworkPolicy{denyIngress(e.ServerNS)}
			},
			Checks: []Check{
				{Name: "new client → server tcp/5201 connections under the deny", From: SrcClient, Proto: "tcp", Port: portTCP, Expect: Denied},
				{Name: "the client's connection opened before the deny", From: SrcClient, Proto: "tcp", Port: portTCP, Expect: Either},
			}},
	}
}

// CaseByName finds a case.
func CaseByName(name string) (Case, error) {
	for _, c := range Cases() {
		if c.Name == name {
			return c, nil
		}
	}
	return Case{}, fmt.Errorf("unknown policy case %q", name)
}

// Workloads is what the scenario asks of a lab: the cross-node pair, a
// Service in front of the server (sts through the allowed path) and the
// peers in their namespaces.
func Workloads() lab.Workloads {
	return lab.Workloads{Placements: []lab.Placement{lab.CrossNode}, ServiceProtocols: []string{"tcp"}, Peers: Peers()}
}
