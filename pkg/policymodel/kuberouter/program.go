// Package kuberouter is kube-router's network-policy controller rebuilt for
// cnilab's netns model: from the pods, namespaces and NetworkPolicies of a
// lab it lays out, per node, the filter-table chains and ipsets kube-router
// v2.1.0 programs (pkg/controllers/netpol), and loads them the way the
// agent does, ipset restore then one iptables-restore per sync.
//
// The layout, as kube-router's controller builds it:
//
//   - INPUT, FORWARD and OUTPUT jump first thing to KUBE-ROUTER-INPUT,
//     -FORWARD, -OUTPUT. Those hold, per pod on the node, a jump to the
//     pod's KUBE-POD-FW-<hash> chain for traffic from it (all three) and to
//     it (FORWARD routed and bridged, OUTPUT), and end by accepting
//     packets carrying mark 0x20000. KUBE-ROUTER-INPUT starts by letting
//     the service range and node ports through.
//   - A pod's chain accepts RELATED,ESTABLISHED, drops INVALID, accepts
//     from the node itself, then runs every policy selecting the pod
//     (KUBE-NWPLCY-<hash>, ingress ones for packets to the pod, egress ones
//     for packets from it) or, for a direction no policy selects it in,
//     KUBE-NWPLCY-DEFAULT, which marks 0x10000. A packet without 0x10000
//     afterwards is logged (NFLOG group 100) and rejected; one with it gets
//     0x20000 and is accepted by the top-level chain.
//   - A policy's chain has a mark-and-return pair per rule × port, matching
//     ipsets: KUBE-DST-<hash> (the pods it selects, ingress), KUBE-SRC-<hash>
//     (the same, egress), and per rule the peers: KUBE-SRC-<hash> (pods
//     from, hash:ip), KUBE-SRC-<hash> (ipBlock, hash:net, except entries
//     nomatch), KUBE-DST-<hash> likewise for egress.
//   - Chain names hash the sync's version (its start in nanoseconds), so
//     every sync writes fresh pod and policy chains, points the top-level
//     chains at them and deletes the previous ones in one restore. Set
//     names do not change; each set is refilled through a TMP- set and a
//     swap.
//
// Written from that layout for cnilab; no kube-router code is used.
package kuberouter

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Chain and set names and marks of kube-router's controller.
const (
	PodChainPrefix    = "KUBE-POD-FW-"
	PolicyChainPrefix = "KUBE-NWPLCY-"
	SrcSetPrefix      = "KUBE-SRC-"
	DstSetPrefix      = "KUBE-DST-"
	TmpSetPrefix      = "TMP-"
	InputChain        = "KUBE-ROUTER-INPUT"
	ForwardChain      = "KUBE-ROUTER-FORWARD"
	OutputChain       = "KUBE-ROUTER-OUTPUT"
	DefaultChain      = "KUBE-NWPLCY-DEFAULT"

	// markPolicy: some policy (or the default chain) admitted the packet.
	markPolicy = "0x10000/0x10000"
	// markAccept: the pod's chain passed it; the top-level chain accepts.
	markAccept = "0x20000/0x20000"
	// family is the address family hashed into names (IPv4 only here).
	family = "IPv4"
)

// topLevel pairs each built-in chain with kube-router's chain.
var topLevel = []struct{ Builtin, Chain string }{
	{"INPUT", InputChain}, {"FORWARD", ForwardChain}, {"OUTPUT", OutputChain},
}

// Pod is a pod as the controller's informer sees it.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	IP              netip.Addr
	// Node is the name of the node it runs on.
	Node string
}

// Namespace is a namespace with its labels (kubernetes.io/metadata.name
// included, as the API server sets it).
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Cluster is what the controller knows besides the policies.
type Cluster struct {
	Pods        []Pod
	Namespaces  []Namespace
	ServiceCIDR netip.Prefix
	// NodePortRange is kube-router's --service-node-port-range
	// ("30000-32767" by default).
	NodePortRange string
}

// Set is one ipset and its members ("10.244.1.2", "10.244.1.2/32 nomatch").
type Set struct {
	Name, Type string
	Entries    []string
}

