package rank

import (
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

// kindDoc is a kind run of three CNIs whose idle windows measured each
// CNI's own pods; the machine-wide idle figures are the same for all (the
// three clusters share the host) and must not decide anything.
func kindDoc(agentMem map[string]float64) *results.Document {
	doc := &results.Document{Schema: results.Schema, Run: results.Run{ID: "k1", Provider: "kind"}}
	comps := map[string][]results.Component{
		"flannel":     {{Name: "kube-flannel-ds", Kind: "DaemonSet", Role: "cni"}, {Name: "kube-proxy", Kind: "DaemonSet", Role: "service-proxy"}},
		"cilium":      {{Name: "cilium", Kind: "DaemonSet", Role: "cni"}, {Name: "cilium-operator", Kind: "Deployment", Role: "cni"}},
		"kube-router": {{Name: "kube-router", Kind: "DaemonSet", Role: "cni"}, {Name: "kube-proxy", Kind: "DaemonSet", Role: "service-proxy"}},
	}
	agentCPU := map[string]float64{"flannel": 0.012, "cilium": 0.06, "kube-router": 0.02}
	for _, cni := range []string{"flannel", "cilium", "kube-router"} {
		doc.Labs = append(doc.Labs, results.Lab{Name: cni, CNI: cni, Provider: "kind", Fidelity: results.Real, Status: results.StatusOK, Footprint: comps[cni]})
		put := func(metric string, v float64) {
			doc.Summaries = append(doc.Summaries, results.Summary{Lab: cni, Scenario: "throughput", Test: "idle", Placement: "cross-node",
				Metric: metric, Unit: results.Unit(metric), Median: v, CI95Low: v * 0.9, CI95High: v * 1.1, N: 3, Provider: "kind", Fidelity: results.Real})
		}
		put(results.CPUCores, 1.9)
		put(results.MemUsedBytes, 9e9)
		put(results.AgentCPUCores, agentCPU[cni])
		put(results.AgentMemBytes, agentMem[cni])
		put(results.NodeCPUCores, 0.4)
		put(results.NodeMemBytes, 900e6)
	}
	return doc
}

// TestKindFootprintRanksEdgeAndDevTest: edge and dev-test read the
// measured footprint of the CNIs' own pods, with the evidence saying so
// and the nodes' total beside it; moving one CNI's agent memory moves its
// score; a lab whose run says it has no footprint stays out.
func TestKindFootprintRanksEdgeAndDevTest(t *testing.T) {
	defs, _ := loadReal(t)
	small := map[string]float64{"flannel": 40e6, "cilium": 320e6, "kube-router": 60e6}
	in := FromResults(kindDoc(small), defs.Facts)
	if !strings.Contains(strings.Join(in.Notes, "\n"), "the CNI's own pods") {
		t.Errorf("no note says idle figures are the CNIs' own pods: %v", in.Notes)
	}
	for _, name := range []string{"edge", "dev-test"} {
		r := Rank(in, env(t, defs, name))
		for _, w := range r.Weights {
			if strings.HasPrefix(w.Criterion, "idle") && w.Skipped != "" {
				t.Errorf("%s: %s skipped: %s", name, w.Criterion, w.Skipped)
			}
		}
		rows := map[string]Evidence{}
		for _, cni := range []string{"flannel", "cilium"} {
			e, ok := r.Place(cni)
			if !ok {
				t.Fatalf("%s: %s not ranked (%v)", name, cni, r.Excluded)
			}
			for _, ev := range e.Evidence {
				if ev.Criterion == "idle memory" {
					rows[cni] = ev
				}
			}
		}
		f, c := rows["flannel"], rows["cilium"]
		if f.Raw == nil || *f.Raw != 40e6 || *f.Normalized != 1 || c.Raw == nil || *c.Raw != 320e6 || *c.Normalized != 0.125 {
			t.Errorf("%s: idle memory rows flannel %+v cilium %+v: want the agents' 40 MB (best, 1) and 320 MB (40/320 = 0.125)", name, f, c)
		}
		if !strings.Contains(c.Source, "kind, real, median of 3; the CNI's own pods: DaemonSet cilium, Deployment cilium-operator") ||
			!strings.Contains(c.Detail, "the lab's nodes as a whole: 900.0 MB") {
			t.Errorf("%s: cilium's row does not say what it counts: source %q detail %q", name, c.Source, c.Detail)
		}
		t.Logf("%s: %v; flannel row: %s", name, r.Order(), evidenceLine(f))
	}
	// Cilium's agent now the smallest: it takes the idle memory criterion.
	flipped := FromResults(kindDoc(map[string]float64{"flannel": 400e6, "cilium": 30e6, "kube-router": 60e6}), defs.Facts)
	for _, ev := range mustPlace(t, Rank(flipped, env(t, defs, "edge")), "cilium").Evidence {
		if ev.Criterion == "idle memory" && (ev.Normalized == nil || *ev.Normalized != 1) {
			t.Errorf("cilium with the smallest agent: idle memory %+v", ev)
		}
	}
	// The same figures from labs that say they have no footprint (netns)
	// rank no one.
	nd := kindDoc(small)
	for i := range nd.Labs {
		nd.Labs[i].NoFootprint = "no CNI agent runs in the netns datapath model"
	}
	for _, c := range FromResults(nd, defs.Facts).Candidates {
		for _, m := range []string{results.MemUsedBytes, results.CPUCores, results.AgentMemBytes} {
			if _, ok := c.Metric("idle", m); ok {
				t.Errorf("%s: idle %s of a lab without footprint used", c.Name, m)
			}
		}
	}
}

func mustPlace(t *testing.T, r EnvResult, cni string) Entry {
	t.Helper()
	e, ok := r.Place(cni)
	if !ok {
		t.Fatalf("%s not ranked in %s", cni, r.Name)
	}
	return e
}
