package kind

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/kube"
)

// policyLab applies NetworkPolicy objects through the lab's API server; the
// real CNI programs them.
type policyLab struct {
	cs    kubernetes.Interface
	cni   string
	nodes []lab.Node
	run   agentExec
	// agentNS and agentDS locate the CNI's agent pods (for reading what
	// they programmed).
	agentNS, agentDS string
}

var (
	_ lab.PolicyApplier       = (*policyLab)(nil)
	_ lab.PolicyProgramReader = (*policyLab)(nil)
)

func (p *policyLab) ApplyPolicy(ctx context.Context, np *networkingv1.NetworkPolicy) error {
	api := p.cs.NetworkingV1().NetworkPolicies(np.Namespace)
	_, err := api.Create(ctx, np, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := api.Get(ctx, np.Name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		upd := np.DeepCopy()
		upd.ResourceVersion = cur.ResourceVersion
		_, err = api.Update(ctx, upd, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
	}
	return nil
}

func (p *policyLab) DeletePolicy(ctx context.Context, namespace, name string) error {
	err := p.cs.NetworkingV1().NetworkPolicies(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete NetworkPolicy %s/%s: %w", namespace, name, err)
	}
	return nil
}

func (p *policyLab) DeletePolicies(ctx context.Context, namespaces []string, selector string) error {
	for _, ns := range namespaces {
		err := p.cs.NetworkingV1().NetworkPolicies(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: selector})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete NetworkPolicies %s in %s: %w", selector, ns, err)
		}
	}
	return nil
}

func (p *policyLab) BenchNamespace() string { return BenchNamespace }

// PolicyProgram reads what the CNI's agent programmed on the server's
// node: kube-router's filter-table rules and ipsets (iptables-save and
// ipset in the node, whose network namespace the host-network agent
// shares), Cilium's policy map entries of the server's endpoint (cilium-dbg
// in the agent on that node). Other CNIs program nothing.
func (p *policyLab) PolicyProgram(ctx context.Context, server lab.Pod) (map[string]float64, string, error) {
	var n lab.Node
	for _, x := range p.nodes {
		if x.Name() == server.NodeName() {
			n = x
		}
	}
	if n == nil {
		return nil, "", fmt.Errorf("node %s of %s not in the lab", server.NodeName(), server.Name())
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	switch p.cni {
	case "kube-router":
		res, err := n.Exec().Run(ctx, command.Cmd{Name: "iptables-save", Args: []string{"-t", "filter"}})
		if err != nil {
			return nil, "", err
		}
		counts := kubeRouterRules(string(res.Stdout))
		// The node image has no ipset; the agent's image does, and the
		// agent runs in the node's network namespace.
		agent, err := p.agentOn(ctx, n.Name())
		if err != nil {
			return counts, "iptables-save on node " + n.Name(), nil
		}
		out, _, err := p.run(ctx, p.agentNS, agent, "", []string{"ipset", "list", "-t"})
		if err != nil {
			return counts, "iptables-save on node " + n.Name() + " (ipset: " + err.Error() + ")", nil
		}
		sets, members := ipsetCounts(string(out))
		counts["ipsets"], counts["ipset_members"] = sets, members
		return counts, fmt.Sprintf("iptables-save -t filter on node %s, ipset list -t in %s/%s", n.Name(), p.agentNS, agent), nil
	case "cilium":
		agent, err := p.agentOn(ctx, n.Name())
		if err != nil {
			return nil, "", err
		}
		out, stderr, err := p.run(ctx, p.agentNS, agent, "cilium-agent", []string{"cilium-dbg", "endpoint", "list", "-o", "json"})
		if err != nil {
			return nil, "", fmt.Errorf("cilium-dbg endpoint list: %w: %s", err, stderr)
		}
		id, err := ciliumEndpointID(out, server.IP())
		if err != nil {
			return nil, "", err
		}
		out, stderr, err = p.run(ctx, p.agentNS, agent, "cilium-agent", []string{"cilium-dbg", "bpf", "policy", "get", fmt.Sprint(id), "-n"})
		if err != nil {
			return nil, "", fmt.Errorf("cilium-dbg bpf policy get %d: %w: %s", id, err, stderr)
		}
		entries := ciliumPolicyEntries(string(out))
		return map[string]float64{"policy_map_entries": entries}, fmt.Sprintf("cilium-dbg bpf policy get %d (the server's endpoint) in %s/%s", id, p.agentNS, agent), nil
	}
	return nil, "", fmt.Errorf("%s programs no NetworkPolicy", p.cni)
}

// agentOn is the CNI agent's pod on a node.
func (p *policyLab) agentOn(ctx context.Context, nodeName string) (string, error) {
	ds, err := p.cs.AppsV1().DaemonSets(p.agentNS).Get(ctx, p.agentDS, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	pods, err := p.cs.CoreV1().Pods(p.agentNS).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(ds.Spec.Selector),
		FieldSelector: "spec.nodeName=" + nodeName})
	if err != nil {
		return "", err
	}
	if len(pods.Items) == 0 {
		return "", fmt.Errorf("no %s pod on node %s", p.agentDS, nodeName)
	}
	return pods.Items[0].Name, nil
}

