package rank

import (
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

func TestModelErrorReachesEvidence(t *testing.T) {
	lo, hi := -3.0, 17.0
	doc := &results.Document{
		Run:  results.Run{ID: "r1", Provider: "netns"},
		Labs: []results.Lab{{Name: "flannel", CNI: "flannel", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK}},
		Summaries: []results.Summary{{Lab: "flannel", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.ThroughputBps,
			Median: 8e9, N: 3, Provider: "netns", Fidelity: results.Faithful}},
		Fidelity: &results.FidelityCheck{Model: "netns", Real: "kind", Rows: []results.FidelityRow{{Lab: "flannel", Test: "dts", Placement: "cross-node",
			Metric: results.ThroughputBps, ErrorPct: 6.7, ErrorLowPct: &lo, ErrorHighPct: &hi, Verdict: results.FidelityUndecided}}},
	}
	in := FromResults(doc, nil)
	v, ok := in.Candidates[0].Metric("dts", results.ThroughputBps)
	if !ok || v.ModelError == nil || v.ModelError.Bound() != 17 {
		t.Fatalf("dts figure %+v carries no model error", v)
	}
	if !strings.Contains(v.Source, "model error vs the real CNI +7 % (-3…+17 %") {
		t.Errorf("source %q does not show the model error", v.Source)
	}
	other := Value{V: 8.4e9}
	if within, why := WithinModelError(v, other); !within || !strings.Contains(why, "within model error: 5 % apart") {
		t.Errorf("5 %% apart with a 17 %% model error: within=%v %q", within, why)
	}
	if within, _ := WithinModelError(v, Value{V: 12e9}); within {
		t.Error("33 % apart counted as within a 17 % model error")
	}
	// A kind run's figures are the real CNI's: no model error.
	doc.Run.Provider = "kind"
	if v, _ := FromResults(doc, nil).Candidates[0].Metric("dts", results.ThroughputBps); v.ModelError != nil {
		t.Error("a kind figure carries a model error")
	}
}
