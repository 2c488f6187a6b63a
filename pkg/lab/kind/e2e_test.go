package kind

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/internal/kindtest"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/scenario/latency"
	"github.com/cnilab/cnilab/pkg/scenario/throughput"
	"github.com/cnilab/cnilab/scenarios"
)

// requireKind skips (or, under CI=true, fails) when this machine cannot
// run a kind cluster.
func requireKind(t *testing.T) { kindtest.Require(t, "the kind end-to-end test") }

// leftovers lists what is left of cluster: the kind cluster and its node
// containers.
func leftovers(t *testing.T, p *Provider, cluster string) []string {
	t.Helper()
	var left []string
	names, err := p.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == cluster {
			left = append(left, "kind cluster "+n)
		}
	}
	res, err := (command.Exec{}).Run(context.Background(), command.Cmd{Name: "docker", Args: []string{"ps", "-a", "--format", "{{.Names}}",
		"--filter", "label=io.x-k8s.kind.cluster=" + cluster}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range strings.Fields(string(res.Stdout)) {
		left = append(left, "container "+c)
	}
	return left
}

// e2eLab is a kind lab an end-to-end test brought up, and what the test
// checks around it.
type e2eLab struct {
	p       *Provider
	in      *lab.Instance
	set     *config.Set
	ctx     context.Context
	runID   string
	cluster string
	// home is HOME, and KUBECONFIG points into it: kind must write neither.
	home   string
	runDir string
	downed bool
}

// upE2E brings up the lab name (cluster named from runPrefix and the time)
// with workloads w and the offline images, and fails the test, after
// checking a failed Up left nothing, if it does not come up. SIGINT and
// SIGTERM cancel the lab's context; a cleanup downs the lab unless the
// test called down.
func upE2E(t *testing.T, name, runPrefix string, w lab.Workloads) *e2eLab {
	t.Helper()
	e := &e2eLab{set: loadLabs(t), home: t.TempDir(), runDir: t.TempDir()}
	t.Setenv("HOME", e.home)
	t.Setenv("KUBECONFIG", filepath.Join(e.home, "env-kubeconfig"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	// A signal during the test cancels ctx: Up then deletes what it made.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	t.Cleanup(stop)
	e.ctx = ctx

	e.p = New(ImagesFrom(images.Offline()), command.Exec{}, nil)
	e.p.Log = t.Logf
	e.runID = runPrefix + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	var err error
	if e.cluster, err = ClusterName(e.runID, name); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.in, err = e.p.Up(ctx, lab.Spec{Def: e.set.Labs[name], RunID: e.runID, Workloads: w, Dir: e.runDir})
	upTook := time.Since(start)
	if err != nil {
		if left := leftovers(t, e.p, e.cluster); len(left) > 0 {
			t.Errorf("a failed Up left %v", left)
		}
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() {
		if !e.downed {
			_ = e.p.Down(context.Background(), e.in)
		}
	})
	tm, _ := TimingsOf(e.in)
	t.Logf("lab up in %.1f s: kind create %.1f s, image load %.1f s, CNI ready %.1f s after install, workloads %.1f s",
		upTook.Seconds(), tm.Create.Seconds(), tm.LoadImages.Seconds(), tm.CNIReady.Seconds(), tm.Workloads.Seconds())
	return e
}

// down removes the lab and fails the test if Down errs or leaves anything.
func (e *e2eLab) down(t *testing.T) {
	t.Helper()
	start := time.Now()
	e.downed = true
	if err := e.p.Down(context.Background(), e.in); err != nil {
		t.Errorf("Down: %v", err)
	}
	t.Logf("down in %.1f s", time.Since(start).Seconds())
	if left := leftovers(t, e.p, e.cluster); len(left) > 0 {
		t.Errorf("Down left %v", left)
	}
}

// TestKindFlannelEndToEnd brings up the flannel lab on kind with the
// offline images, checks what the real CNI built, runs dts, sts and drr
// across nodes through the same scenarios as netns, and tears it down.
func TestKindFlannelEndToEnd(t *testing.T) {
	requireKind(t)
	tests := []string{"dts", "sts", "sus", "drr"}
	w := throughput.Workloads(tests, []string{throughput.CrossNode}).Merge(latency.Workloads(tests, []string{throughput.CrossNode}))
	e := upE2E(t, "flannel", "", w)
	p, in, ctx, home, runDir := e.p, e.in, e.ctx, e.home, e.runDir

	if in.Provider != "kind" || in.Fidelity != results.Real || in.NoFootprint != "" {
		t.Errorf("provider %q fidelity %q no_footprint %q", in.Provider, in.Fidelity, in.NoFootprint)
	}
	if in.Encap != "vxlan" || !strings.Contains(in.Datapath, "flannel.1, vxlan VNI 1, UDP 8472") {
		t.Errorf("encap %q datapath %q: want flannel.1 VXLAN VNI 1 on UDP 8472", in.Encap, in.Datapath)
	}
	if in.PodMTU != 1450 {
		t.Errorf("pod MTU %d, want 1450 (1500 underlay - 50 VXLAN)", in.PodMTU)
	}
	// The backend kube-proxy drives, as services-scale figures name it.
	if in.Proxy != "kube-proxy iptables-nft" && in.Proxy != "kube-proxy iptables-legacy" {
		t.Errorf("proxy %q, want kube-proxy iptables-nft or kube-proxy iptables-legacy", in.Proxy)
	}
	for _, n := range in.Notes {
		if strings.HasPrefix(n, "service proxy: ") {
			t.Logf("proxy %s; %s", in.Proxy, n)
		}
	}
	sw := in.Software
	if sw.Kubernetes != "v1.34.4" || sw.CNIVersion != "v0.28.10" || sw.ImageSource != "offline" ||
		!strings.Contains(sw.NodeImage, "sha256:") || !strings.Contains(sw.CNIImage, "cnilab/flannel:v0.28.10") {
		t.Errorf("software %+v", sw)
	}
	t.Logf("software: %+v", sw)
	if len(in.Nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(in.Nodes))
	}
	for _, n := range in.Nodes {
		res, err := n.Exec().Run(ctx, command.Cmd{Name: "ip", Args: []string{"-d", "link", "show", "flannel.1"}})
		if err != nil || !strings.Contains(string(res.Stdout), "vxlan id 1") || !strings.Contains(string(res.Stdout), "dstport 8472") {
			t.Errorf("node %s flannel.1: %s %v", n.Name(), res.Stdout, err)
		}
	}
	client, server, err := in.Pair(lab.CrossNode)
	if err != nil {
		t.Fatal(err)
	}
	if client.NodeName() == server.NodeName() || strings.HasSuffix(client.NodeName(), "control-plane") || strings.HasSuffix(server.NodeName(), "control-plane") {
		t.Errorf("cross-node pair on %s and %s: want two different workers", client.NodeName(), server.NodeName())
	}

	// Pinned as compare pins by default: iperf3 -A inside the pods, on
	// CPUs their containers' cpusets allow.
	tp := &throughput.Runner{Settings: throughput.Settings{Seconds: 2, Omit: 1, Streams: 8, PinCPUs: true}}
	// sus: a UDP test through the Service controls over TCP to the same
	// ClusterIP, so the Service must carry both ports.
	for _, id := range []string{"dts", "sts", "sus"} {
		m := tp.Measure(ctx, in, "throughput", id, throughput.CrossNode, 0)
		gbps := m.Metrics[results.ThroughputBps] / 1e9
		t.Logf("%s cross-node: %.2f Gbit/s, %v retransmits, pod MTU %v (%s), %s, CPUs %+v", id, gbps, m.Metrics[results.Retransmits], m.Metrics[results.PodMTU], m.Proxy, m.Pinning, m.CPUs)
		if m.Error != "" || gbps <= 0 {
			t.Errorf("%s: %.3f Gbit/s, error %q", id, gbps, m.Error)
		}
		if runtime.NumCPU() > 1 && !strings.HasPrefix(m.Pinning, "client cpu") || len(m.CPUs) != runtime.NumCPU() {
			t.Errorf("%s: pinning %q with %d CPUs recorded, want client and server pinned and every CPU's share", id, m.Pinning, len(m.CPUs))
		}
	}
	// The idle window reads flannel's own pods (one agent per node) and
	// kube-proxy beside them from the nodes' kubepods cgroups.
	idle := tp.Measure(ctx, in, "throughput", "idle", throughput.CrossNode, 0)
	t.Logf("idle footprint: %v", idle.Metrics)
	if idle.Error != "" || idle.Metrics[results.AgentMemBytes] < 3<<20 || idle.Metrics[results.NodeMemBytes] <= idle.Metrics[results.AgentMemBytes] ||
		idle.Metrics[results.ComponentMetric(results.PodsMemBytes, "kube-proxy")] <= 0 {
		t.Errorf("idle footprint: error %q, metrics %v", idle.Error, idle.Metrics)
	}
	if in.UpSteps == nil || in.UpSteps.CreateSeconds <= 0 || in.UpSteps.CNIReadySeconds <= 0 {
		t.Errorf("up steps %+v", in.UpSteps)
	}
	lt := &latency.Runner{Settings: latency.Settings{Transactions: 2000, Window: 2 * time.Second}}
	m := lt.Measure(ctx, in, "latency", "drr", throughput.CrossNode, 0)
	t.Logf("drr cross-node: %v", m.Metrics)
	if m.Error != "" || len(m.Metrics) == 0 {
		t.Errorf("drr: metrics %v, error %q", m.Metrics, m.Error)
	}

	// The kind host baseline rides in this cluster: hostNetwork pods on
	// the same two workers, addressed by the workers' own IPs, with the
	// underlay's MTU, measured by the same scenario code.
	hostIn, err := p.HostBaseline(ctx, lab.Spec{Def: e.set.Labs["host"], RunID: e.runID, Workloads: w, Dir: runDir}, []*lab.Instance{in})
	if err != nil {
		t.Fatalf("host baseline: %v", err)
	}
	hc, hs, err := hostIn.Pair(lab.CrossNode)
	if err != nil {
		t.Fatal(err)
	}
	nodeIP := map[string]string{}
	for _, n := range in.Nodes {
		nodeIP[n.Name()] = n.IP().String()
	}
	if hc.NodeName() != client.NodeName() || hs.NodeName() != server.NodeName() || hc.IP().String() != nodeIP[hc.NodeName()] || hs.IP().String() != nodeIP[hs.NodeName()] {
		t.Errorf("host pair %s (%s) → %s (%s): want the CNI pair's workers %s → %s, on their own addresses", hc.IP(), hc.NodeName(), hs.IP(), hs.NodeName(), client.NodeName(), server.NodeName())
	}
	if hostIn.PodMTU != 1500 || hostIn.Proxy != "" || hostIn.Provider != "kind" {
		t.Errorf("host baseline MTU %d proxy %q provider %q, want 1500, none, kind", hostIn.PodMTU, hostIn.Proxy, hostIn.Provider)
	}
	hm := tp.Measure(ctx, hostIn, "throughput", "dts", throughput.CrossNode, 0)
	t.Logf("host dts cross-node: %.2f Gbit/s", hm.Metrics[results.ThroughputBps]/1e9)
	if hm.Error != "" || hm.Metrics[results.ThroughputBps] <= 0 {
		t.Errorf("host dts: %v, error %q", hm.Metrics, hm.Error)
	}
	// Its Down leaves the cluster to the flannel lab's.
	if err := p.Down(context.Background(), hostIn); err != nil || len(leftovers(t, p, e.cluster)) == 0 {
		t.Errorf("host baseline Down: %v (cluster must stay for the flannel lab)", err)
	}

	kubeconfig, _ := KubeconfigOf(in)
	if _, err := os.Stat(kubeconfig); err != nil || filepath.Dir(kubeconfig) != runDir {
		t.Errorf("kubeconfig %s (run dir %s): %v", kubeconfig, runDir, err)
	}
	e.down(t)
	for _, f := range []string{filepath.Join(home, ".kube", "config"), os.Getenv("KUBECONFIG")} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("kind wrote %s outside the run directory", f)
		}
	}
	// DownAll, narrowed to this run, finds nothing left and stays
	// idempotent.
	p.Prefix = NamePrefix + e.runID + "-"
	for range 2 {
		if removed, err := p.DownAll(context.Background()); err != nil || len(removed) > 0 {
			t.Errorf("DownAll after Down removed %v, %v", removed, err)
		}
	}
	// Down again must be harmless (a signal handler and a defer may both
	// run it).
	if err := p.Down(context.Background(), in); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

// TestKindUpCancelled cancels Up while kind is creating the cluster (as
// SIGINT does through the caller's context): nothing may be left, and
// DownAll, narrowed to the run, then finds nothing, twice.
func TestKindUpCancelled(t *testing.T) {
	requireKind(t)
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", t.TempDir())
	runDir := t.TempDir()
	p := New(ImagesFrom(images.Offline()), command.Exec{}, nil)
	runID := "c" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	p.Prefix = NamePrefix + runID + "-"
	cluster, _ := ClusterName(runID, "flannel")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(12*time.Second, cancel)
	start := time.Now()
	in, err := p.Up(ctx, lab.Spec{Def: set.Labs["flannel"], RunID: runID, Workloads: throughput.Workloads([]string{"dts"}, []string{throughput.CrossNode}), Dir: runDir})
	t.Logf("cancelled Up returned after %.1f s: %v", time.Since(start).Seconds(), err)
	if err == nil {
		_ = p.Down(context.Background(), in)
		t.Fatal("Up finished within 12 s; nothing was cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Up error %v, want context.Canceled", err)
	}
	if left := leftovers(t, p, cluster); len(left) > 0 {
		t.Errorf("cancelled Up left %v", left)
	}
	if files, _ := filepath.Glob(filepath.Join(runDir, "*")); len(files) > 0 {
		t.Errorf("cancelled Up left files in the run dir: %v", files)
	}
	for range 2 {
		if removed, err := p.DownAll(context.Background()); err != nil || len(removed) > 0 {
			t.Errorf("DownAll removed %v, %v", removed, err)
		}
	}
}
