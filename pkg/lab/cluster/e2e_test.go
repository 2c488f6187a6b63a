package cluster

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/internal/kindtest"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/kind"
	"github.com/cnilab/cnilab/pkg/lab/kube"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/scenario/latency"
	"github.com/cnilab/cnilab/pkg/scenario/throughput"
)

// requireKind skips (or, under CI=true, fails) when this machine cannot
// run a kind cluster.
func requireKind(t *testing.T) { kindtest.Require(t, "the existing-cluster end-to-end test") }

// TestExistingFlannelCluster makes a flannel cluster with the kind
// provider's library, as a user's cluster made some other way, and hands
// the cluster provider nothing but its kubeconfig: the CNI is detected,
// dts/sts/drr run in cnilab's own namespace next to the host-network
// baseline, and cleanup leaves nothing labelled behind while the user's
// own objects stay.
func TestExistingFlannelCluster(t *testing.T) {
	requireKind(t)
	set := loadSet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	t.Cleanup(stop)

	// The user's cluster (with some workloads of the user's own: the kind
	// lab's bench pods in namespace cnilab).
	kp := kind.New(kind.ImagesFrom(images.Offline()), command.Exec{}, nil)
	kp.Log = t.Logf
	userRun := "u" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	userLab, err := kp.Up(ctx, lab.Spec{Def: set.Labs["flannel"], RunID: userRun, Dir: t.TempDir(),
		Workloads: lab.Workloads{Placements: []lab.Placement{lab.CrossNode}}})
	if err != nil {
		t.Fatalf("the user's cluster: %v", err)
	}
	t.Cleanup(func() { _ = kp.Down(context.Background(), userLab) })
	kubeconfig, _ := kind.KubeconfigOf(userLab)

	p, err := New(kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	p.BenchImage, p.Log = kp.Images.Bench, t.Logf
	pre, err := p.Preflight(ctx, []*config.Lab{set.Labs["host"], set.Labs["flannel"]})
	if err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	d := pre.Detection
	t.Logf("detected %s %s mode %s proxy %s: %v; nodes %s → %s (%s)", d.CNI, d.Version, d.Mode, d.Proxy, d.How, pre.Client.Name, pre.Server.Name, pre.NodesHow)
	if d.CNI != "flannel" || d.Version != "v0.28.10" || d.Mode != "vxlan" || d.Encap != "vxlan" || d.Proxy != "kube-proxy iptables" {
		t.Errorf("detected %+v", d.Detected)
	}
	if strings.HasSuffix(pre.Client.Name, "control-plane") || strings.HasSuffix(pre.Server.Name, "control-plane") || pre.Client.Name == pre.Server.Name {
		t.Errorf("bench nodes %s, %s: want two workers", pre.Client.Name, pre.Server.Name)
	}
	if !strings.Contains(pre.NoMetrics, "no metrics API") {
		t.Errorf("kind runs no metrics-server, yet the footprint state is %q", pre.NoMetrics)
	}
	if err := d.Check(set.Labs["cilium"]); err == nil {
		t.Error("a cilium lab was accepted on a flannel cluster")
	}

	tests := []string{"dts", "sts", "drr"}
	w := throughput.Workloads(tests, []string{throughput.CrossNode}).Merge(latency.Workloads(tests, []string{throughput.CrossNode}))
	run := "t" + userRun[1:]
	var ups []*lab.Instance
	downAll := func() {
		for _, in := range ups {
			if err := p.Down(context.Background(), in); err != nil {
				t.Errorf("Down %s: %v", in.Name, err)
			}
		}
		ups = nil
	}
	t.Cleanup(downAll)
	for _, name := range []string{"host", "flannel"} {
		in, err := p.Up(ctx, lab.Spec{Def: set.Labs[name], RunID: run, Workloads: w, Dir: t.TempDir()})
		if err != nil {
			t.Fatalf("Up %s: %v", name, err)
		}
		ups = append(ups, in)
	}
	host, fl := ups[0], ups[1]
	if fl.Detected == nil || fl.Detected.CNI != "flannel" || fl.PodMTU != 1450 || fl.Proxy != "kube-proxy iptables" || !strings.Contains(fl.NoFootprint, "no metrics API") {
		t.Errorf("flannel lab: detected %+v, pod MTU %d, proxy %q, no footprint %q", fl.Detected, fl.PodMTU, fl.Proxy, fl.NoFootprint)
	}
	if c, _, _ := host.Pair(lab.CrossNode); c == nil || c.IP().String() != nodeIP(pre.Client) {
		t.Errorf("host baseline client %v is not on its node's address %s", c, nodeIP(pre.Client))
	}

	tp := &throughput.Runner{Settings: throughput.Settings{Seconds: 2, Omit: 1, Streams: 8}}
	for _, in := range ups {
		for _, id := range []string{"dts", "sts"} {
			if id == "sts" && in.Proxy == "" {
				continue
			}
			m := tp.Measure(ctx, in, "throughput", id, throughput.CrossNode, 0)
			gbps := m.Metrics[results.ThroughputBps] / 1e9
			t.Logf("%s %s cross-node: %.2f Gbit/s, %v retransmits (%s)", in.Name, id, gbps, m.Metrics[results.Retransmits], m.Provider)
			if m.Error != "" || gbps <= 0 || m.Provider != "cluster" {
				t.Errorf("%s %s: %.3f Gbit/s, provider %q, error %q", in.Name, id, gbps, m.Provider, m.Error)
			}
		}
	}
	lt := &latency.Runner{Settings: latency.Settings{Transactions: 2000, Window: 2 * time.Second}}
	if m := lt.Measure(ctx, fl, "latency", "drr", throughput.CrossNode, 0); m.Error != "" || m.Metrics[results.LatencyP50] <= 0 {
		t.Errorf("drr: %v, error %q", m.Metrics, m.Error)
	} else {
		t.Logf("drr cross-node: p50 %.1f µs p99 %.1f µs", m.Metrics[results.LatencyP50], m.Metrics[results.LatencyP99])
	}

	downAll()
	sel := metav1.ListOptions{LabelSelector: kube.RunLabel + "=" + run}
	cs := p.cs
	if nss, err := cs.CoreV1().Namespaces().List(ctx, sel); err != nil || len(nss.Items) > 0 {
		t.Errorf("namespaces labelled with the run after Down: %d, %v", len(nss.Items), err)
	}
	if pods, err := cs.CoreV1().Pods("").List(ctx, sel); err != nil || len(pods.Items) > 0 {
		t.Errorf("pods labelled with the run after Down: %d, %v", len(pods.Items), err)
	}
	if svcs, err := cs.CoreV1().Services("").List(ctx, sel); err != nil || len(svcs.Items) > 0 {
		t.Errorf("services labelled with the run after Down: %d, %v", len(svcs.Items), err)
	}
	// The user's own workloads are untouched.
	if pods, err := cs.CoreV1().Pods(kind.BenchNamespace).List(ctx, metav1.ListOptions{}); err != nil || len(pods.Items) != 2 {
		t.Errorf("the user's pods in %s: %d, %v", kind.BenchNamespace, len(pods.Items), err)
	}
	if removed, err := p.DownAll(ctx); err != nil || len(removed) > 0 {
		t.Errorf("DownAll after Down removed %v, %v", removed, err)
	}
}

func nodeIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}
