package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab/kube"
)

// AgentStatus is one agent pod's answer to the recipe's ready_exec.
type AgentStatus struct {
	Pod, Node string
	// Summary is what the check read (empty for expect-only recipes).
	Summary string
}

// agentExec runs argv in a container of a pod (kube.PodExec in the real
// provider; a fake in tests).
type agentExec func(ctx context.Context, namespace, pod, container string, argv []string) (stdout, stderr []byte, err error)

func podAgentExec(cfg *rest.Config, cs kubernetes.Interface) agentExec {
	return func(ctx context.Context, namespace, pod, container string, argv []string) ([]byte, []byte, error) {
		var out, errb bytes.Buffer
		err := kube.PodExec(cfg, cs, namespace, pod, container)(ctx, argv, nil, &out, &errb)
		return out.Bytes(), errb.Bytes(), err
	}
}

// AgentsReady runs the recipe's ready_exec in every pod of its DaemonSet
// and checks each answer. It returns one AgentStatus per pod, sorted by
// node, or the first reason an agent is not ready.
func AgentsReady(ctx context.Context, cs kubernetes.Interface, run agentExec, namespace string, e *config.ReadyExec) ([]AgentStatus, error) {
	ds, err := cs.AppsV1().DaemonSets(namespace).Get(ctx, e.DaemonSet, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("DaemonSet %s/%s: %w", namespace, e.DaemonSet, err)
	}
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(ds.Spec.Selector)})
	if err != nil {
		return nil, fmt.Errorf("pods of DaemonSet %s/%s: %w", namespace, e.DaemonSet, err)
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("DaemonSet %s/%s has no pods", namespace, e.DaemonSet)
	}
	var expect *regexp.Regexp
	if e.Expect != "" {
		if expect, err = regexp.Compile(e.Expect); err != nil {
			return nil, fmt.Errorf("ready_exec expect: %w", err)
		}
	}
	check := readyChecks[e.Check]
	if e.Check != "" && check == nil {
		return nil, fmt.Errorf("ready_exec: no check %q in cnilab", e.Check)
	}
	var out []AgentStatus
	for _, p := range pods.Items {
		where := fmt.Sprintf("%s in pod %s/%s (node %s)", strings.Join(e.Command, " "), namespace, p.Name, p.Spec.NodeName)
		stdout, stderr, err := run(ctx, namespace, p.Name, e.Container, e.Command)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (stderr %q)", where, err, strings.TrimSpace(string(stderr)))
		}
		st := AgentStatus{Pod: p.Name, Node: p.Spec.NodeName}
		if check != nil {
			if st.Summary, err = check(stdout); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		if expect != nil && !expect.Match(stdout) {
			return nil, fmt.Errorf("%s: output does not match %q: %.300q", where, e.Expect, stdout)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b AgentStatus) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// NoKubeProxy fails when anything of kube-proxy runs in the cluster: a
// DaemonSet named kube-proxy or labelled k8s-app=kube-proxy (kubeadm's),
// or such a pod, in any namespace. A kube-proxy-free lab must never
// measure kube-proxy's datapath by accident.
func NoKubeProxy(ctx context.Context, cs kubernetes.Interface) error {
	var found []string
	dss, err := cs.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list DaemonSets: %w", err)
	}
	for _, d := range dss.Items {
		if d.Name == "kube-proxy" || d.Labels["k8s-app"] == "kube-proxy" {
			found = append(found, "DaemonSet "+d.Namespace+"/"+d.Name)
		}
	}
	pods, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.Labels["k8s-app"] == "kube-proxy" || strings.HasPrefix(p.Name, "kube-proxy-") {
			found = append(found, "pod "+p.Namespace+"/"+p.Name)
		}
	}
	if len(found) > 0 {
		return errors.New("kube-proxy runs in a kube-proxy-free lab: " + strings.Join(found, ", "))
	}
	return nil
}
