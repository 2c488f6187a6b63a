package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Readiness is cnilab's own: kind's wait looks at control-plane nodes only,
// and Helm's wait counts a DaemonSet ready with maxUnavailable pods
// missing. Each check returns nil when ready, or an error saying what is
// not ready yet, which becomes the lab's error on timeout.

// NodesReady checks that want nodes are registered and every one has
// condition Ready=True.
func NodesReady(ctx context.Context, cs kubernetes.Interface, want int) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	var notReady []string
	for _, n := range nodes.Items {
		if c := nodeCondition(n, corev1.NodeReady); c == nil || c.Status != corev1.ConditionTrue {
			why := "no Ready condition"
			if c != nil {
				why = fmt.Sprintf("Ready=%s", c.Status)
				if c.Reason != "" {
					why += " " + c.Reason
				}
				if c.Message != "" {
					why += ": " + c.Message
				}
			}
			notReady = append(notReady, n.Name+" "+why)
		}
	}
	switch {
	case len(nodes.Items) < want:
		return fmt.Errorf("%d of %d nodes registered", len(nodes.Items), want)
	case len(notReady) > 0:
		slices.Sort(notReady)
		return fmt.Errorf("node not ready: %s", strings.Join(notReady, "; "))
	}
	return nil
}

func nodeCondition(n corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// DaemonSetReady checks that a DaemonSet runs an up-to-date, ready pod on
// each of want nodes: desired == updated == ready == available == want,
// for the current generation.
func DaemonSetReady(ctx context.Context, cs kubernetes.Interface, namespace, name string, want int) error {
	ds, err := cs.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("DaemonSet %s/%s does not exist", namespace, name)
	}
	if err != nil {
		return fmt.Errorf("DaemonSet %s/%s: %w", namespace, name, err)
	}
	return daemonSetStatus(ds, want)
}

func daemonSetStatus(ds *appsv1.DaemonSet, want int) error {
	st := ds.Status
	id := ds.Namespace + "/" + ds.Name
	if st.ObservedGeneration < ds.Generation {
		return fmt.Errorf("DaemonSet %s: generation %d not observed yet", id, ds.Generation)
	}
	if int(st.DesiredNumberScheduled) != want {
		return fmt.Errorf("DaemonSet %s: scheduled on %d of %d nodes", id, st.DesiredNumberScheduled, want)
	}
	if st.UpdatedNumberScheduled != st.DesiredNumberScheduled || st.NumberReady != st.DesiredNumberScheduled || st.NumberAvailable != st.DesiredNumberScheduled {
		return fmt.Errorf("DaemonSet %s: %d desired, %d updated, %d ready, %d available", id,
			st.DesiredNumberScheduled, st.UpdatedNumberScheduled, st.NumberReady, st.NumberAvailable)
	}
	return nil
}

// DeploymentReady checks that every replica of a Deployment is updated and
// available (CoreDNS: it only runs once the CNI gives it an address).
func DeploymentReady(ctx context.Context, cs kubernetes.Interface, namespace, name string) error {
	d, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("deployment %s/%s does not exist", namespace, name)
	}
	if err != nil {
		return fmt.Errorf("deployment %s/%s: %w", namespace, name, err)
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.AvailableReplicas != want || st.ReadyReplicas != want {
		return fmt.Errorf("deployment %s/%s: %d wanted, %d updated, %d ready, %d available", namespace, name,
			want, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas)
	}
	return nil
}

// PodsRunning checks that the named pods in namespace run with every
// container ready and an IP, and says why one does not (its waiting
// reason: ErrImageNeverPull, ContainerCreating, ...).
func PodsRunning(ctx context.Context, cs kubernetes.Interface, namespace string, names []string) error {
	var bad []string
	for _, name := range names {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("pod %s/%s: %w", namespace, name, err)
		}
		if why := podNotReady(p); why != "" {
			bad = append(bad, name+" "+why)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("pod not running: %s", strings.Join(bad, "; "))
	}
	return nil
}

func podNotReady(p *corev1.Pod) string {
	for _, c := range p.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil {
			why := w.Reason
			if w.Message != "" {
				why += ": " + w.Message
			}
			return why
		}
		if t := c.State.Terminated; t != nil {
			return fmt.Sprintf("exited %d (%s)", t.ExitCode, t.Reason)
		}
	}
	if p.Status.Phase != corev1.PodRunning {
		why := string(p.Status.Phase)
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue && c.Message != "" {
				why += ": " + c.Message
				break
			}
		}
		return why
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			return "container " + c.Name + " not ready"
		}
	}
	if p.Status.PodIP == "" {
		return "no IP"
	}
	return ""
}

// notReadyError is what Poll returns when a check never passed in time.
type notReadyError struct {
	what   string
	waited time.Duration
	last   error
}

func (e *notReadyError) Error() string {
	return fmt.Sprintf("%s not ready after %s: %v", e.what, e.waited.Round(time.Second), e.last)
}

func (e *notReadyError) Unwrap() error { return e.last }

// Poll runs check every interval until it returns nil, timeout passes or
// ctx ends. On timeout the error carries the check's last answer, which
// says what was not ready.
func Poll(ctx context.Context, what string, timeout, interval time.Duration, check func(context.Context) error) error {
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, max(interval, 10*time.Second))
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), &notReadyError{what: what, waited: time.Since(start), last: last})
		case <-deadline.C:
			return &notReadyError{what: what, waited: time.Since(start), last: last}
		case <-tick.C:
		}
	}
}
