package kube

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
)

const testNamespace = "cnilab"

var testWorkers = []string{"cnl-r1-flannel-worker", "cnl-r1-flannel-worker2"}

func TestLayout(t *testing.T) {
	l, err := NewLayout(lab.Workloads{Placements: []lab.Placement{lab.SameNode}, ServiceProtocols: []string{"tcp", "UDP"}}, testWorkers[0], testWorkers[1])
	if err != nil {
		t.Fatal(err)
	}
	want := Layout{
		Pods: []BenchPod{
			// cross-node is always there: readiness probes across nodes.
			{Name: "cross-node-client", Node: testWorkers[0], Role: "client", Placement: lab.CrossNode},
			{Name: "cross-node-server", Node: testWorkers[1], Role: "server", Placement: lab.CrossNode},
			{Name: "same-node-client", Node: testWorkers[0], Role: "client", Placement: lab.SameNode},
			{Name: "same-node-server", Node: testWorkers[0], Role: "server", Placement: lab.SameNode},
		},
		Services: []BenchService{
			{Name: "cross-node-server", Pod: "cross-node-server", Protocols: []string{"tcp", "udp"}},
			{Name: "same-node-server", Pod: "same-node-server", Protocols: []string{"tcp", "udp"}},
		},
	}
	if d := cmp.Diff(want, l); d != "" {
		t.Errorf("layout (-want +got):\n%s", d)
	}
	for _, bad := range []struct {
		w              lab.Workloads
		client, server string
		err            string
	}{
		{lab.Workloads{}, testWorkers[0], testWorkers[0], "two distinct nodes"},
		{lab.Workloads{}, testWorkers[0], "", "two distinct nodes"},
		{lab.Workloads{Placements: []lab.Placement{"same-rack"}}, testWorkers[0], testWorkers[1], "unknown placement"},
		{lab.Workloads{ServiceProtocols: []string{"sctp"}}, testWorkers[0], testWorkers[1], "unknown Service protocol"},
	} {
		if _, err := NewLayout(bad.w, bad.client, bad.server); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("layout(%+v) error %v, want %q", bad.w, err, bad.err)
		}
	}
}

// TestBenchChart renders charts/cnilab-bench as the provider installs it.
func TestBenchChart(t *testing.T) {
	l, err := NewLayout(lab.Workloads{Placements: []lab.Placement{lab.CrossNode, lab.SameNode}, ServiceProtocols: []string{"tcp", "udp"}}, testWorkers[0], testWorkers[1])
	if err != nil {
		t.Fatal(err)
	}
	b := Bench{Namespace: testNamespace, Layout: l, Chart: ChartOptions{Image: "cnilab/bench:abc123", PullPolicy: "Never", Labels: map[string]string{RunLabel: "r1"}}}
	manifest, err := b.Render("v1.34.4")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := helm.Docs(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		meta := o["metadata"].(map[string]any)
		spec := o["spec"].(map[string]any)
		if meta["namespace"] != testNamespace {
			t.Errorf("%s in namespace %v", meta["name"], meta["namespace"])
		}
		if l := meta["labels"].(map[string]any); l[RunLabel] != "r1" {
			t.Errorf("%s %s labels %v: no %s=r1", o["kind"], meta["name"], l, RunLabel)
		}
		switch o["kind"] {
		case "Pod":
			c := spec["containers"].([]any)[0].(map[string]any)
			got = append(got, strings.Join([]string{"pod", meta["name"].(string), spec["nodeName"].(string), c["name"].(string), c["image"].(string), c["imagePullPolicy"].(string), strings.Join(toStrings(c["command"]), " ")}, " "))
		case "Service":
			for _, p := range spec["ports"].([]any) {
				port := p.(map[string]any)
				got = append(got, strings.Join([]string{"svc", meta["name"].(string), spec["type"].(string), spec["selector"].(map[string]any)["cnilab.io/pod"].(string), port["protocol"].(string), toString(port["port"]), toString(port["targetPort"])}, " "))
			}
		default:
			t.Errorf("unexpected %v", o["kind"])
		}
	}
	want := []string{
		"pod cross-node-client cnl-r1-flannel-worker bench cnilab/bench:abc123 Never sleep infinity",
		"pod cross-node-server cnl-r1-flannel-worker2 bench cnilab/bench:abc123 Never sleep infinity",
		"pod same-node-client cnl-r1-flannel-worker bench cnilab/bench:abc123 Never sleep infinity",
		"pod same-node-server cnl-r1-flannel-worker bench cnilab/bench:abc123 Never sleep infinity",
		"svc cross-node-server ClusterIP cross-node-server TCP 5201 5201",
		"svc cross-node-server ClusterIP cross-node-server UDP 5201 5201",
		"svc same-node-server ClusterIP same-node-server TCP 5201 5201",
		"svc same-node-server ClusterIP same-node-server UDP 5201 5201",
	}
	// Helm orders objects by kind (Services before Pods).
	slices.Sort(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("bench objects (-want +got):\n%s", d)
	}
	if _, err := l.Values(ChartOptions{Image: "cnilab/bench"}); err == nil {
		t.Error("an untagged bench image was accepted")
	}
}

func toStrings(v any) []string {
	var s []string
	for _, e := range v.([]any) {
		s = append(s, e.(string))
	}
	return s
}

func toString(v any) string { return fmt.Sprint(v) }

// TestBenchChartHostNetwork: the host baseline's pods share their nodes'
// network and declare no ports (a host port twice on one node would be
// refused for a same-node pair).
func TestBenchChartHostNetwork(t *testing.T) {
	l, err := NewLayout(lab.Workloads{Placements: []lab.Placement{lab.SameNode}}, testWorkers[0], testWorkers[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []bool{false, true} {
		b := Bench{Namespace: testNamespace, Layout: l, Chart: ChartOptions{Image: "registry.example:5000/cnilab/bench:v1", HostNetwork: host}}
		manifest, err := b.Render("v1.34.4")
		if err != nil {
			t.Fatal(err)
		}
		objs, err := helm.Docs(manifest)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 4 {
			t.Fatalf("hostNetwork=%v: %d objects, want 4 pods", host, len(objs))
		}
		for _, o := range objs {
			spec := o["spec"].(map[string]any)
			c := spec["containers"].([]any)[0].(map[string]any)
			_, ports := c["ports"]
			if got, _ := spec["hostNetwork"].(bool); got != host || ports == host {
				t.Errorf("hostNetwork=%v: pod spec hostNetwork %v, ports declared %v", host, spec["hostNetwork"], ports)
			}
			if c["imagePullPolicy"] != "IfNotPresent" || c["image"] != "registry.example:5000/cnilab/bench:v1" {
				t.Errorf("image %v pull %v", c["image"], c["imagePullPolicy"])
			}
		}
	}
}
