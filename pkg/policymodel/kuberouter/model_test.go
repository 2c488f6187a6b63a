package kuberouter

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/labfake"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/scenario/policy"
)

const benchNS = "cnilab"

var (
	clientIP = netip.MustParseAddr("10.244.0.2") // bench client, node n1
	serverIP = netip.MustParseAddr("10.244.1.2") // bench server, node n2
	peerIP   = netip.MustParseAddr("10.244.0.3") // "client" peer, n1
	otherIP  = netip.MustParseAddr("10.244.0.4") // "other" peer, n1
)

// testCluster is the policy scenario's pods as the netns lab lists them,
// plus extra (kube-system) pods on the server's node.
func testCluster(extraOnServerNode int) Cluster {
	c := Cluster{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/16"), NodePortRange: "30000-32767",
		Namespaces: []Namespace{{Name: benchNS, Labels: map[string]string{"kubernetes.io/metadata.name": benchNS}},
			{Name: "kube-system", Labels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}}}}
	bench := func(name, role string, ip netip.Addr, node string) Pod {
		return Pod{Namespace: benchNS, Name: name, IP: ip, Node: node,
			Labels: map[string]string{lab.BenchPodLabel: name, lab.BenchRoleLabel: role}}
	}
	c.Pods = append(c.Pods, bench("cross-node-client", "client", clientIP, "n1"), bench("cross-node-server", "server", serverIP, "n2"))
	for _, pr := range policy.Peers() {
		ip := peerIP
		if pr.Name == "other" {
			ip = otherIP
		}
		l := map[string]string{"kubernetes.io/metadata.name": pr.Namespace}
		for k, v := range pr.NamespaceLabels {
			l[k] = v
		}
		c.Namespaces = append(c.Namespaces, Namespace{Name: pr.Namespace, Labels: l})
		c.Pods = append(c.Pods, Pod{Namespace: pr.Namespace, Name: pr.Name, Labels: pr.Labels, IP: ip, Node: "n1"})
	}
	for i := 0; i < extraOnServerNode; i++ {
		c.Pods = append(c.Pods, Pod{Namespace: "kube-system", Name: fmt.Sprintf("coredns-%d", i), IP: netip.AddrFrom4([4]byte{10, 244, 1, byte(10 + i)}),
			Node: "n2", Labels: map[string]string{"k8s-app": "kube-dns"}})
	}
	return c
}

var testNodes = []Node{{Name: "n1", Netns: "/run/netns/n1"}, {Name: "n2", Netns: "/run/netns/n2"}}

func fixedVersion() func() string {
	v := int64(1764600000000000000)
	return func() string { v++; return fmt.Sprint(v) }
}

// applier is the controller as the scenario's PolicyApplier; every change
// waits for its sync, so a probe sees the programmed state.
type applier struct{ c *Controller }

func (a applier) ApplyPolicy(ctx context.Context, np *networkingv1.NetworkPolicy) error {
	if err := a.c.Apply(np); err != nil {
		return err
	}
	return a.c.Wait(ctx)
}
func (a applier) DeletePolicy(ctx context.Context, ns, name string) error {
	if err := a.c.Delete(ns, name); err != nil {
		return err
	}
	return a.c.Wait(ctx)
}
func (a applier) DeletePolicies(ctx context.Context, nss []string, sel string) error {
	if err := a.c.DeleteMatching(nss, sel); err != nil {
		return err
	}
	return a.c.Wait(ctx)
}
func (applier) BenchNamespace() string { return benchNS }

// kernelProber walks each probe's packet through the fake kernel: the
// client node's FORWARD, then the server node's.
type kernelProber struct {
	k     *fakeKernel
	nodes map[netip.Addr]string
}

