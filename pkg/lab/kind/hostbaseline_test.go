package kind

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
)

// TestHostBaselineBench: the host baseline's install puts hostNetwork
// pods on the same workers as the CNI's pairs (cross-node first worker to
// second, same-node on the first), in a namespace of its own, with no
// Services (the host has no service proxy) and no pulls.
var testWorkers = []string{"cnl-r1-flannel-worker", "cnl-r1-flannel-worker2"}

func TestHostBaselineBench(t *testing.T) {
	s := lab.Spec{RunID: "r1", Workloads: lab.Workloads{Placements: []lab.Placement{lab.SameNode}, ServiceProtocols: []string{"tcp"}}}
	b, err := hostBench(s, testWorkers, "cnilab/bench:abc123", time.Minute, probe.Launcher{Path: ProbePath})
	if err != nil {
		t.Fatal(err)
	}
	if b.Namespace != HostNamespace || b.Namespace == BenchNamespace || !b.Chart.HostNetwork || b.Chart.PullPolicy != "Never" || len(b.Layout.Services) != 0 {
		t.Errorf("host bench %+v", b)
	}
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
		if o["kind"] != "Pod" {
			t.Errorf("unexpected %v in the host baseline", o["kind"])
			continue
		}
		meta := o["metadata"].(map[string]any)
		spec := o["spec"].(map[string]any)
		got = append(got, strings.Join([]string{meta["name"].(string), spec["nodeName"].(string), fmt.Sprint(spec["hostNetwork"])}, " "))
	}
	slices.Sort(got)
	want := []string{
		"cross-node-client cnl-r1-flannel-worker true",
		"cross-node-server cnl-r1-flannel-worker2 true",
		"same-node-client cnl-r1-flannel-worker true",
		"same-node-server cnl-r1-flannel-worker true",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("host baseline pods (-want +got):\n%s", d)
	}
	if _, err := hostBench(s, testWorkers[:1], "cnilab/bench:abc123", time.Minute, probe.Launcher{}); err == nil {
		t.Error("a host baseline on one worker was accepted")
	}
}

func TestChooseHostBase(t *testing.T) {
	in := func(cni string) *lab.Instance {
		return &lab.Instance{Name: cni, CNI: cni, Provider: "kind", Fidelity: results.Real, Owned: &clusterState{name: "cnl-r1-" + cni}}
	}
	cases := []struct {
		up   []string
		want string
	}{
		{[]string{"cilium", "kube-router", "flannel"}, "flannel"},
		{[]string{"cilium", "kube-router"}, "kube-router"},
		{[]string{"cilium"}, "cilium"},
		{nil, ""},
	}
	for _, tc := range cases {
		var up []*lab.Instance
		for _, c := range tc.up {
			up = append(up, in(c))
		}
		got := ChooseHostBase(up)
		name := ""
		if got != nil {
			name = got.Name
		}
		if name != tc.want {
			t.Errorf("ChooseHostBase(%v) = %q, want %q", tc.up, name, tc.want)
		}
	}
}
