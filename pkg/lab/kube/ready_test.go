package kube

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cnilab/cnilab/pkg/lab"
)

func k8sNode(name string, ready corev1.ConditionStatus, reason string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: reason}}
	}
	return n
}

func TestNodesReady(t *testing.T) {
	cases := []struct {
		name  string
		nodes []runtime.Object
		want  string // "" = ready
	}{
		{"all ready", []runtime.Object{k8sNode("c", "True", ""), k8sNode("w", "True", ""), k8sNode("w2", "True", "")}, ""},
		{"one missing", []runtime.Object{k8sNode("c", "True", ""), k8sNode("w", "True", "")}, "2 of 3 nodes registered"},
		{"no CNI yet", []runtime.Object{k8sNode("c", "True", ""), k8sNode("w", "False", "KubeletNotReady"), k8sNode("w2", "True", "")}, "node not ready: w Ready=False KubeletNotReady"},
		{"no condition", []runtime.Object{k8sNode("c", "True", ""), k8sNode("w", "", ""), k8sNode("w2", "True", "")}, "w no Ready condition"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := NodesReady(context.Background(), fake.NewClientset(tc.nodes...), 3)
			checkReason(t, err, tc.want)
		})
	}
}

func checkReason(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("not ready: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}

func daemonSet(gen, observed int64, desired, updated, ready, available int32) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel-ds", Namespace: "kube-flannel", Generation: gen},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired,
			UpdatedNumberScheduled: updated, NumberReady: ready, NumberAvailable: available},
	}
}

func TestDaemonSetReady(t *testing.T) {
	cases := []struct {
		name string
		ds   *appsv1.DaemonSet
		want string
	}{
		{"ready on 3", daemonSet(1, 1, 3, 3, 3, 3), ""},
		{"absent", nil, "DaemonSet kube-flannel/kube-flannel-ds does not exist"},
		{"generation not seen", daemonSet(2, 1, 3, 3, 3, 3), "generation 2 not observed"},
		{"scheduled on 2", daemonSet(1, 1, 2, 2, 2, 2), "scheduled on 2 of 3 nodes"},
		// Helm's wait would pass this one (maxUnavailable 1): cnilab's does not.
		{"one not ready", daemonSet(1, 1, 3, 3, 2, 2), "3 desired, 3 updated, 2 ready, 2 available"},
		{"rolling", daemonSet(1, 1, 3, 2, 3, 3), "3 desired, 2 updated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			if tc.ds != nil {
				cs = fake.NewClientset(tc.ds)
			}
			checkReason(t, DaemonSetReady(context.Background(), cs, "kube-flannel", "kube-flannel-ds", 3), tc.want)
		})
	}
}

func TestDeploymentReady(t *testing.T) {
	two := int32(2)
	dep := func(updated, ready, available int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system", Generation: 1},
			Spec:       appsv1.DeploymentSpec{Replicas: &two},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: 1, UpdatedReplicas: updated, ReadyReplicas: ready, AvailableReplicas: available},
		}
	}
	cases := []struct {
		name string
		d    *appsv1.Deployment
		want string
	}{
		{"available", dep(2, 2, 2), ""},
		{"pending on the CNI", dep(2, 0, 0), "deployment kube-system/coredns: 2 wanted, 2 updated, 0 ready, 0 available"},
		{"absent", nil, "does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			if tc.d != nil {
				cs = fake.NewClientset(tc.d)
			}
			checkReason(t, DeploymentReady(context.Background(), cs, "kube-system", "coredns"), tc.want)
		})
	}
}

func TestPodsRunning(t *testing.T) {
	pod := func(name string, phase corev1.PodPhase, ip string, st corev1.ContainerState, ready bool) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "cnilab"},
			Status: corev1.PodStatus{Phase: phase, PodIP: ip,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "bench", State: st, Ready: ready}}}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	cases := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"running", pod("a", corev1.PodRunning, "10.244.1.2", running, true), ""},
		{"image not preloaded", pod("a", corev1.PodPending, "", corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: `image "cnilab/bench:x" is not present`}}, false), "a ErrImageNeverPull: image"},
		{"exited", pod("a", corev1.PodFailed, "", corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 127, Reason: "Error"}}, false), "a exited 127 (Error)"},
		{"not ready", pod("a", corev1.PodRunning, "10.244.1.2", running, false), "container bench not ready"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkReason(t, PodsRunning(context.Background(), fake.NewClientset(tc.pod), "cnilab", []string{"a"}), tc.want)
		})
	}
	if err := PodsRunning(context.Background(), fake.NewClientset(), "cnilab", []string{"b"}); err == nil {
		t.Error("a missing pod counts as running")
	}
}

func TestPoll(t *testing.T) {
	n := 0
	err := Poll(context.Background(), "nodes", time.Second, time.Millisecond, func(context.Context) error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("Poll = %v after %d checks", err, n)
	}
	err = Poll(context.Background(), "flannel", 30*time.Millisecond, 5*time.Millisecond, func(context.Context) error {
		return errors.New("DaemonSet kube-flannel/kube-flannel-ds: 3 desired, 3 updated, 2 ready, 2 available")
	})
	if err == nil || !strings.HasPrefix(err.Error(), "flannel not ready after") || !strings.Contains(err.Error(), "2 ready") {
		t.Errorf("timeout error %v does not say what was not ready", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Poll(ctx, "nodes", time.Hour, time.Hour, func(context.Context) error { return errors.New("x") })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Poll = %v", err)
	}
}

// TestBenchAttachNeedsItsPods: attaching to a bench that lacks a pod the
// workloads need (`cnilab up` built fewer placements, or the pod died)
// fails at once and names the pod, instead of installing anything.
func TestBenchAttachNeedsItsPods(t *testing.T) {
	l, err := NewLayout(lab.Workloads{Placements: []lab.Placement{lab.CrossNode, lab.SameNode}}, "w1", "w2")
	if err != nil {
		t.Fatal(err)
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	var objs []runtime.Object
	for _, name := range l.PodNames() {
		if name == PodName(lab.SameNode, "server") {
			continue
		}
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "cnilab"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.2", ContainerStatuses: []corev1.ContainerStatus{{Name: "bench", State: running, Ready: true}}}})
	}
	cs := fake.NewClientset(objs...)
	_, err = Bench{Namespace: "cnilab", Layout: l}.Attach(context.Background(), nil, cs)
	if err == nil || !strings.Contains(err.Error(), "not running") || !strings.Contains(err.Error(), "same-node-server") {
		t.Errorf("attach without same-node-server: %v", err)
	}
	if acts := cs.Actions(); slices.ContainsFunc(acts, func(a k8stesting.Action) bool { return a.GetVerb() != "get" }) {
		t.Errorf("attach did more than read: %v", acts)
	}
}