// Program is one node's sync: the filter-table chains and rules and the
// ipsets they match.
type Program struct {
	Version string
	// Chains are the pod and policy chains of this version (the
	// top-level chains and KUBE-NWPLCY-DEFAULT persist across syncs).
	Chains []string
	// Rules are iptables-restore rule lines ("-A CHAIN ..."), in order.
	Rules []string
	Sets  []Set
}

func hash16(s string) string {
	h := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(h[:])[:16]
}

// Names as kube-router derives them.
func podChainName(ns, pod, version string) string { return PodChainPrefix + hash16(ns+pod+version) }
func policyChainName(ns, name, version string) string {
	return PolicyChainPrefix + hash16(ns+name+version+family)
}
func targetDstSet(ns, name string) string { return DstSetPrefix + hash16(ns+name+family) }
func targetSrcSet(ns, name string) string { return SrcSetPrefix + hash16(ns+name+family) }
func ruleSet(prefix, ns, name, dir string, idx int, kind string) string {
	return prefix + hash16(ns+name+dir+"rule"+strconv.Itoa(idx)+family+kind)
}

// withUUID appends kube-router's rule id to a rule's comment (the hash of
// chain and rule), as it does for the rules it keeps at fixed positions.
func withUUID(chain string, spec []string) []string {
	out := append([]string(nil), spec...)
	id := hash16(chain + strings.Join(spec, ""))
	for i, p := range out {
		if p == "--comment" && i+1 < len(out) {
			out[i+1] += " - " + id
			break
		}
	}
	return out
}

// JumpRule is the rule a built-in chain jumps to kube-router's chain with.
func JumpRule(builtin, chain string) []string {
	return withUUID(builtin, []string{"-m", "comment", "--comment", "kube-router netpol", "-j", chain})
}

