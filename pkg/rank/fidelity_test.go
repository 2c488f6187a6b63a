package rank

import (
	"slices"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/fidelity"
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
	// A netns run without its own check takes the kept summary's error
	// (reports/fidelity/summary.json), naming the run it came from.
	k, err := fidelity.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	var lab string
	var kt fidelity.KeptTest
	for _, l := range k.Labs {
		for _, x := range l.Tests {
			if x.ErrorLowPct != nil && x.Placement == "cross-node" && lab == "" {
				lab, kt = l.Lab, x
			}
		}
	}
	if lab == "" {
		t.Fatal("the kept summary has no row with an interval")
	}
	noCheck := &results.Document{Run: results.Run{ID: "r2", Provider: "netns"},
		Labs: []results.Lab{{Name: lab, CNI: lab, Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK}},
		Summaries: []results.Summary{{Lab: lab, Scenario: "throughput", Test: kt.Test, Placement: "cross-node", Metric: fidelity.CheckedMetric(kt.Test),
			Median: 8e9, N: 6, Provider: "netns", Fidelity: results.Faithful}}}
	v, ok = FromResults(noCheck, nil).Candidates[0].Metric(kt.Test, fidelity.CheckedMetric(kt.Test))
	if !ok || v.ModelError == nil || v.ModelError.LowPct != *kt.ErrorLowPct || !strings.HasPrefix(v.ModelError.From, "kept fidelity run ") || !strings.Contains(v.Source, "kept fidelity run ") {
		t.Errorf("%s %s without its run's check carries no kept model error: %+v", lab, kt.Test, v)
	}
	// A kind run's figures are the real CNI's: no model error.
	doc.Run.Provider = "kind"
	if v, _ := FromResults(doc, nil).Candidates[0].Metric("dts", results.ThroughputBps); v.ModelError != nil {
		t.Error("a kind figure carries a model error")
	}
}

// TestRankWithinModelError: flannel's netns figure is 25 % above calico's
// and their noise intervals are far apart, so flannel places first alone.
// If flannel's model is measured +30 % (+20…+40 %) above the real CNI,
// the real flannel may sit at 7.1–8.4 Gbit/s, overlapping calico's 8: the
// ranking keeps the places but says the order is within model error. A
// model error of ±2 % leaves the order standing without a note.
func TestRankWithinModelError(t *testing.T) {
	env := Environment{Name: "e", Variants: "any", Criteria: []Criterion{{Name: "thr", Metric: results.ThroughputBps, Test: "dts", Weight: 1}}}
	cases := []struct {
		name     string
		err      *ModelError
		wantNote bool
	}{
		{name: "no model error", err: nil},
		{name: "model error +30 %", err: &ModelError{Pct: 30, LowPct: 20, HighPct: 40, Verdict: results.FidelityDiffers, From: "this run"}, wantNote: true},
		{name: "model error ±2 %", err: &ModelError{Pct: 0, LowPct: -2, HighPct: 2, Verdict: results.FidelityHolds, From: "this run"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flannel := &Candidate{Name: "flannel", CNI: "flannel", Encryption: "none"}
			flannel.SetMetric("dts", results.ThroughputBps, Value{V: 10e9, Lo: 9.9e9, Hi: 10.1e9, Level: 0.969, ModelError: tc.err})
			calico := withCI("calico", "dts", results.ThroughputBps, 8e9, 7.9e9, 8.1e9)
			r := Rank(&Input{Name: "t", Candidates: []*Candidate{calico, flannel}}, env)
			if got := r.Order(); len(got) != 2 || got[0] != "flannel" || r.Ranking[0].Place == r.Ranking[1].Place {
				t.Fatalf("order %v places %d,%d: want flannel alone first", got, r.Ranking[0].Place, r.Ranking[1].Place)
			}
			note := r.Ranking[1].WithinModelError
			if tc.wantNote != (note != "") {
				t.Fatalf("calico's note %q, want a note: %v", note, tc.wantNote)
			}
			if tc.wantNote && !strings.Contains(note, "within model error: flannel above calico") {
				t.Errorf("note %q does not name the pair", note)
			}
			if e := r.Ranking[0]; tc.err != nil && tc.wantNote && e.ModelScoreLow >= e.ScoreLow {
				t.Errorf("flannel's model-error score interval %.1f–%.1f is not wider than its noise interval %.1f–%.1f", e.ModelScoreLow, e.ModelScoreHigh, e.ScoreLow, e.ScoreHigh)
			}
		})
	}
}

// TestTwoProviderRunRanksTheRealCNIs: a netns,kind run holds every CNI
// twice; the ranking takes the kind figures, never a mix, and says so.
func TestTwoProviderRunRanksTheRealCNIs(t *testing.T) {
	sum := func(provider string, v float64) results.Summary {
		return results.Summary{Lab: "flannel", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.ThroughputBps,
			Median: v, N: 6, Provider: provider}
	}
	doc := &results.Document{Run: results.Run{ID: "r3", Provider: "netns,kind"},
		Labs: []results.Lab{{Name: "flannel", CNI: "flannel", Provider: "netns", Status: results.StatusOK},
			{Name: "flannel", CNI: "flannel", Provider: "kind", Status: results.StatusOK}},
		Summaries: []results.Summary{sum("kind", 5e9), sum("netns", 9e9)}}
	in := FromResults(doc, nil)
	if len(in.Candidates) != 1 {
		t.Fatalf("%d candidates, want one flannel", len(in.Candidates))
	}
	v, ok := in.Candidates[0].Metric("dts", results.ThroughputBps)
	if !ok || v.V != 5e9 || !strings.HasPrefix(v.Source, "kind") {
		t.Errorf("flannel dts %+v, want the kind figure 5e9", v)
	}
	if !slices.ContainsFunc(in.Notes, func(n string) bool { return strings.Contains(n, "ranked from the kind provider's figures") }) {
		t.Errorf("notes %q do not say which provider was ranked", in.Notes)
	}
}
