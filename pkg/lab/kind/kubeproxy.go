package kind

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab/kube"
	"github.com/cnilab/cnilab/pkg/proxy/iptables"
)

// kube-proxy as kubeadm (and so kind) deploys it.
const (
	kubeProxyNamespace = "kube-system"
	kubeProxyDaemonSet = "kube-proxy"
	kubeProxyContainer = "kube-proxy"
)

// KubeProxyBackend is the iptables backend kube-proxy drives in a kind
// cluster: `iptables -V` in the kube-proxy container of every kube-proxy
// pod, which runs the very binaries kube-proxy programs its rules with
// (its image's iptables wrapper picks nft or legacy at the first call,
// from the rules it finds). The ranking matches services-scale figures by
// backend, so a kube-proxy lab must name it; a pod that prints no mode,
// or pods that disagree, are errors. It returns iptables-nft or
// iptables-legacy and one line of evidence (nodes asked, what they
// printed).
func KubeProxyBackend(ctx context.Context, cs kubernetes.Interface, run agentExec) (backend, how string, err error) {
	ds, err := cs.AppsV1().DaemonSets(kubeProxyNamespace).Get(ctx, kubeProxyDaemonSet, metav1.GetOptions{})
	if err != nil {
		return "", "", fmt.Errorf("DaemonSet %s/%s: %w", kubeProxyNamespace, kubeProxyDaemonSet, err)
	}
	pods, err := cs.CoreV1().Pods(kubeProxyNamespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(ds.Spec.Selector)})
	if err != nil {
		return "", "", fmt.Errorf("pods of DaemonSet %s/%s: %w", kubeProxyNamespace, kubeProxyDaemonSet, err)
	}
	items := pods.Items
	if len(items) == 0 {
		return "", "", fmt.Errorf("DaemonSet %s/%s has no pods", kubeProxyNamespace, kubeProxyDaemonSet)
	}
	slices.SortFunc(items, func(a, b corev1.Pod) int { return strings.Compare(a.Spec.NodeName, b.Spec.NodeName) })
	var nodes, printed []string
	for _, p := range items {
		where := fmt.Sprintf("iptables -V in pod %s/%s (node %s)", kubeProxyNamespace, p.Name, p.Spec.NodeName)
		stdout, stderr, err := run(ctx, kubeProxyNamespace, p.Name, kubeProxyContainer, []string{"iptables", "-V"})
		if err != nil {
			return "", "", fmt.Errorf("%s: %w (stderr %q)", where, err, strings.TrimSpace(string(stderr)))
		}
		b, err := iptables.ParseBackend(string(stdout))
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", where, err)
		}
		if backend != "" && b != backend {
			return "", "", fmt.Errorf("kube-proxy drives %s on node %s but %s on node %s", backend, nodes[0], b, p.Spec.NodeName)
		}
		backend = b
		nodes = append(nodes, p.Spec.NodeName)
		if out := strings.TrimSpace(string(stdout)); !slices.Contains(printed, out) {
			printed = append(printed, out)
		}
	}
	how = fmt.Sprintf("service proxy: kube-proxy's iptables backend is %s (`iptables -V` in the kube-proxy container on %s printed %q)",
		backend, strings.Join(nodes, ", "), strings.Join(printed, "; "))
	return backend, how, nil
}

// observeProxy names the lab's service proxy as seen in the cluster: the
// recipe's proxy for a kube-proxy-free lab; otherwise kube-proxy's mode
// from its ConfigMap and, in iptables mode, the backend its binaries drive
// ("kube-proxy iptables-nft"), checked against a pinned one. how is the
// evidence for the lab's notes.
func observeProxy(ctx context.Context, k *config.KindLab, cs kubernetes.Interface, run agentExec) (proxy, how string, err error) {
	if k.KubeProxyMode == "none" {
		return k.Proxy, "", nil
	}
	cm, err := cs.CoreV1().ConfigMaps(kubeProxyNamespace).Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return "", "", fmt.Errorf("kube-proxy configuration: %w", err)
	}
	mode, err := kube.KubeProxyMode(cm.Data["config.conf"])
	if err != nil {
		return "", "", err
	}
	if mode != k.KindMode() {
		return "", "", fmt.Errorf("kube-proxy runs in %s mode; the lab asked kind for %s", mode, k.KindMode())
	}
	if mode != "iptables" {
		return "kube-proxy " + mode, "", nil
	}
	backend, how, err := KubeProxyBackend(ctx, cs, run)
	if err != nil {
		return "", "", fmt.Errorf("kube-proxy's iptables backend: %w", err)
	}
	if pin := k.PinnedBackend(); pin != "" && pin != backend {
		// kind cannot choose the backend: the nodes' iptables takes it
		// from the rules the host already has. A mismatch is reported,
		// never measured under the wrong name.
		return "", "", fmt.Errorf("the lab pins kube_proxy_mode %s, but kube-proxy drives %s on these nodes", pin, backend)
	}
	return "kube-proxy " + backend, how, nil
}
