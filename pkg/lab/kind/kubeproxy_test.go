package kind

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab/kube"
)

// kubeProxyObjects is kubeadm's kube-proxy on a three-node kind cluster:
// its ConfigMap (mode as given), DaemonSet and one pod per node, plus a
// pod of another DaemonSet that must not be asked.
func kubeProxyObjects(mode string) []runtime.Object {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-proxy"}}
	conf := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: " + mode + "\n"
	objs := []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}, Data: map[string]string{"config.conf": conf}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}, Spec: appsv1.DaemonSetSpec{Selector: sel}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kindnet-x", Namespace: "kube-system", Labels: map[string]string{"k8s-app": "kindnet"}}},
	}
	for _, n := range [][2]string{{"kube-proxy-c", "lab-worker2"}, {"kube-proxy-a", "lab-control-plane"}, {"kube-proxy-b", "lab-worker"}} {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n[0], Namespace: "kube-system", Labels: map[string]string{"k8s-app": "kube-proxy"}},
			Spec: corev1.PodSpec{NodeName: n[1]}})
	}
	return objs
}

func TestObserveProxy(t *testing.T) {
	// Real `iptables -V` output: the kube-proxy container of a kind lab
	// here (TestKindFlannelEndToEnd, offline images), and this machine's
	// iptables-legacy (Debian bookworm's iptables 1.8.9, the package the
	// offline kube-proxy image is built from).
	nft, legacy := readTestdata(t, "iptables-V/kind-kube-proxy-nf_tables.txt"), readTestdata(t, "iptables-V/host-legacy.txt")
	lab := func(mode string) *config.KindLab { return &config.KindLab{KubeProxyMode: mode} }
	tests := []struct {
		name      string
		k         *config.KindLab
		cmMode    string
		out       map[string]string // pod -> stdout
		execErr   error
		want      string
		wantErr   string
		wantAsked int
	}{
		{"nft everywhere", lab("iptables"), "iptables", map[string]string{"kube-proxy-a": nft, "kube-proxy-b": nft, "kube-proxy-c": nft}, nil,
			"kube-proxy iptables-nft", "", 3},
		{"legacy everywhere", lab("iptables"), "iptables", map[string]string{"kube-proxy-a": legacy, "kube-proxy-b": legacy, "kube-proxy-c": legacy}, nil,
			"kube-proxy iptables-legacy", "", 3},
		{"empty mode is iptables", lab("iptables"), `""`, map[string]string{"kube-proxy-a": nft, "kube-proxy-b": nft, "kube-proxy-c": nft}, nil,
			"kube-proxy iptables-nft", "", 3},
		{"pinned and matching", lab("iptables-legacy"), "iptables", map[string]string{"kube-proxy-a": legacy, "kube-proxy-b": legacy, "kube-proxy-c": legacy}, nil,
			"kube-proxy iptables-legacy", "", 3},
		{"pinned, nodes drive the other", lab("iptables-legacy"), "iptables", map[string]string{"kube-proxy-a": nft, "kube-proxy-b": nft, "kube-proxy-c": nft}, nil,
			"", "pins kube_proxy_mode iptables-legacy, but kube-proxy drives iptables-nft", 3},
		{"nodes disagree", lab("iptables"), "iptables", map[string]string{"kube-proxy-a": nft, "kube-proxy-b": legacy, "kube-proxy-c": nft}, nil,
			"", "kube-proxy drives iptables-nft on node lab-control-plane but iptables-legacy on node lab-worker", 2},
		// iptables 1.6 printed no mode: cnilab does not guess legacy.
		{"no mode printed", lab("iptables"), "iptables", map[string]string{"kube-proxy-a": "iptables v1.6.1\n"}, nil,
			"", `pod kube-system/kube-proxy-a (node lab-control-plane): iptables -V printed "iptables v1.6.1"`, 1},
		{"exec fails", lab("iptables"), "iptables", nil, &kube.ExitStatus{Code: 127},
			"", `exit status 127 (stderr "exec: iptables: not found")`, 1},
		{"ipvs has no iptables backend", lab("ipvs"), "ipvs", nil, nil, "kube-proxy ipvs", "", 0},
		{"mode differs from the recipe", lab("iptables"), "nftables", nil, nil, "", "kube-proxy runs in nftables mode; the lab asked kind for iptables", 0},
		{"kube-proxy free", &config.KindLab{KubeProxyMode: "none", Proxy: "cilium ebpf (kube-proxy replacement)"}, "", nil, nil,
			"cilium ebpf (kube-proxy replacement)", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			run := func(_ context.Context, ns, pod, container string, argv []string) ([]byte, []byte, error) {
				asked = append(asked, ns+"/"+pod+"/"+container+" "+strings.Join(argv, " "))
				if tc.execErr != nil {
					return nil, []byte("exec: iptables: not found\n"), tc.execErr
				}
				return []byte(tc.out[pod]), nil, nil
			}
			got, how, err := observeProxy(context.Background(), tc.k, fake.NewClientset(kubeProxyObjects(tc.cmMode)...), run)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q in it", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("proxy = %q, want %q", got, tc.want)
			}
			if len(asked) != tc.wantAsked {
				t.Errorf("asked %d pods (%q), want %d", len(asked), asked, tc.wantAsked)
			}
			for _, a := range asked {
				if !strings.HasPrefix(a, "kube-system/kube-proxy-") || !strings.HasSuffix(a, "/kube-proxy iptables -V") {
					t.Errorf("asked %q: want iptables -V in a kube-proxy container", a)
				}
			}
			if tc.wantErr == "" && tc.wantAsked > 0 && !strings.Contains(how, "lab-control-plane, lab-worker, lab-worker2") {
				t.Errorf("evidence %q does not name the nodes asked, in order", how)
			}
		})
	}
}

func TestObserveProxyNoPods(t *testing.T) {
	objs := kubeProxyObjects("iptables")[:3] // ConfigMap and DaemonSet, no kube-proxy pod
	run := func(context.Context, string, string, string, []string) ([]byte, []byte, error) {
		return nil, nil, errors.New("must not exec")
	}
	_, _, err := observeProxy(context.Background(), &config.KindLab{KubeProxyMode: "iptables"}, fake.NewClientset(objs...), run)
	if err == nil || !strings.Contains(err.Error(), "kube-system/kube-proxy has no pods") {
		t.Fatalf("err = %v, want no pods", err)
	}
}
