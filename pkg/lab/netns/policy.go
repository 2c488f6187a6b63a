package netns

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sync"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/datapath"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/netplan"
	"github.com/cnilab/cnilab/pkg/policymodel/kuberouter"
)

// benchNamespace is the namespace the model's bench pods belong to, the
// one kind's bench pods run in, so policies name the same namespace on
// both providers.
const benchNamespace = "cnilab"

// Policy engines a lab definition may name (config NetnsModel.Policy).
const (
	policyKubeRouter = "kube-router"
	policyNone       = "none"
)

// benchPodName is a bench pod's name on kind (kube.PodName): placement
// and role.
func benchPodName(p lab.Placement, role string) string { return string(p) + "-" + role }

// inventory is the lab as an API server would list it: the bench pods in
// the bench namespace with the chart's labels, the peers in theirs. Other
// pod namespaces of the topology (spares a uniform plan leaves on the
// server's node) are not pods to the policy controller.
func inventory(in *lab.Instance, peers []lab.Peer, svc netip.Prefix) kuberouter.Cluster {
	c := kuberouter.Cluster{ServiceCIDR: svc, NodePortRange: "30000-32767"}
	nsLabels := map[string]map[string]string{benchNamespace: {"kubernetes.io/metadata.name": benchNamespace}}
	seen := map[netip.Addr]bool{}
	add := func(ns, name string, l map[string]string, pd lab.Pod) {
		if seen[pd.IP()] {
			return
		}
		seen[pd.IP()] = true
		c.Pods = append(c.Pods, kuberouter.Pod{Namespace: ns, Name: name, Labels: l, IP: pd.IP(), Node: pd.NodeName()})
	}
	bench := func(pl lab.Placement, role string, pd lab.Pod) {
		name := benchPodName(pl, role)
		add(benchNamespace, name, map[string]string{"app.kubernetes.io/name": "cnilab-bench", lab.BenchPodLabel: name,
			lab.BenchRoleLabel: role, "cnilab.io/placement": string(pl)}, pd)
	}
	for _, pl := range []lab.Placement{lab.CrossNode, lab.SameNode} {
		if pair, ok := in.Pairs[pl]; ok {
			bench(pl, "client", pair.Client)
			bench(pl, "server", pair.Server)
		}
	}
	for _, pr := range peers {
		pd, ok := in.Peers[pr.Key()]
		if !ok {
			continue
		}
		l := maps.Clone(pr.NamespaceLabels)
		if l == nil {
			l = map[string]string{}
		}
		l["kubernetes.io/metadata.name"] = pr.Namespace
		nsLabels[pr.Namespace] = l
		add(pr.Namespace, pr.Name, maps.Clone(pr.Labels), pd)
	}
	for name, l := range nsLabels {
		c.Namespaces = append(c.Namespaces, kuberouter.Namespace{Name: name, Labels: l})
	}
	return c
}

// setupPolicy gives the lab the policy engine its definition names. With
// kube-router's, the controller is installed on every lab, as the real
// agent runs its firewall whether or not policies exist: every pod's
// traffic crosses its pod chain. A failure to install it fails the lab
// only when the run asked for policy peers; otherwise it becomes a note.
func (p *Provider) setupPolicy(ctx context.Context, in *lab.Instance, def *config.Lab, planned *datapath.Lab, w lab.Workloads) error {
	switch def.Netns.Policy {
	case policyNone:
		in.Policy = &unenforced{}
		in.Notes = append(in.Notes, fmt.Sprintf("policy: %s has no NetworkPolicy engine; the model has none either: policies are accepted and nothing enforces them", def.CNI))
		return nil
	case policyKubeRouter:
	default:
		if def.Netns.PolicyNote != "" {
			in.Notes = append(in.Notes, "policy not modelled: "+def.Netns.PolicyNote)
		}
		return nil
	}
	svc, err := netip.ParsePrefix(def.Netns.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("service_cidr: %w", err)
	}
	var nodes []kuberouter.Node
	for _, n := range planned.Nodes {
		nodes = append(nodes, kuberouter.Node{Name: n.Name, Netns: netplan.NetnsPath(n.NS)})
	}
	c := kuberouter.New(kuberouter.Config{Runner: p.Runner, Nodes: nodes, Cluster: inventory(in, w.Peers, svc)})
	if err := c.Start(ctx); err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		if len(w.Peers) > 0 {
			return fmt.Errorf("kube-router policy model: %w", err)
		}
		in.Notes = append(in.Notes, "policy not modelled here: kube-router's controller could not be installed: "+err.Error())
		return nil
	}
	o := in.Owned.(owned)
	o.policy = c
	in.Owned = o
	in.Policy = &kubeRouterPolicy{c: c}
	in.Notes = append(in.Notes, "policy: kube-router's network-policy controller is modelled (pkg/policymodel/kuberouter): "+
		"KUBE-ROUTER-*/KUBE-POD-FW-*/KUBE-NWPLCY-* filter chains and KUBE-SRC-/KUBE-DST- ipsets in each node, loaded by ipset restore and one iptables-restore per sync; "+
		"the model holds the policies in memory and syncs on each change (requests coalesce, as the agent's do) instead of watching an API server")
	return nil
}

// kubeRouterPolicy is the kube-router model as the policy scenario sees
// it.
type kubeRouterPolicy struct{ c *kuberouter.Controller }

var (
	_ lab.PolicyApplier       = (*kubeRouterPolicy)(nil)
	_ lab.PolicyProgramReader = (*kubeRouterPolicy)(nil)
)

func (k *kubeRouterPolicy) ApplyPolicy(_ context.Context, np *networkingv1.NetworkPolicy) error {
	return k.c.Apply(np)
}

func (k *kubeRouterPolicy) DeletePolicy(_ context.Context, namespace, name string) error {
	return k.c.Delete(namespace, name)
}

func (k *kubeRouterPolicy) DeletePolicies(_ context.Context, namespaces []string, selector string) error {
	return k.c.DeleteMatching(namespaces, selector)
}

func (k *kubeRouterPolicy) BenchNamespace() string { return benchNamespace }

// PolicyProgram waits for the syncs requested so far, then counts what is
// in the server's node, as the kind lab counts the real agent's.
func (k *kubeRouterPolicy) PolicyProgram(ctx context.Context, server lab.Pod) (map[string]float64, string, error) {
	if err := k.c.Wait(ctx); err != nil {
		return nil, "", err
	}
	return k.c.Counts(ctx, server.NodeName())
}

// unenforced is a CNI without a policy engine (flannel): the API server
// stores the policies and nothing acts on them.
type unenforced struct {
	mu       sync.Mutex
	policies map[string]*networkingv1.NetworkPolicy
}

var _ lab.PolicyApplier = (*unenforced)(nil)

func (u *unenforced) ApplyPolicy(_ context.Context, np *networkingv1.NetworkPolicy) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.policies == nil {
		u.policies = map[string]*networkingv1.NetworkPolicy{}
	}
	u.policies[np.Namespace+"/"+np.Name] = np.DeepCopy()
	return nil
}

func (u *unenforced) DeletePolicy(_ context.Context, namespace, name string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.policies, namespace+"/"+name)
	return nil
}

func (u *unenforced) DeletePolicies(_ context.Context, namespaces []string, selector string) error {
	sel, err := labels.Parse(selector)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, np := range u.policies {
		for _, ns := range namespaces {
			if np.Namespace == ns && sel.Matches(labels.Set(np.Labels)) {
				delete(u.policies, k)
			}
		}
	}
	return nil
}

func (u *unenforced) BenchNamespace() string { return benchNamespace }
