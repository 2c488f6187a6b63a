package kind

import (
	"context"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab"
)

// The testdata files were captured on this machine from a running flannel
// lab (cnl-1b16a2-flannel, kind v1.34.4 node image, cgroup v1, systemd
// cgroup driver): flannel-pod/ holds one kube-flannel-ds pod's cgroup
// files as cat printed them; cgroupv1-<node>-read<n>.txt is
// cgroupDumpScript's output on each node, read 1 and read 2 five seconds
// apart.

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestCgroupFiles(t *testing.T) {
	cpu, err := parseCounter(readTestdata(t, "flannel-pod/cpuacct.usage"))
	if err != nil || cpu != 1281805114 {
		t.Errorf("cpuacct.usage: %v, %v", cpu, err)
	}
	usage, err := parseCounter(readTestdata(t, "flannel-pod/memory.usage_in_bytes"))
	if err != nil || usage != 15155200 {
		t.Errorf("memory.usage_in_bytes: %v, %v", usage, err)
	}
	stat, err := parseKeyValues(readTestdata(t, "flannel-pod/memory.stat"))
	if err != nil {
		t.Fatal(err)
	}
	// A pod-level cgroup holds no process itself: its own counters are 0
	// and the hierarchical total_ ones are the pod's.
	if stat["inactive_file"] != 0 || stat["total_inactive_file"] != 2322432 || stat["total_rss"] != 10420224 {
		t.Errorf("memory.stat: inactive_file %v total_inactive_file %v total_rss %v", stat["inactive_file"], stat["total_inactive_file"], stat["total_rss"])
	}
	if ws := workingSet(usage, stat["total_inactive_file"]); ws != 15155200-2322432 {
		t.Errorf("working set %v", ws)
	}
	for _, bad := range []string{"", "12 34", "-5", "x"} {
		if _, err := parseCounter(bad); err == nil {
			t.Errorf("counter %q accepted", bad)
		}
	}
	if _, err := parseKeyValues("cache 0\nrss\n"); err == nil {
		t.Error("memory.stat line without a value accepted")
	}
}

func TestPodUIDOf(t *testing.T) {
	cases := map[string]string{
		"kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod2ba8b6d3_8e18_4332_8766_3be78097ec26.slice": "2ba8b6d3-8e18-4332-8766-3be78097ec26",
		"kubepods/besteffort/podff2c33db-3d5a-4b1d-a7cb-7346f778478e":                                                                                    "ff2c33db-3d5a-4b1d-a7cb-7346f778478e",
		"kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod0cd0130e91086af52ac828855f8043f1.slice":     "0cd0130e91086af52ac828855f8043f1",
		"kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice":                                                                          "",
		"kubelet.slice/kubelet-kubepods.slice": "",
	}
	for dir, want := range cases {
		if got := podUIDOf(dir); got != want {
			t.Errorf("%s: %q, want %q", dir, got, want)
		}
	}
}

