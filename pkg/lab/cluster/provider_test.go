package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cnilab/cnilab/pkg/lab/kube"
)

// allow answers SelfSubjectAccessReviews: every right but those denied
// ("verb resource[/sub]").
func allow(cs *fake.Clientset, denied ...string) {
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		key := ra.Verb + " " + ra.Resource
		if ra.Subresource != "" {
			key += "/" + ra.Subresource
		}
		r.Status.Allowed = true
		for _, d := range denied {
			if d == key {
				r.Status.Allowed = false
			}
		}
		return true, r, nil
	})
}

func k8sNode(name string, opts ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func controlPlane(n *corev1.Node) { n.Labels["node-role.kubernetes.io/control-plane"] = "" }
func cordoned(n *corev1.Node)     { n.Spec.Unschedulable = true }
func rack(r string) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Labels["rack"] = r }
}

var flannelObjects = []runtime.Object{
	ds("kube-flannel", "kube-flannel-ds", "ghcr.io/flannel-io/flannel:v0.28.10"),
}

func TestPreflightNamesMissingRight(t *testing.T) {
	cs := fake.NewClientset(objs(flannelObjects, []runtime.Object{k8sNode("a"), k8sNode("b")})...)
	allow(cs, "create pods/exec", "delete namespaces")
	p := NewWithClient(cs)
	p.BenchImage = "registry.example/cnilab/bench:v1"
	_, err := p.Preflight(context.Background(), nil)
	var ae *AccessError
	if !errors.Is(err, ErrPrerequisite) || !errors.As(err, &ae) {
		t.Fatalf("Preflight = %v, want a missing prerequisite naming the rights", err)
	}
	for _, want := range []string{"create pods/exec cluster-wide", "delete namespaces cluster-wide"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if len(cs.Actions()) == 0 {
		t.Fatal("no request made")
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() != "create" || a.GetResource().Resource != "selfsubjectaccessreviews" {
			t.Errorf("before its rights are known, cnilab made a %s %s request", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

func TestPreflightBenchImage(t *testing.T) {
	cs := fake.NewClientset()
	allow(cs)
	for image, want := range map[string]string{"": "--bench-image", "registry.example/bench": "no tag"} {
		p := NewWithClient(cs)
		p.BenchImage = image
		if _, err := p.Preflight(context.Background(), nil); !errors.Is(err, ErrPrerequisite) || !strings.Contains(err.Error(), want) {
			t.Errorf("bench image %q: %v, want %q", image, err, want)
		}
	}
}

func TestChooseNodes(t *testing.T) {
	nodes := []runtime.Object{
		k8sNode("cp", controlPlane), k8sNode("w1", rack("r1")), k8sNode("w2", cordoned, rack("r2")),
		k8sNode("w3", rack("r2")), k8sNode("w4", rack("r2")),
	}
	for _, tc := range []struct {
		name     string
		nodes    []string
		selector string
		client   string
		server   string
		how      string
		err      string
	}{
		{name: "first two schedulable workers", client: "w1", server: "w3", how: "first two schedulable workers"},
		{name: "by label", selector: "rack=r2", client: "w3", server: "w4", how: "with labels rack=r2"},
		{name: "by flag", nodes: []string{"w4", "w1"}, client: "w4", server: "w1", how: "--nodes"},
		{name: "flag names a cordoned node", nodes: []string{"w1", "w2"}, err: "node w2 is cordoned"},
		{name: "flag names one node twice", nodes: []string{"w1", "w1"}, err: "two distinct nodes"},
		{name: "flag names no such node", nodes: []string{"w1", "x"}, err: `no node "x"`},
		{name: "too few", selector: "rack=r1", err: "need two schedulable worker nodes; 1 found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewWithClient(fake.NewClientset(nodes...))
			p.Nodes, p.NodeSelector = tc.nodes, tc.selector
			c, s, how, err := p.chooseNodes(context.Background())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || c.Name != tc.client || s.Name != tc.server || !strings.Contains(how, tc.how) {
				t.Errorf("chooseNodes = %v %v %q %v; want %s %s %q", name(c), name(s), how, err, tc.client, tc.server, tc.how)
			}
		})
	}
}

func name(n *corev1.Node) string {
	if n == nil {
		return "<nil>"
	}
	return n.Name
}

// TestDownAllOnlyCnilab: leftovers are found by label and prefix; a
// namespace that merely looks like cnilab's is never deleted.
func TestDownAllOnlyCnilab(t *testing.T) {
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	cs := fake.NewClientset(
		ns("cnilab-r1", map[string]string{kube.RunLabel: "r1"}),
		ns("cnilab-r1-host", map[string]string{kube.RunLabel: "r1"}),
		ns("cnilab-r2", map[string]string{kube.RunLabel: "r2"}),
		ns("cnilab-users-own", nil),                          // no label: not cnilab's
		ns("team-a", map[string]string{kube.RunLabel: "r1"}), // labelled but not cnilab's name
		ns("cnilab", map[string]string{"something": "else"}), // the kind path's namespace
	)
	p := NewWithClient(cs)
	p.Run = "r1"
	removed, err := p.DownAll(context.Background())
	if err != nil || strings.Join(removed, ",") != "cnilab-r1,cnilab-r1-host" {
		t.Fatalf("DownAll run r1 = %v, %v", removed, err)
	}
	p.Run = ""
	removed, err = p.DownAll(context.Background())
	if err != nil || strings.Join(removed, ",") != "cnilab-r2" {
		t.Fatalf("DownAll = %v, %v", removed, err)
	}
	left, _ := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	var names []string
	for _, n := range left.Items {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "cnilab,cnilab-users-own,team-a" {
		t.Errorf("namespaces left %v: cnilab removed one it did not create, or left one it did", names)
	}
	if err := p.deleteNamespace(context.Background(), "cnilab-users-own", "r1"); err == nil || !strings.Contains(err.Error(), "left alone") {
		t.Errorf("deleting an unlabelled namespace: %v", err)
	}
}

func TestAgentUsage(t *testing.T) {
	raw := []byte(`{"items":[
	 {"metadata":{"name":"kube-flannel-ds-abcde"},"window":"15s","containers":[{"name":"kube-flannel","usage":{"cpu":"12m","memory":"20Mi"}}]},
	 {"metadata":{"name":"kube-flannel-ds-fghij"},"window":"15s","containers":[{"name":"kube-flannel","usage":{"cpu":"8000000n","memory":"10Mi"}}]},
	 {"metadata":{"name":"coredns-1"},"window":"15s","containers":[{"name":"coredns","usage":{"cpu":"1","memory":"1Gi"}}]}]}`)
	cores, mem, pods, window, err := agentUsage(raw, []string{"kube-flannel-ds"})
	if err != nil || pods != 2 || window != "15s" || cores < 0.0199 || cores > 0.0201 || mem != 30*(1<<20) {
		t.Errorf("agentUsage = %v cores, %v bytes, %d pods, %q, %v", cores, mem, pods, window, err)
	}
	if _, _, _, _, err := agentUsage([]byte(`{"items":[{"metadata":{"name":"cilium-x"},"containers":[{"name":"a","usage":{"cpu":"lots"}}]}]}`), []string{"cilium"}); err == nil {
		t.Error("an unreadable quantity became a figure")
	}
	if _, _, _, _, err := agentUsage([]byte(`{"items":[]}`), []string{"cilium"}); err == nil {
		t.Error("no pod read as zero usage")
	}
}
