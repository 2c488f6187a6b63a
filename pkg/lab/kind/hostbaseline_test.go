package kind

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cnilab/cnilab/charts"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/results"
)

// TestHostBaselineChart renders the host baseline's release: hostNetwork
// pods on the same workers as the CNI's pairs, no host ports declared (two
// host pods share the first worker), no Services.
func TestHostBaselineChart(t *testing.T) {
	l, values, err := hostValues([]lab.Placement{lab.SameNode}, testWorkers, "cnilab/bench:abc123")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Services) != 0 {
		t.Errorf("host baseline has Services: %+v", l.Services)
	}
	ch, err := helm.LoadFS(charts.FS, charts.Bench)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := helm.Render(ch, helm.Release{Name: HostRelease, Namespace: BenchNamespace, Values: values}, "v1.34.4")
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
		c := spec["containers"].([]any)[0].(map[string]any)
		if _, ok := c["ports"]; ok {
			t.Errorf("host pod %s declares ports (host ports on a shared node)", meta["name"])
		}
		got = append(got, strings.Join([]string{meta["name"].(string), spec["nodeName"].(string), toString(spec["hostNetwork"]), toString(spec["dnsPolicy"])}, " "))
	}
	slices.Sort(got)
	want := []string{
		"host-cross-node-client cnl-r1-flannel-worker true ClusterFirstWithHostNet",
		"host-cross-node-server cnl-r1-flannel-worker2 true ClusterFirstWithHostNet",
		"host-same-node-client cnl-r1-flannel-worker true ClusterFirstWithHostNet",
		"host-same-node-server cnl-r1-flannel-worker true ClusterFirstWithHostNet",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("host baseline pods (-want +got):\n%s", d)
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