func TestParseNodeCgroups(t *testing.T) {
	cases := []struct {
		file         string
		pods         int
		nodeCPU      float64
		nodeWS       float64
		uid          string
		podCPU, podW float64
	}{
		{"cgroupv1-worker-read1.txt", 3, 28.476999239, 813555712 - 644481024, "2ba8b6d3-8e18-4332-8766-3be78097ec26", 1.237118287, 15138816 - 2322432},
		{"cgroupv1-worker2-read2.txt", 5, 27.826208573, 922787840 - 701722624, "36bccc57-19eb-4c92-9c93-4559210998cd", 0.443373606, 15106048 - 4096},
		{"cgroupv1-control-plane-read1.txt", 6, 44.75284494, 1499353088 - 971169792, "de84a29a-40ad-49d7-9dee-eb068af31054", 1.233890997, 14557184 - 2682880},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			nc, err := parseNodeCgroups(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(nc.Pods) != tc.pods || len(nc.Incomplete) != 0 {
				t.Errorf("%d pods (%d incomplete), want %d", len(nc.Pods), len(nc.Incomplete), tc.pods)
			}
			if !near(nc.Node.CPUSeconds, tc.nodeCPU) || nc.Node.WorkingSetBytes != tc.nodeWS {
				t.Errorf("node %+v, want %v s and %v bytes", nc.Node, tc.nodeCPU, tc.nodeWS)
			}
			p, ok := nc.Pods[tc.uid]
			if !ok || !near(p.CPUSeconds, tc.podCPU) || p.WorkingSetBytes != tc.podW {
				t.Errorf("pod %s: %+v %v, want %v s and %v bytes", tc.uid, p, ok, tc.podCPU, tc.podW)
			}
		})
	}
	// A pod that vanished between find and head: half its figures.
	dump := readTestdata(t, "cgroupv1-worker-read1.txt")
	cut := strings.Index(dump, "==> memory/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod2ba8b6d3")
	end := strings.Index(dump[cut+10:], "==> ")
	half := dump[:cut] + dump[cut+10+end:]
	half = strings.Replace(half, "==> memory/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod2ba8b6d3_8e18_4332_8766_3be78097ec26.slice/memory.stat <==", "==> memory/gone/memory.stat <==", 1)
	nc, err := parseNodeCgroups(half)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := nc.Pods["2ba8b6d3-8e18-4332-8766-3be78097ec26"]; ok || nc.Incomplete["2ba8b6d3-8e18-4332-8766-3be78097ec26"] == "" {
		t.Errorf("pod with CPU and no memory: pods %v incomplete %v", nc.Pods, nc.Incomplete)
	}
	for name, bad := range map[string]string{
		"empty":          "",
		"no node figure": "==> cpuacct/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-podff2c33db_3d5a_4b1d_a7cb_7346f778478e.slice/cpuacct.usage <==\n431130585\n",
		"garbage":        "permission denied\n",
		"bad counter":    strings.Replace(dump, "28476999239", "28476999239x", 1),
	} {
		if _, err := parseNodeCgroups(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// dumpNode is a lab.Node whose shell prints a captured cgroup dump: the
// one of the current read.
type dumpNode struct {
	name string
	read *int
	t    *testing.T
}

func (n dumpNode) Name() string   { return n.name }
func (n dumpNode) IP() netip.Addr { return netip.Addr{} }
func (n dumpNode) Role() lab.Role { return lab.RoleWorker }
func (n dumpNode) Exec() command.Runner {
	return &command.Fake{Responses: map[string]command.FakeResponse{"sh": {Func: func(c command.Cmd) (command.Result, error) {
		if len(c.Args) != 2 || c.Args[1] != cgroupDumpScript {
			n.t.Errorf("node %s ran %v", n.name, c)
		}
		short := strings.TrimPrefix(n.name, "cnl-1b16a2-flannel-")
		return command.Result{Stdout: []byte(readTestdata(n.t, "cgroupv1-"+short+"-read"+string(rune('0'+*n.read))+".txt"))}, nil
	}}}}
}

// capturedCluster is the API side of the captured lab: the flannel
// DaemonSet of Helm release flannel, kube-proxy, and their pods with the
// UIDs the cgroups carry, plus bench and CoreDNS pods that must not count.
func capturedCluster() []runtime.Object {
	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	objs := []runtime.Object{
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel-ds", Namespace: "kube-flannel", Annotations: map[string]string{helmReleaseAnnotation: "flannel"}}, Spec: appsv1.DaemonSetSpec{Selector: sel("flannel")}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}, Spec: appsv1.DaemonSetSpec{Selector: sel("kube-proxy")}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Spec: appsv1.DeploymentSpec{Selector: sel("coredns")}},
	}
	pod := func(ns, name, uid, node, app string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Labels: map[string]string{"app": app}}, Spec: corev1.PodSpec{NodeName: "cnl-1b16a2-flannel-" + node}}
	}
	return append(objs,
		pod("kube-flannel", "kube-flannel-ds-6l5lq", "de84a29a-40ad-49d7-9dee-eb068af31054", "control-plane", "flannel"),
		pod("kube-flannel", "kube-flannel-ds-qjvz4", "7b702c77-43cf-42ab-9cf8-e85d1f4f2b57", "worker2", "flannel"),
		pod("kube-flannel", "kube-flannel-ds-ttc7w", "2ba8b6d3-8e18-4332-8766-3be78097ec26", "worker", "flannel"),
		pod("kube-system", "kube-proxy-5hd99", "4f15d1ac-6505-4391-a528-58c0a4a51e91", "control-plane", "kube-proxy"),
		pod("kube-system", "kube-proxy-dgqz8", "36bccc57-19eb-4c92-9c93-4559210998cd", "worker2", "kube-proxy"),
		pod("kube-system", "kube-proxy-rl6kp", "ff2c33db-3d5a-4b1d-a7cb-7346f778478e", "worker", "kube-proxy"),
		pod("kube-system", "coredns-66bc5c9577-4cjm5", "c3597b13-c392-4c4e-818e-e32287e36827", "worker2", "coredns"),
		pod("cnilab", "cross-node-client", "249a7fde-3de8-46c2-9ad7-82ffb9a11bb0", "worker", "bench"),
	)
}