// line renders args as one iptables-restore line, quoting words with
// spaces.
func line(args ...string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t\"") {
			a = `"` + strings.ReplaceAll(a, `"`, `'`) + `"`
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

type portSpec struct{ proto, port, end string }

// ports applies the API server's defaulting (protocol TCP) and resolves
// numeric ports; named ports resolve against pods' declared container
// ports, and the lab's pods declare none, so they match nothing.
func ports(ps []networkingv1.NetworkPolicyPort) []portSpec {
	var out []portSpec
	for _, p := range ps {
		proto := string(corev1.ProtocolTCP)
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		switch {
		case p.Port == nil:
			out = append(out, portSpec{proto: proto})
		case p.Port.Type == intstr.Int:
			ps := portSpec{proto: proto, port: p.Port.String()}
			if p.EndPort != nil && *p.EndPort >= p.Port.IntVal {
				ps.end = strconv.Itoa(int(*p.EndPort))
			}
			out = append(out, ps)
		}
	}
	return out
}

// policyTypes applies the API server's defaulting: Ingress always, Egress
// when the spec has egress rules.
func policyTypes(spec networkingv1.NetworkPolicySpec) (ingress, egress bool) {
	if len(spec.PolicyTypes) == 0 {
		return true, len(spec.Egress) > 0
	}
	for _, t := range spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

type compiler struct {
	c       Cluster
	version string
	prog    *Program
	sets    map[string]bool
}

func (k *compiler) rule(args ...string) { k.prog.Rules = append(k.prog.Rules, line(args...)) }

func (k *compiler) set(name, typ string, entries []string) {
	if k.sets[name] {
		return
	}
	k.sets[name] = true
	k.prog.Sets = append(k.prog.Sets, Set{Name: name, Type: typ, Entries: entries})
}

func selector(s *metav1.LabelSelector) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(s)
}

// podsIn are the pods of namespace ns whose labels sel matches.
func (k *compiler) podsIn(ns string, sel labels.Selector) []Pod {
	var out []Pod
	for _, p := range k.c.Pods {
		if p.Namespace == ns && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// peerPods evaluates a peer's selectors: namespaceSelector (with an
// optional podSelector) over every namespace, podSelector alone over the
// policy's own. An ipBlock peer selects no pods.
func (k *compiler) peerPods(policyNS string, peer networkingv1.NetworkPolicyPeer) ([]Pod, error) {
	switch {
	case peer.NamespaceSelector != nil:
		nsSel, err := selector(peer.NamespaceSelector)
		if err != nil {
			return nil, err
		}
		podSel := labels.Everything()
		if peer.PodSelector != nil {
			if podSel, err = selector(peer.PodSelector); err != nil {
				return nil, err
			}
		}
		var out []Pod
		for _, ns := range k.c.Namespaces {
			if nsSel.Matches(labels.Set(ns.Labels)) {
				out = append(out, k.podsIn(ns.Name, podSel)...)
			}
		}
		return out, nil
	case peer.PodSelector != nil:
		sel, err := selector(peer.PodSelector)
		if err != nil {
			return nil, err
		}
		return k.podsIn(policyNS, sel), nil
	}
	return nil, nil
}

// ipBlock is a peer's block as hash:net entries; /0 is split in two
// halves (ipset cannot hold a /0), excepts are nomatch entries.
func ipBlock(peer networkingv1.NetworkPolicyPeer) []string {
	if peer.PodSelector != nil || peer.NamespaceSelector != nil || peer.IPBlock == nil {
		return nil
	}
	b := peer.IPBlock
	p, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !p.Addr().Is4() {
		return nil
	}
	whole := func(cidr, opt string) []string {
		if strings.HasSuffix(cidr, "/0") {
			return []string{"0.0.0.0/1 timeout 0" + opt, "128.0.0.0/1 timeout 0" + opt}
		}
		return []string{cidr + " timeout 0" + opt}
	}
	out := whole(b.CIDR, "")
	for _, e := range b.Except {
		out = append(out, whole(e, " nomatch")...)
	}
	return out
}

func ips(pods []Pod) []string {
	out := make([]string, 0, len(pods))
	seen := map[netip.Addr]bool{}
	for _, p := range pods {
		if !seen[p.IP] {
			seen[p.IP] = true
			out = append(out, p.IP.String()+" timeout 0")
		}
	}
	return out
}

// allow writes one mark-and-return pair of a policy chain.
func (k *compiler) allow(chain, comment, src, dst string, p portSpec) {
	args := []string{"-A", chain, "-m", "comment", "--comment", comment}
	if src != "" {
		args = append(args, "-m", "set", "--match-set", src, "src")
	}
	if dst != "" {
		args = append(args, "-m", "set", "--match-set", dst, "dst")
	}
	if p.proto != "" {
		args = append(args, "-p", p.proto)
	}
	if p.port != "" {
		d := p.port
		if p.end != "" {
			d += ":" + p.end
		}
		args = append(args, "--dport", d)
	}
	k.rule(append(append([]string(nil), args...), "-j", "MARK", "--set-xmark", markPolicy)...)
	k.rule(append(args, "-m", "mark", "--mark", markPolicy, "-j", "RETURN")...)
}

// compiled is a policy as the pod chains need it.
type compiled struct {
	np              *networkingv1.NetworkPolicy
	chain           string
	ingress, egress bool
	targets         map[netip.Addr]bool
}

// peerRule is one ingress or egress rule, direction-neutral.
type peerRule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

// rules writes a policy's chain for one direction. self is the set of the
// pods the policy selects; own and peer say which side of the packet each
// is on (dst/src for ingress, src/dst for egress).
func (k *compiler) rules(np *networkingv1.NetworkPolicy, chain, dir, self string, rs []peerRule) error {
	ns, name := np.Namespace, np.Name
	prefixPeer := SrcSetPrefix
	if dir == "egress" {
		prefixPeer = DstSetPrefix
	}
	sides := func(peer string) (string, string) {
		if dir == "egress" {
			return self, peer
		}
		return peer, self
	}
	from := map[string]string{"ingress": "source pods to dest pods", "egress": "source pods to dest pods"}[dir]
	for idx, r := range rs {
		var pods []Pod
		var blocks []string
		for _, peer := range r.peers {
			ps, err := k.peerPods(ns, peer)
			if err != nil {
				return fmt.Errorf("NetworkPolicy %s/%s: %w", ns, name, err)
			}
			pods = append(pods, ps...)
			blocks = append(blocks, ipBlock(peer)...)
		}
		matchAllPeers, matchAllPorts := len(r.peers) == 0, len(r.ports) == 0
		pp := ports(r.ports)
		comment := "rule to ACCEPT traffic from " + from + " selected by policy name " + name + " namespace " + ns
		if len(pods) > 0 {
			set := ruleSet(prefixPeer, ns, name, dir, idx, "pod")
			k.set(set, "hash:ip", ips(pods))
			s, d := sides(set)
			for _, p := range pp {
				k.allow(chain, comment, s, d, p)
			}
			if matchAllPorts {
				k.allow(chain, comment, s, d, portSpec{})
			}
		}
		all := "rule to ACCEPT traffic from all sources to dest pods selected by policy name: " + name + " namespace " + ns
		if dir == "egress" {
			all = "rule to ACCEPT traffic from source pods to all destinations selected by policy name: " + name + " namespace " + ns
		}
		if matchAllPeers {
			s, d := sides("")
			for _, p := range pp {
				k.allow(chain, all, s, d, p)
			}
			if matchAllPorts {
				k.allow(chain, all, s, d, portSpec{})
			}
		}
		if len(blocks) > 0 {
			set := ruleSet(prefixPeer, ns, name, dir, idx, "ipblock")
			k.set(set, "hash:net", blocks)
			s, d := sides(set)
			c := "rule to ACCEPT traffic from specified ipBlocks to dest pods selected by policy name: " + name + " namespace " + ns
			if dir == "egress" {
				c = "rule to ACCEPT traffic from source pods to specified ipBlocks selected by policy name: " + name + " namespace " + ns
			}
			for _, p := range pp {
				k.allow(chain, c, s, d, p)
			}
			if matchAllPorts {
				k.allow(chain, c, s, d, portSpec{})
			}
		}
	}
	return nil
}

// Compile lays out one node's sync for a set of policies. Policies are
// taken in namespace/name order and pods in namespace/name order, so a
// program is a pure function of its inputs.
func Compile(c Cluster, policies []*networkingv1.NetworkPolicy, node, version string) (*Program, error) {
	k := &compiler{c: c, version: version, prog: &Program{Version: version}, sets: map[string]bool{}}
	nps := append([]*networkingv1.NetworkPolicy(nil), policies...)
	sort.Slice(nps, func(i, j int) bool {
		if nps[i].Namespace != nps[j].Namespace {
			return nps[i].Namespace < nps[j].Namespace
		}
		return nps[i].Name < nps[j].Name
	})
	pods := append([]Pod(nil), c.Pods...)
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	k.c.Pods = pods

	// KUBE-ROUTER-INPUT opens with the service range and node ports.
	nodePorts := strings.ReplaceAll(c.NodePortRange, "-", ":")
	if nodePorts == "" {
		nodePorts = "30000:32767"
	}
	k.rule(append([]string{"-A", InputChain}, withUUID(InputChain, []string{"-m", "comment", "--comment",
		"allow traffic to primary/secondary cluster IP range", "-d", c.ServiceCIDR.String(), "-j", "RETURN"})...)...)
	for _, proto := range []string{"tcp", "udp"} {
		k.rule(append([]string{"-A", InputChain}, withUUID(InputChain, []string{"-p", proto, "-m", "comment", "--comment",
			"allow LOCAL " + strings.ToUpper(proto) + " traffic to node ports", "-m", "addrtype", "--dst-type", "LOCAL",
			"-m", "multiport", "--dports", nodePorts, "-j", "RETURN"})...)...)
	}
	k.rule("-A", DefaultChain, "-j", "MARK", "-m", "comment", "--comment", "rule to mark traffic matching a network policy", "--set-xmark", markPolicy)

	var cps []compiled
	for _, np := range nps {
		sel, err := selector(&np.Spec.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("NetworkPolicy %s/%s: podSelector: %w", np.Namespace, np.Name, err)
		}
		cp := compiled{np: np, chain: policyChainName(np.Namespace, np.Name, version), targets: map[netip.Addr]bool{}}
		cp.ingress, cp.egress = policyTypes(np.Spec)
		targets := k.podsIn(np.Namespace, sel)
		for _, p := range targets {
			cp.targets[p.IP] = true
		}
		k.prog.Chains = append(k.prog.Chains, cp.chain)
		if cp.ingress {
			self := targetDstSet(np.Namespace, np.Name)
			k.set(self, "hash:ip", ips(targets))
			var rs []peerRule
			for _, r := range np.Spec.Ingress {
				rs = append(rs, peerRule{r.From, r.Ports})
			}
			if err := k.rules(np, cp.chain, "ingress", self, rs); err != nil {
				return nil, err
			}
		}
		if cp.egress {
			self := targetSrcSet(np.Namespace, np.Name)
			k.set(self, "hash:ip", ips(targets))
			var rs []peerRule
			for _, r := range np.Spec.Egress {
				rs = append(rs, peerRule{r.To, r.Ports})
			}
			if err := k.rules(np, cp.chain, "egress", self, rs); err != nil {
				return nil, err
			}
		}
		cps = append(cps, cp)
	}

	for _, p := range pods {
		if p.Node != node {
			continue
		}
		chain := podChainName(p.Namespace, p.Name, version)
		k.prog.Chains = append(k.prog.Chains, chain)
		ip := p.IP.String()
		who := "POD name:" + p.Name + " namespace: " + p.Namespace
		// kube-router inserts these at the top of the chain one by one;
		// written here in the order that leaves.
		k.rule("-A", chain, "-m", "comment", "--comment", "rule for stateful firewall for pod", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
		k.rule("-A", chain, "-m", "comment", "--comment", "rule to drop invalid state for pod", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
		k.rule("-A", chain, "-m", "comment", "--comment", "rule to permit the traffic traffic to pods when source is the pod's local node",
			"-m", "addrtype", "--src-type", "LOCAL", "-d", ip, "-j", "ACCEPT")
		var jumps [][]string
		hasIngress, hasEgress := false, false
		for _, cp := range cps {
			if !cp.targets[p.IP] {
				continue
			}
			comment := "run through nw policy " + cp.np.Name
			switch {
			case cp.ingress && cp.egress:
				hasIngress, hasEgress = true, true
				jumps = append(jumps, []string{"-A", chain, "-m", "comment", "--comment", comment, "-j", cp.chain})
			case cp.egress:
				hasEgress = true
				jumps = append(jumps, []string{"-A", chain, "-s", ip, "-m", "comment", "--comment", comment, "-j", cp.chain})
			default:
				hasIngress = true
				jumps = append(jumps, []string{"-A", chain, "-d", ip, "-m", "comment", "--comment", comment, "-j", cp.chain})
			}
		}
		if !hasEgress {
			k.rule("-A", chain, "-s", ip, "-m", "comment", "--comment", "run through default egress network policy chain", "-j", DefaultChain)
		}
		if !hasIngress {
			k.rule("-A", chain, "-d", ip, "-m", "comment", "--comment", "run through default ingress network policy chain", "-j", DefaultChain)
		}
		for i := len(jumps) - 1; i >= 0; i-- {
			k.rule(jumps[i]...)
		}
		k.rule("-A", chain, "-m", "comment", "--comment", "rule to log dropped traffic "+who, "-m", "mark", "!", "--mark", markPolicy,
			"-j", "NFLOG", "--nflog-group", "100", "-m", "limit", "--limit", "10/minute", "--limit-burst", "10")
		k.rule("-A", chain, "-m", "comment", "--comment", "rule to REJECT traffic destined for "+who, "-m", "mark", "!", "--mark", markPolicy, "-j", "REJECT")
		k.rule("-A", chain, "-j", "MARK", "--set-mark", "0/0x10000")
		k.rule("-A", chain, "-m", "comment", "--comment", "set mark to ACCEPT traffic that comply to network policies", "-j", "MARK", "--set-mark", markAccept)

		to := "rule to jump traffic destined to " + who + " to chain " + chain
		k.rule("-A", ForwardChain, "-m", "comment", "--comment", to, "-d", ip, "-j", chain)
		k.rule("-A", OutputChain, "-m", "comment", "--comment", to, "-d", ip, "-j", chain)
		k.rule("-A", ForwardChain, "-m", "physdev", "--physdev-is-bridged", "-m", "comment", "--comment", to, "-d", ip, "-j", chain)
		from := "rule to jump traffic from " + who + " to chain " + chain
		for _, t := range topLevel {
			k.rule("-A", t.Chain, "-m", "comment", "--comment", from, "-s", ip, "-j", chain)
		}
		k.rule("-A", ForwardChain, "-m", "physdev", "--physdev-is-bridged", "-m", "comment", "--comment", from, "-s", ip, "-j", chain)
	}
	for _, t := range topLevel {
		k.rule("-A", t.Chain, "-m", "comment", "--comment", "rule to explicitly ACCEPT traffic that comply to network policies",
			"-m", "mark", "--mark", markAccept, "-j", "ACCEPT")
	}
	return k.prog, nil
}

// FilterRestore is the iptables-restore --noflush payload of a sync: the
// top-level and default chains flushed and rewritten, this version's pod
// and policy chains, the built-in chains' jumps (re)placed first, and the
// previous version's chains deleted, all in one transaction. installed
// says the jumps already exist (they are moved back to the top).
func FilterRestore(p *Program, previous []string, installed bool) []byte {
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, t := range topLevel {
		fmt.Fprintf(&b, ":%s - [0:0]\n", t.Chain)
	}
	fmt.Fprintf(&b, ":%s - [0:0]\n", DefaultChain)
	current := map[string]bool{}
	for _, c := range p.Chains {
		current[c] = true
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	var stale []string
	for _, c := range previous {
		if !current[c] {
			stale = append(stale, c)
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
	}
	for _, r := range p.Rules {
		b.WriteString(r + "\n")
	}
	for _, t := range topLevel {
		jump := JumpRule(t.Builtin, t.Chain)
		if installed {
			b.WriteString(line(append([]string{"-D", t.Builtin}, jump...)...) + "\n")
		}
		b.WriteString(line(append([]string{"-I", t.Builtin, "1"}, jump...)...) + "\n")
	}
	for _, c := range stale {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}

// tmpSet is the swap set for sets of one type, named from the type as
// kube-router names its TMP- sets from their options.
func tmpSet(options string) string {
	h := sha256.Sum256([]byte("tmp:" + options))
	return TmpSetPrefix + base32.StdEncoding.EncodeToString(h[:10])[:16]
}

// SetRestore is the ipset restore -exist payload that refills every set of
// a program: per set, its members into the type's TMP- set, the set
// created if missing, swapped with it, and the TMP- set emptied; the TMP-
// sets destroyed at the end.
func SetRestore(p *Program) []byte {
	var b strings.Builder
	sets := append([]Set(nil), p.Sets...)
	sort.Slice(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
	tmps := map[string]string{}
	var order []string
	for _, s := range sets {
		opts := s.Type + " timeout 0"
		tmp, ok := tmps[opts]
		if !ok {
			tmp = tmpSet(opts)
			tmps[opts] = tmp
			order = append(order, tmp)
			fmt.Fprintf(&b, "create %s %s\nflush %s\n", tmp, opts, tmp)
		}
		for _, e := range s.Entries {
			fmt.Fprintf(&b, "add %s %s\n", tmp, e)
		}
		fmt.Fprintf(&b, "create %s %s\nswap %s %s\nflush %s\n", s.Name, opts, tmp, s.Name, tmp)
	}
	for _, t := range order {
		fmt.Fprintf(&b, "destroy %s\n", t)
	}
	return []byte(b.String())
}

// SetNames are a program's sets, sorted.
func (p *Program) SetNames() []string {
	out := make([]string, len(p.Sets))
	for i, s := range p.Sets {
		out[i] = s.Name
	}
	sort.Strings(out)
	return out
}