func (p kernelProber) Probe(_ context.Context, _ probe.Launcher, from lab.Pod, to netip.Addr, proto string, port int) (policy.Outcome, error) {
	src, dst := p.nodes[from.IP()], p.nodes[to]
	if src == dst {
		return "", fmt.Errorf("same-node probe %s → %s: not walked", from.IP(), to)
	}
	pkt := packet{src: from.IP(), dst: to, proto: proto, dport: port}
	for _, n := range []string{src, dst} {
		if v := p.k.forward(n, pkt); v != "ACCEPT" {
			return policy.Denied, nil
		}
	}
	return policy.Allowed, nil
}

// startModel starts a controller on a fake kernel with some policies
// already stored (so the first sync programs them all at once).
func startModel(t *testing.T, c Cluster, nps ...*networkingv1.NetworkPolicy) (*Controller, *fakeKernel) {
	t.Helper()
	k := &fakeKernel{}
	ctl := New(Config{Runner: k.Runner(), Nodes: testNodes, Cluster: c, Version: fixedVersion()})
	for _, np := range nps {
		if err := ctl.Apply(np); err != nil {
			t.Fatal(err)
		}
	}
	if err := ctl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Close(context.Background()) })
	return ctl, k
}

// TestMatrixOverModel runs the scenario's static and update cases against
// the model's generated rules and sets, each probe walked through the
// chains as the kernel would: every case passes, as the real kube-router
// passed them on kind.
func TestMatrixOverModel(t *testing.T) {
	ctl, k := startModel(t, testCluster(0))
	pods := map[string]*labfake.Pod{}
	for name, ip := range map[string]netip.Addr{policy.SrcPeer: clientIP, policy.SrcClient: peerIP, policy.SrcOther: otherIP, "server": serverIP} {
		pods[name] = &labfake.Pod{PodName: name, Addr: ip}
	}
	prober := kernelProber{k: k, nodes: map[netip.Addr]string{}}
	for _, n := range testNodes {
		for _, p := range testCluster(0).Pods {
			if p.Node == n.Name {
				prober.nodes[p.IP] = n.Netns
			}
		}
	}
	target := &policy.Target{Policy: applier{ctl}, Server: pods["server"],
		Sources: map[string]lab.Pod{policy.SrcPeer: pods[policy.SrcPeer], policy.SrcClient: pods[policy.SrcClient], policy.SrcOther: pods[policy.SrcOther]},
		Env:     policy.Env{ServerNS: benchNS, ClientIP: peerIP, ServerIP: serverIP}}
	var clock time.Time
	r := &policy.Runner{Settings: policy.Settings{ConvergeTimeout: 3 * time.Second, Poll: time.Second}, Prober: prober,
		Now: func() time.Time { return clock }, Sleep: func(d time.Duration) { clock = clock.Add(d) }}
	for _, c := range policy.Cases() {
		if c.Kind == "established" {
			continue // needs conntrack: the real-kernel test in pkg/lab/netns
		}
		t.Run(c.Name, func(t *testing.T) {
			cr, err := r.RunCase(context.Background(), target, c)
			if err != nil {
				t.Fatal(err)
			}
			if cr.Result.Verdict != policy.Pass {
				t.Errorf("%s (%s; %v)", cr.Result.Verdict, policy.Describe(cr.Obs), cr.Result.Mismatches)
			}
		})
	}
}

