package report

import (
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

func kindRun() *results.Document {
	d := &results.Document{Schema: results.Schema, Run: results.Run{ID: "k", Provider: "kind",
		Provisioning: &results.Provisioning{Labs: 2, WallSeconds: 150, Solo: &results.SoloUp{Lab: "flannel", UpSeconds: 100, UpSteps: &results.UpSteps{CreateSeconds: 60, LoadImagesSeconds: 10, CNIReadySeconds: 20, WorkloadsReadySeconds: 10}}}}}
	for _, name := range []string{"flannel", "flannel-b"} {
		d.Labs = append(d.Labs, results.Lab{Name: name, CNI: "flannel", Provider: "kind", Fidelity: results.Real, Status: results.StatusOK, UpSeconds: 140,
			UpSteps:   &results.UpSteps{CreateSeconds: 80, LoadImagesSeconds: 15, CNIReadySeconds: 30, WorkloadsReadySeconds: 15},
			Footprint: []results.Component{{Name: "kube-flannel-ds", Kind: "DaemonSet", Role: "cni"}, {Name: "kube-proxy", Kind: "DaemonSet", Role: "service-proxy"}}})
		for test, f := range map[string]float64{"idle": 1, "dtm": 5} {
			for metric, v := range map[string]float64{
				results.AgentCPUCores: 0.01 * f, results.AgentMemBytes: 40 << 20, results.NodeCPUCores: 0.3 * f, results.NodeMemBytes: 900 << 20,
				"pods_cpu_cores:kube-flannel-ds": 0.01 * f, "pods_mem_bytes:kube-flannel-ds": 40 << 20, "pods_cpu_cores:kube-proxy": 0.002 * f, "pods_mem_bytes:kube-proxy": 15 << 20,
			} {
				d.Summaries = append(d.Summaries, results.Summary{Lab: name, Scenario: "throughput", Test: test, Placement: "cross-node", Metric: metric, Median: v, N: 3, Provider: "kind", Fidelity: results.Real})
			}
		}
	}
	return d
}

func TestMarkdownFootprintAndUpTimes(t *testing.T) {
	var b strings.Builder
	if err := Markdown(&b, kindRun()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| lab | create (s) | load images (s) | CNI ready (s) | workloads ready (s) | up (s) |",
		"| flannel-b | 80.0 | 15.0 | 30.0 | 15.0 | 140.0 |",
		"All 2 labs together: **150.0 s**",
		"flannel alone, earlier in the same run: **100.0 s**",
		"**1.50×**",
		"## Agent footprint (the CNI's own pods)",
		"under dtm (pod → pod, TCP, multi-stream) CPU (cores)",
		"| flannel | DaemonSet kube-flannel-ds | cni | 0.0100 | 40.0 | 0.0500 | 40.0 |",
		"| flannel | DaemonSet kube-proxy | service-proxy | 0.0020 | 15.0 | 0.0100 | 15.0 |",
		"| flannel | **CNI total** | cni | **0.0100** | **40.0** | **0.0500** | **40.0** |",
		"| flannel | all nodes | node total | 0.300 | 900 | 1.500 | 900 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// A netns run has neither table.
	var n strings.Builder
	if err := Markdown(&n, doc()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(n.String(), "Agent footprint") || strings.Contains(n.String(), "Bringing the labs up") {
		t.Error("netns report shows footprint or up-time tables")
	}
}
