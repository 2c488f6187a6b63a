package lab

import (
	"context"
	"maps"

	networkingv1 "k8s.io/api/networking/v1"
)

// Peer is a pod a scenario asks for in a namespace of its own, with labels
// on both, beside the bench pods: the NetworkPolicy scenario selects
// sources by pod and namespace labels.
type Peer struct {
	Name, Namespace string
	Labels          map[string]string
	NamespaceLabels map[string]string
	// Beside names the bench pod whose node the peer runs on
	// ("cross-node-client"), so the peer reaches the server across nodes
	// exactly as the bench client does.
	Beside string
}

// Key names the peer in Instance.Peers.
func (p Peer) Key() string { return p.Namespace + "/" + p.Name }

func mergePeers(a, b []Peer) []Peer {
	out := append([]Peer(nil), a...)
	for _, p := range b {
		seen := false
		for _, q := range out {
			if q.Key() == p.Key() {
				seen = true
				break
			}
		}
		if !seen {
			q := p
			q.Labels, q.NamespaceLabels = maps.Clone(p.Labels), maps.Clone(p.NamespaceLabels)
			out = append(out, q)
		}
	}
	return out
}

// PolicyApplier is a lab that enforces Kubernetes NetworkPolicy with its
// CNI: policies go to its API server and the CNI programs them. Labs that
// cannot (datapath models) do not implement it and the policy scenario
// reports them "policy not modelled".
type PolicyApplier interface {
	// ApplyPolicy creates the policy, or replaces the one of that name.
	ApplyPolicy(ctx context.Context, p *networkingv1.NetworkPolicy) error
	// DeletePolicy removes one policy; a missing one is not an error.
	DeletePolicy(ctx context.Context, namespace, name string) error
	// DeletePolicies removes every policy in the namespaces carrying the
	// label selector (the scenario's own, e.g. "cnilab.io/policy").
	DeletePolicies(ctx context.Context, namespaces []string, selector string) error
	// BenchNamespace is the namespace of the bench pods (the server's).
	// They carry the labels BenchPodLabel and BenchRoleLabel.
	BenchNamespace() string
}

// Labels every provider's bench pods carry (charts/cnilab-bench), for
// policy selectors.
const (
	BenchPodLabel  = "cnilab.io/pod"  // the pod's name
	BenchRoleLabel = "cnilab.io/role" // client or server
)

// PolicyProgramReader reads how the CNI's agent programmed the policies on
// the server's node, as counts the scenario records ("iptables rules",
// "ipsets", "policy map entries"), with a note of where they came from.
type PolicyProgramReader interface {
	PolicyProgram(ctx context.Context, server Pod) (counts map[string]float64, source string, err error)
}