// TestCountsOfTheCostCurve programs the cost part's K policies and counts
// them as cnilab counts the real agent: at K=1000, with the server's node
// holding the server and two other pods (what the kind figures imply: 1007
// chains are 3 top-level, the default, 1000 policy chains and 3 pod
// chains), the model has exactly the real kube-router's 811 rules, 1007
// chains and 1251 ipsets; each pod fewer on the node is 16 rules and one
// chain fewer (the netns lab's server node holds the server alone).
func TestCountsOfTheCostCurve(t *testing.T) {
	for _, tc := range []struct {
		k, extra              int
		rules, chains, ipsets float64
	}{
		{0, 2, 3 + 3*7 + 3 + 3*9 + 1, 3 + 1 + 3, 0},
		{1000, 2, 811, 1007, 1251},
		{1000, 0, 811 - 2*16, 1005, 1251},
	} {
		t.Run(fmt.Sprintf("K=%d,pods=%d", tc.k, 1+tc.extra), func(t *testing.T) {
			ctl, _ := startModel(t, testCluster(tc.extra), policy.CostPolicies(benchNS, tc.k)...)
			if err := ctl.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			counts, _, err := ctl.Counts(context.Background(), "n2")
			if err != nil {
				t.Fatal(err)
			}
			if counts["iptables_rules"] != tc.rules || counts["iptables_chains"] != tc.chains || counts["ipsets"] != tc.ipsets {
				t.Errorf("counts %v, want %v rules, %v chains, %v ipsets", counts, tc.rules, tc.chains, tc.ipsets)
			}
		})
	}
}

// TestSyncsReplaceChainsAndCloseRemovesAll: a second sync writes fresh
// chains and deletes the first's in the same restore, destroys the sets no
// policy needs any more (after the rules that used them are gone), and
// Close leaves no chain, jump or set of the controller in any node.
func TestSyncsReplaceChainsAndCloseRemovesAll(t *testing.T) {
	ctl, k := startModel(t, testCluster(0))
	deny, _ := policy.CaseByName("allow-namespace-selector")
	nps := deny.Policies(policy.Env{ServerNS: benchNS})
	for _, np := range nps {
		if err := ctl.Apply(np); err != nil {
			t.Fatal(err)
		}
	}
	if err := ctl.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := k.node("/run/netns/n2").save()
	if err := ctl.Delete(nps[1].Namespace, nps[1].Name); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := k.node("/run/netns/n2").save()
	for _, l := range strings.Split(first, "\n") {
		if strings.HasPrefix(l, ":"+PodChainPrefix) && strings.Contains(second, l) {
			t.Errorf("chain %s of the first sync still there after the second", l)
		}
	}
	sets := k.node("/run/netns/n2").list(false)
	if n := strings.Count(sets, "\n"); n != 1 {
		t.Errorf("after deleting the allow, sets %q; want the deny's one", sets)
	}
	if err := ctl.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range testNodes {
		nd := k.node(n.Netns)
		if s := nd.save(); strings.Contains(s, "KUBE-") {
			t.Errorf("%s after Close:\n%s", n.Name, s)
		}
		if l := nd.list(false); l != "" {
			t.Errorf("%s sets after Close: %q", n.Name, l)
		}
	}
}

// TestGoldenProgram pins the text a sync sends for a small policy set
// (one of each rule shape: pods from a namespace selector on a port, an
// ipBlock with an except, an egress rule to pods): the iptables-restore
// and ipset restore payloads of the server's node. CNILAB_UPDATE_GOLDEN=1
// rewrites the files.
func TestGoldenProgram(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	p5201, p53 := intstr.FromInt32(5201), intstr.FromInt32(53)
	nps := []*networkingv1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: "deny"}, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: "allow-trusted"}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{lab.BenchRoleLabel: "server"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{policy.TenantLabel: "trusted"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p5201}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: "allow-block"}, Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.244.0.0/16", Except: []string{"10.244.0.3/32"}}}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: policy.ClientNamespace, Name: "egress-dns"}, Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{lab.BenchRoleLabel: "server"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53}}}}}},
	}
	for _, node := range []string{"n1", "n2"} {
		prog, err := Compile(testCluster(0), nps, node, "1764600000000000001")
		if err != nil {
			t.Fatal(err)
		}
		for kind, got := range map[string][]byte{"iptables": FilterRestore(prog, []string{"KUBE-POD-FW-OLDVERSIONCHAIN"}, true), "ipset": SetRestore(prog)} {
			path := filepath.Join("testdata", node+"-"+kind+".golden")
			if os.Getenv("CNILAB_UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from %s:\n%s", kind, path, got)
			}
		}
	}
}