// kubeRouterRules counts the filter-table rules in kube-router's policy
// chains (KUBE-NWPLCY-* per policy, KUBE-POD-FW-* per pod, the top-level
// KUBE-ROUTER-* hooks) and those chains.
func kubeRouterRules(save string) map[string]float64 {
	rules, chains := 0.0, 0.0
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, ":KUBE-NWPLCY-"), strings.HasPrefix(line, ":KUBE-POD-FW-"), strings.HasPrefix(line, ":KUBE-ROUTER-"):
			chains++
		case strings.HasPrefix(line, "-A KUBE-NWPLCY-"), strings.HasPrefix(line, "-A KUBE-POD-FW-"), strings.HasPrefix(line, "-A KUBE-ROUTER-"):
			rules++
		}
	}
	return map[string]float64{"iptables_rules": rules, "iptables_chains": chains}
}

// ipsetCounts counts kube-router's sets (KUBE-SRC-*, KUBE-DST-*) and
// their members from `ipset list -t` (headers only: "Name:" and "Number of
// entries:" lines).
func ipsetCounts(out string) (sets, members float64) {
	mine := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(line, "Name: "); ok {
			mine = strings.HasPrefix(name, "KUBE-SRC-") || strings.HasPrefix(name, "KUBE-DST-")
			if mine {
				sets++
			}
			continue
		}
		if n, ok := strings.CutPrefix(line, "Number of entries: "); ok && mine {
			var v float64
			if _, err := fmt.Sscan(n, &v); err == nil {
				members += v
			}
		}
	}
	return sets, members
}

// ciliumEndpointID finds the endpoint whose IPv4 address is ip in
// `cilium-dbg endpoint list -o json`.
func ciliumEndpointID(out []byte, ip netip.Addr) (int64, error) {
	var eps []struct {
		ID     int64 `json:"id"`
		Status struct {
			Networking struct {
				Addressing []struct {
					IPv4 string `json:"ipv4"`
				} `json:"addressing"`
			} `json:"networking"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out, &eps); err != nil {
		return 0, fmt.Errorf("cilium-dbg endpoint list: %w", err)
	}
	for _, e := range eps {
		for _, a := range e.Status.Networking.Addressing {
			if a.IPv4 == ip.String() {
				return e.ID, nil
			}
		}
	}
	return 0, fmt.Errorf("no Cilium endpoint has address %s (%d endpoints)", ip, len(eps))
}

// ciliumPolicyEntries counts the entries of `cilium-dbg bpf policy get
// <id> -n`: a header line, then one line per entry (a multi-line label
// list continues on lines that start with blanks).
func ciliumPolicyEntries(out string) float64 {
	n := 0.0
	header := true
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if header {
			header = false
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		n++
	}
	return n
}

// peerPods creates the workloads' peers: each namespace (labelled) and a
// bench-image pod (labelled) on the node of the bench pod it sits beside;
// it waits for them and reads their addresses.
func (p *Provider) peerPods(ctx context.Context, in *lab.Instance, peers []lab.Peer, restCfg *rest.Config, cs kubernetes.Interface) error {
	if len(peers) == 0 {
		return nil
	}
	repo, tag, ok := strings.Cut(p.Images.Bench, ":")
	if !ok {
		return fmt.Errorf("bench image %q has no tag", p.Images.Bench)
	}
	nodeOf := map[string]string{}
	for _, pd := range in.Pods {
		nodeOf[pd.Name()] = pd.NodeName()
	}
	in.Peers = map[string]lab.Pod{}
	for _, pr := range peers {
		if !strings.HasPrefix(pr.Namespace, NamePrefix) {
			return fmt.Errorf("peer namespace %q: cnilab's own start with %s", pr.Namespace, NamePrefix)
		}
		node, ok := nodeOf[pr.Beside]
		if !ok {
			return fmt.Errorf("peer %s: no bench pod %q to run beside", pr.Key(), pr.Beside)
		}
		if err := kube.EnsureNamespace(ctx, cs, pr.Namespace, pr.NamespaceLabels); err != nil {
			return err
		}
		zero := int64(0)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: pr.Name, Namespace: pr.Namespace, Labels: pr.Labels},
			Spec: corev1.PodSpec{
				NodeName: node, RestartPolicy: corev1.RestartPolicyNever, TerminationGracePeriodSeconds: &zero,
				EnableServiceLinks: new(bool),
				Containers: []corev1.Container{{Name: kube.BenchContainer, Image: repo + ":" + tag, ImagePullPolicy: corev1.PullNever,
					Command: []string{"sleep", "infinity"}}},
			},
		}
		if _, err := cs.CoreV1().Pods(pr.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("peer pod %s: %w", pr.Key(), err)
		}
	}
	for _, pr := range peers {
		if err := kube.Poll(ctx, "peer pod "+pr.Key(), p.ReadyTimeout, time.Second, func(ctx context.Context) error {
			return kube.PodsRunning(ctx, cs, pr.Namespace, []string{pr.Name})
		}); err != nil {
			return err
		}
		kp, err := cs.CoreV1().Pods(pr.Namespace).Get(ctx, pr.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(kp.Status.PodIP)
		if err != nil {
			return fmt.Errorf("peer pod %s address %q: %w", pr.Key(), kp.Status.PodIP, err)
		}
		pd := kube.NewPod(restCfg, cs, pr.Namespace, pr.Name, kp.Spec.NodeName, ip)
		in.Peers[pr.Key()] = pd
	}
	return nil
}