func flannelRecipe() *config.KindLab {
	return &config.KindLab{KubeProxyMode: "iptables", CNI: config.KindCNI{Release: "flannel", Namespace: "kube-flannel", DaemonSets: []string{"kube-flannel-ds"}}}
}

// TestFootprintFromCapturedLab sums the captured cgroups per component
// over the API's pods: flannel's three agents are the CNI's footprint,
// kube-proxy is shown beside it, bench and CoreDNS pods count nowhere,
// and the node total is every node container's own cgroup.
func TestFootprintFromCapturedLab(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(capturedCluster()...)
	wl, err := findWorkloads(ctx, cs, flannelRecipe())
	if err != nil {
		t.Fatal(err)
	}
	read := 1
	var nodes []lab.Node
	for _, n := range []string{"control-plane", "worker", "worker2"} {
		nodes = append(nodes, dumpNode{name: "cnl-1b16a2-flannel-" + n, read: &read, t: t})
	}
	f := &footprinter{cs: cs, nodes: nodes, workloads: wl}
	wantComponents := []lab.Component{{Name: "kube-flannel-ds", Kind: "DaemonSet", Role: lab.RoleCNI}, {Name: "kube-proxy", Kind: "DaemonSet", Role: lab.RoleServiceProxy}}
	if got := f.Components(); len(got) != 2 || got[0] != wantComponents[0] || got[1] != wantComponents[1] {
		t.Fatalf("components %+v, want %+v", got, wantComponents)
	}
	a, err := f.Footprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read = 2
	b, err := f.Footprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Pods) != 6 {
		t.Errorf("%d pods read, want 3 flannel + 3 kube-proxy", len(a.Pods))
	}
	// The captures were 5 s apart; the readings' own clocks are the test's.
	a.At, b.At = time.Unix(100, 0), time.Unix(105, 0)
	fp, err := lab.FootprintBetween(a, b)
	if err != nil {
		t.Fatal(err)
	}
	// Sums over the three nodes of the captured files' deltas and means.
	flannelCPU := float64((1274013820-1233890997)+(1281805114-1237118287)+(1305739026-1259752428)) / 1e9 / 5
	flannelWS := float64((14557184-2682880)+(15138816-2322432)+(14995456-12288)+(14733312-2682880)+(15155200-2322432)+(15003648-12288)) / 2
	proxyCPU := float64((477630960-477405236)+(431435258-431130585)+(443373606-441657581)) / 1e9 / 5
	nodeCPU := float64((45384004899-44752844940)+(28677766928-28476999239)+(27826208573-27565099886)) / 1e9 / 5
	nodeWS := float64((1499353088-971169792)+(813555712-644481024)+(938508288-716472320)+(1477148672-946343936)+(789327872-621502464)+(922787840-701722624)) / 2
	byName := map[string]lab.ComponentRate{}
	for _, c := range fp.Components {
		byName[c.Name] = c
	}
	if c := byName["kube-flannel-ds"]; c.Pods != 3 || !near(c.CPUCores, flannelCPU) || c.WorkingSetBytes != flannelWS {
		t.Errorf("flannel %+v, want 3 pods %.6f cores %.0f bytes", c, flannelCPU, flannelWS)
	}
	if c := byName["kube-proxy"]; c.Pods != 3 || !near(c.CPUCores, proxyCPU) || c.Role != lab.RoleServiceProxy {
		t.Errorf("kube-proxy %+v, want 3 pods %.6f cores", c, proxyCPU)
	}
	if cni := fp.CNI(); cni.Pods != 3 || !near(cni.CPUCores, flannelCPU) || cni.WorkingSetBytes != flannelWS {
		t.Errorf("CNI sum %+v counts more than flannel's pods", cni)
	}
	if !near(fp.Nodes.CPUCores, nodeCPU) || fp.Nodes.WorkingSetBytes != nodeWS {
		t.Errorf("nodes %+v, want %.6f cores %.0f bytes", fp.Nodes, nodeCPU, nodeWS)
	}
	t.Logf("flannel agents: %.4f cores, %.1f MiB; kube-proxy %.4f cores; nodes %.3f cores, %.0f MiB",
		flannelCPU, flannelWS/(1<<20), proxyCPU, nodeCPU, nodeWS/(1<<20))

	// A pod the API lists but no node has a cgroup for fails the reading.
	extra := fake.NewClientset(append(capturedCluster(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-flannel", Name: "kube-flannel-ds-new", UID: "00000000-0000-0000-0000-000000000001", Labels: map[string]string{"app": "flannel"}},
		Spec: corev1.PodSpec{NodeName: "cnl-1b16a2-flannel-worker"}})...)
	g := &footprinter{cs: extra, nodes: nodes, workloads: wl}
	if _, err := g.Footprint(ctx); err == nil || !strings.Contains(err.Error(), "kube-flannel-ds-new") {
		t.Errorf("pod without a cgroup: %v", err)
	}
}

