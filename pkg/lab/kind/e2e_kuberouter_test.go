package kind

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/scenario/throughput"
)

// reachOnce runs one short request/response exchange from client to an
// echo server in server and says whether any transaction got through.
func reachOnce(ctx context.Context, l probe.Launcher, client, server lab.Pod) (bool, error) {
	echo, err := server.Exec().Start(ctx, l.Cmd("echo", "-listen", fmt.Sprintf("0.0.0.0:%d", lab.ServicePort), "-duration", "10s"))
	if err != nil {
		return false, err
	}
	defer echo.Stop(time.Second)
	// Give the listener a moment: a refused connect would read as "blocked".
	time.Sleep(300 * time.Millisecond)
	target := netip.AddrPortFrom(server.IP(), lab.ServicePort).String()
	out, err := client.Exec().Run(ctx, l.Cmd("rr", "-target", target, "-count", "3", "-duration", "2s", "-timeout", "500ms"))
	if err != nil {
		return false, fmt.Errorf("%s → %s: %w", client.Name(), target, err)
	}
	res, err := probe.ParseConnectResult(out.Stdout)
	if err != nil {
		return false, err
	}
	return res.OK > 0, nil
}

// waitReach polls reachOnce until it says want, within timeout.
func waitReach(ctx context.Context, l probe.Launcher, client, server lab.Pod, want bool, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		ok, err := reachOnce(ctx, l, client, server)
		if err != nil {
			return time.Since(start), err
		}
		if ok == want {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("after %s %s → %s still reachable=%v, want %v", timeout, client.Name(), server.Name(), ok, want)
		}
		time.Sleep(time.Second)
	}
}

// TestKindKubeRouterEndToEnd brings up the kube-router lab on kind with
// the offline images: kube-bridge and podCIDR routes via node IPs on the
// nodes, kube-proxy iptables for Services, a cross-node pod exchange, dts
// and sts across nodes, and NetworkPolicy enforced by kube-router (a
// default-deny ingress blocks the cross-node probe; deleting it lets it
// through again). Then Down leaves nothing.
func TestKindKubeRouterEndToEnd(t *testing.T) {
	requireKind(t)
	e := upE2E(t, "kube-router", "kr", throughput.Workloads([]string{"dts", "sts"}, []string{throughput.CrossNode}))
	in, ctx := e.in, e.ctx

	if in.Provider != "kind" || in.Fidelity != results.Real {
		t.Errorf("provider %q fidelity %q", in.Provider, in.Fidelity)
	}
	t.Logf("datapath: %s; proxy: %s; pod MTU %d", in.Datapath, in.Proxy, in.PodMTU)
	if !strings.Contains(in.Datapath, "bridge kube-bridge") || !strings.Contains(in.Datapath, "podCIDR routes via node IPs, no overlay") || in.Encap != "" {
		t.Errorf("datapath %q encap %q", in.Datapath, in.Encap)
	}
	if in.Proxy != "kube-proxy iptables-nft" && in.Proxy != "kube-proxy iptables-legacy" {
		t.Errorf("proxy %q, want kube-proxy on iptables-nft or iptables-legacy (kube-router's IPVS proxy is off here)", in.Proxy)
	}
	notes := strings.Join(in.Notes, "\n")
	for _, want := range []string{"CVE-2026-32254", ":50051", "IP_VS"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q: %v", want, in.Notes)
		}
	}
	sw := in.Software
	t.Logf("software: %+v", sw)
	if sw.CNIVersion != "v2.1.0" || sw.ImageSource != "offline" || !strings.Contains(sw.CNIImage, "cnilab/kube-router:v2.1.0") {
		t.Errorf("software %+v", sw)
	}
	for _, n := range in.Nodes {
		res, err := n.Exec().Run(ctx, command.Cmd{Name: "ip", Args: []string{"-4", "route", "show"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s routes:\n%s", n.Name(), strings.TrimSpace(string(res.Stdout)))
	}

	client, server, err := in.Pair(lab.CrossNode)
	if err != nil {
		t.Fatal(err)
	}
	if client.NodeName() == server.NodeName() {
		t.Errorf("cross-node pair on one node %s", client.NodeName())
	}
	if _, err := waitReach(ctx, *in.Probe, client, server, true, 30*time.Second); err != nil {
		t.Fatalf("cross-node pod reach: %v", err)
	}

	tp := &throughput.Runner{Settings: throughput.Settings{Seconds: 2, Omit: 1, Streams: 8}}
	for _, id := range []string{"dts", "sts"} {
		m := tp.Measure(ctx, in, "throughput", id, throughput.CrossNode, 0)
		gbps := m.Metrics[results.ThroughputBps] / 1e9
		t.Logf("%s cross-node: %.2f Gbit/s, %v retransmits, pod MTU %v (%s)", id, gbps, m.Metrics[results.Retransmits], m.Metrics[results.PodMTU], m.Proxy)
		if m.Error != "" || gbps <= 0 {
			t.Errorf("%s: %.3f Gbit/s, error %q", id, gbps, m.Error)
		}
	}

	// NetworkPolicy: kube-router's firewall must enforce it.
	kubeconfig, _ := KubeconfigOf(in)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deny := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "cnl-default-deny-ingress", Namespace: BenchNamespace},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	if _, err := cs.NetworkingV1().NetworkPolicies(BenchNamespace).Create(ctx, deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	took, err := waitReach(ctx, *in.Probe, client, server, false, 60*time.Second)
	if err != nil {
		t.Errorf("default-deny ingress: %v", err)
	} else {
		t.Logf("default-deny ingress blocked the cross-node probe within %.1f s", took.Seconds())
	}
	if err := cs.NetworkingV1().NetworkPolicies(BenchNamespace).Delete(ctx, deny.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	took, err = waitReach(ctx, *in.Probe, client, server, true, 60*time.Second)
	if err != nil {
		t.Errorf("after deleting the policy: %v", err)
	} else {
		t.Logf("policy deleted: the cross-node probe passed again within %.1f s", took.Seconds())
	}

	e.down(t)
}
