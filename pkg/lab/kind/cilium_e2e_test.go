package kind

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/scenario/throughput"
)

// TestKindCiliumEndToEnd brings up the Cilium kube-proxy-free lab on kind
// with the offline images: every agent must report its kube-proxy
// replacement active and no kube-proxy may exist; a pod on one worker
// reaches a ClusterIP Service backed by a pod on the other; one dts and
// one sts window run; and the test finds out where the ClusterIP connect()
// is translated, from a pod and from a node.
func TestKindCiliumEndToEnd(t *testing.T) {
	requireKind(t)
	tests := []string{"dts", "sts"}
	e := upE2E(t, "cilium", "k", throughput.Workloads(tests, []string{throughput.CrossNode}))
	defer e.down(t)
	in, ctx, set := e.in, e.ctx, e.set
	for _, n := range in.Notes {
		t.Logf("note: %s", n)
	}
	t.Logf("datapath: %s; proxy: %s; software %+v", in.Datapath, in.Proxy, in.Software)

	if in.Provider != "kind" || in.Fidelity != results.Real {
		t.Errorf("provider %q fidelity %q", in.Provider, in.Fidelity)
	}
	if in.Proxy != "cilium ebpf (kube-proxy replacement)" {
		t.Errorf("proxy %q", in.Proxy)
	}
	if in.Encap != "vxlan" || !strings.Contains(in.Datapath, "cilium_vxlan") || !strings.Contains(in.Datapath, "KubeProxyReplacement True") {
		t.Errorf("encap %q datapath %q: want cilium_vxlan and the agents' KubeProxyReplacement True", in.Encap, in.Datapath)
	}
	if !strings.Contains(in.Software.CNIImage, images.CiliumImage) || in.Software.CNIVersion != "v1.20.2" {
		t.Errorf("software %+v", in.Software)
	}
	agentNotes := 0
	for _, n := range in.Notes {
		if strings.HasPrefix(n, "cilium agent ") && strings.Contains(n, "KubeProxyReplacement True") {
			agentNotes++
		}
	}
	if agentNotes != 3 {
		t.Errorf("%d agent notes with KubeProxyReplacement True, want one per node (3)", agentNotes)
	}

	kubeconfig, _ := KubeconfigOf(in)
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	// No kube-proxy anywhere, and none of its rules on any node.
	if err := NoKubeProxy(ctx, cs); err != nil {
		t.Error(err)
	}
	for _, n := range in.Nodes {
		res, err := n.Exec().Run(ctx, command.Cmd{Name: "sh", Args: []string{"-c", "iptables-save | grep -c -e '^:KUBE-SVC' -e '^:KUBE-SERVICES' || true"}})
		if err != nil || strings.TrimSpace(string(res.Stdout)) != "0" {
			t.Errorf("node %s: kube-proxy chains in iptables-save: %q %v", n.Name(), res.Stdout, err)
		}
	}

	client, server, err := in.Pair(lab.CrossNode)
	if err != nil {
		t.Fatal(err)
	}
	if client.NodeName() == server.NodeName() {
		t.Fatalf("cross-node pair on one node %s", client.NodeName())
	}
	frontend, err := in.Service(server, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	backend := netip.AddrPortFrom(server.IP(), lab.ServicePort)
	// The agent on the client's node serves the ClusterIP from its eBPF
	// load-balancer map, with the server pod as backend.
	agents, err := AgentsReady(ctx, cs, podAgentExec(restCfg, cs), "kube-system", set.Labs["cilium"].Kind.CNI.ReadyExec)
	if err != nil {
		t.Fatal(err)
	}
	var clientAgent string
	for _, a := range agents {
		if a.Node == client.NodeName() {
			clientAgent = a.Pod
		}
	}
	run := podAgentExec(restCfg, cs)
	out, _, err := run(ctx, "kube-system", clientAgent, "cilium-agent", []string{"cilium-dbg", "service", "list"})
	if err != nil || !strings.Contains(string(out), frontend.String()) || !strings.Contains(string(out), backend.String()) {
		t.Errorf("cilium-dbg service list on %s lacks %s → %s: %v\n%s", client.NodeName(), frontend, backend, err, out)
	}
	verbose, _, err := run(ctx, "kube-system", clientAgent, "cilium-agent", []string{"cilium-dbg", "status", "--verbose"})
	if err != nil {
		t.Errorf("cilium-dbg status --verbose: %v", err)
	}
	t.Logf("agent %s status --verbose, kube-proxy replacement part:\n%s", clientAgent, kprSection(string(verbose)))

	// Where is the ClusterIP translated? A pod's socket and a node's socket
	// (the node's network namespace is the agent's host namespace).
	// A plain listener (busybox nc accepts one connection per run); its
	// stdin is held open, or nc would close each connection at once.
	// Nothing may hold the port before the listener starts either: a
	// readiness probe's echo server (30 s) could, and nc would then fail to
	// bind while the pod's connect reached the echo instead.
	portFree := func(t *testing.T, when string, kill bool) {
		t.Helper()
		script := fmt.Sprintf("sleep 1; ! ss -tlnH | busybox grep -q ':%d '", lab.ServicePort)
		if kill {
			// The bench image's busybox has no pkill: ps and kill, by
			// command line. The bracketed letters keep the patterns from
			// matching this shell's own command line (and its subshells').
			script = `busybox ps -o pid,args | while read -r pid args; do case "$args" in *"busybox "[n]"c -l -p"*|*"while tru"[e]"; do sleep"*) kill "$pid";; esac; done; ` + script
		}
		for range 30 {
			if _, err := server.Exec().Run(ctx, command.Cmd{Name: "sh", Args: []string{"-c", script}}); err == nil {
				return
			}
		}
		res, err := server.Exec().Run(ctx, command.Cmd{Name: "sh", Args: []string{"-c", "ss -tlnp; busybox ps -o pid,ppid,args"}})
		t.Fatalf("port %d in the server pod is still held %s:\n%s%v", lab.ServicePort, when, res.Stdout, err)
	}
	portFree(t, "before the listener starts", false)
	listener, err := server.Exec().Start(ctx, command.Cmd{Name: "sh", Args: []string{"-c",
		fmt.Sprintf("while true; do sleep 5 | busybox nc -l -p %d >/dev/null; done", lab.ServicePort)}})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Stop(time.Second)
	classify := func(where string, r command.Runner, shell, script string) ServiceTranslation {
		t.Helper()
		// The listener takes one connection at a time (about 5 s each):
		// a refused connect is retried.
		var last error
		for range 10 {
			res, err := r.Run(ctx, command.Cmd{Name: shell, Args: []string{"-c", script}})
			if err == nil {
				var tr ServiceTranslation
				if tr, err = ClassifyTranslation(string(res.Stdout), frontend, backend); err == nil {
					return tr
				}
			}
			last = err
			time.Sleep(2 * time.Second)
		}
		// ss sometimes sees no socket in time (the one-at-a-time
		// listener, a short-lived nc): that is a failure to observe, not
		// a wrong translation, so it is logged and the check below only
		// judges what was observed.
		t.Logf("%s: translation point not observed: %v", where, last)
		return ""
	}
	var clientNode lab.Node
	for _, n := range in.Nodes {
		if n.Name() == client.NodeName() {
			clientNode = n
		}
	}
	fromPod := classify("pod "+client.Name(), client.Exec(), "sh", fmt.Sprintf("(sleep 3 | busybox nc %s %d >/dev/null 2>&1 &) ; sleep 1; ss -tnH", frontend.Addr(), frontend.Port()))
	// bash holds the socket itself; the node image has no nc.
	fromNode := classify("node "+clientNode.Name(), clientNode.Exec(), "bash", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && ss -tnH", frontend.Addr(), frontend.Port()))
	t.Logf("ClusterIP %s → %s: from pod %s: %s; from node %s: %s", frontend, backend, client.Name(), fromPod, clientNode.Name(), fromNode)
	// The recipe limits socket LB to the nodes' namespaces (cgroup v1
	// host): pods are served per packet, nodes at connect().
	if (fromPod != "" && fromPod != PerPacket) || (fromNode != "" && fromNode != SocketLevel) {
		t.Errorf("from pod %s, from node %s: want per-packet in pods and socket-level on nodes (socketLB.hostNamespaceOnly)", fromPod, fromNode)
	}
	if _, err := listener.Stop(time.Second); err != nil {
		t.Logf("stop the listener: %v", err)
	}
	// Stopping the loop's shell can leave its nc holding port 5201 (or,
	// when the stop's own exec fails, the loop itself starting a new nc),
	// and iperf3's client would then talk to nc: end both, and go on only
	// once nothing listens on the port.
	portFree(t, "after the listener's stop", true)

	tp := &throughput.Runner{Settings: throughput.Settings{Seconds: 2, Omit: 1, Streams: 8}}
	for _, id := range tests {
		m := tp.Measure(ctx, in, "throughput", id, throughput.CrossNode, 0)
		if m.Error != "" {
			// Exec streams through the API server can drop on a loaded
			// machine (websocket 1006, iperf3's control socket closed):
			// one more window, and a second failure fails the test.
			t.Logf("%s: first window failed (%s); measuring once more", id, m.Error)
			m = tp.Measure(ctx, in, "throughput", id, throughput.CrossNode, 1)
		}
		gbps := m.Metrics[results.ThroughputBps] / 1e9
		t.Logf("%s cross-node: %.2f Gbit/s, %v retransmits, pod MTU %v (%s)", id, gbps, m.Metrics[results.Retransmits], m.Metrics[results.PodMTU], m.Proxy)
		if m.Error != "" || gbps <= 0 {
			t.Errorf("%s: %.3f Gbit/s, error %q", id, gbps, m.Error)
		}
	}
}

// kprSection is the part of `cilium-dbg status --verbose` about the
// kube-proxy replacement (from its heading to the next unindented line).
func kprSection(verbose string) string {
	var out []string
	in := false
	for _, l := range strings.Split(verbose, "\n") {
		switch {
		case strings.HasPrefix(l, "KubeProxyReplacement"):
			in = true
		case in && l != "" && l[0] != ' ' && l[0] != '\t':
			in = false
		}
		if in {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