func TestFindWorkloads(t *testing.T) {
	ctx := context.Background()
	// Cilium-style: agent and operator of one release in kube-system, next
	// to CoreDNS (not the CNI's), kube-proxy-free.
	objs := []runtime.Object{
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "cilium", Namespace: "kube-system", Annotations: map[string]string{helmReleaseAnnotation: "cilium"}}, Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "cilium"}}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "cilium-operator", Namespace: "kube-system", Annotations: map[string]string{helmReleaseAnnotation: "cilium"}}, Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"name": "cilium-operator"}}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}},
	}
	k := &config.KindLab{KubeProxyMode: "none", CNI: config.KindCNI{Release: "cilium", Namespace: "kube-system", DaemonSets: []string{"cilium"}}}
	wl, err := findWorkloads(ctx, fake.NewClientset(objs...), k)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range wl {
		got = append(got, w.Kind+"/"+w.Name+"/"+w.Role+"/"+w.Selector)
	}
	want := "DaemonSet/cilium/cni/k8s-app=cilium Deployment/cilium-operator/cni/name=cilium-operator"
	if strings.Join(got, " ") != want {
		t.Errorf("workloads %v, want %s", got, want)
	}
	// Calico-style: the operator's release in tigera-operator, the agents
	// and their controllers in calico-system, which the operator owns.
	calico := []runtime.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "tigera-operator", Namespace: "tigera-operator", Annotations: map[string]string{helmReleaseAnnotation: "calico"}}, Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"name": "tigera-operator"}}}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "calico-node", Namespace: "calico-system"}, Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "calico-node"}}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "calico-kube-controllers", Namespace: "calico-system"}, Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "calico-kube-controllers"}}}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}, Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-proxy"}}}},
	}
	ck := &config.KindLab{KubeProxyMode: "iptables", CNI: config.KindCNI{Release: "calico", Namespace: "tigera-operator", DaemonSets: []string{"calico-system/calico-node"}}}
	cwl, err := findWorkloads(ctx, fake.NewClientset(calico...), ck)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, w := range cwl {
		got = append(got, w.Namespace+"/"+w.Kind+"/"+w.Name+"/"+w.Role)
	}
	want = "tigera-operator/Deployment/tigera-operator/cni calico-system/DaemonSet/calico-node/cni calico-system/Deployment/calico-kube-controllers/cni kube-system/DaemonSet/kube-proxy/service-proxy"
	if strings.Join(got, " ") != want {
		t.Errorf("calico workloads %v, want %s", got, want)
	}

	k.CNI.DaemonSets = []string{"cilium", "cilium-envoy"}
	if _, err := findWorkloads(ctx, fake.NewClientset(objs...), k); err == nil || !strings.Contains(err.Error(), "cilium-envoy") {
		t.Errorf("missing recipe DaemonSet: %v", err)
	}
}
