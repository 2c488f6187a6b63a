package report

import (
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

func TestFidelityMarkdown(t *testing.T) {
	lo, hi := 41.9, 58.6
	addedModel, addedReal := 156.1, 103.8
	doc := &results.Document{Fidelity: &results.FidelityCheck{Model: "netns", Real: "kind", HoldsPct: 10, HoldsIntervalPct: 15, DiffersPct: 10,
		Rows: []results.FidelityRow{
			{Lab: "cilium", Test: "dts", Placement: "cross-node", Label: results.Approximate, ModelRatio: 0.9, ModelRatioLow: 0.88, ModelRatioHigh: 0.92,
				RealRatio: 0.6, RealRatioLow: 0.58, RealRatioHigh: 0.62, ErrorPct: 50, ErrorLowPct: &lo, ErrorHighPct: &hi, Verdict: results.FidelityDiffers, ModelN: 5, RealN: 5},
			{Lab: "flannel", Test: "dus", Placement: "cross-node", Label: results.Faithful, Verdict: results.FidelityUndecided, Why: "no kind host baseline for this test"},
			{Lab: "flannel", Scenario: "latency", Test: "dcrr", Placement: "cross-node", Metric: results.LatencyP50, Label: results.Approximate, ModelRatio: 2.19, RealRatio: 1.37,
				ErrorPct: 65.9, Verdict: results.FidelityUndecided, Why: "no interval", ModelN: 6, RealN: 6, ModelAdded: &addedModel, RealAdded: &addedReal},
		},
		Labs:       []results.FidelityLab{{Lab: "cilium", Label: results.Approximate, Verdict: results.FidelityDiffers, Differs: 1, MaxAbsErrorPct: 50}},
		Unverified: []results.FidelityMissing{{Lab: "calico", Why: "unverified here: not reproducible here: no image source for calico"}},
	}}
	var b strings.Builder
	if err := FidelityMarkdown(&b, doc); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## Fidelity: the netns models against the real CNIs (kind)",
		"| cilium | dts | cross-node | approximate | 0.90 (0.88–0.92) | 0.60 (0.58–0.62) | +50.0 % | +41.9 … +58.6 % | differs | – | 5/5 |",
		"| +156.1 / +103.8 µs | 6/6 |",
		"| flannel | dus | cross-node | faithful | – | – | – | – | undecided (noise): no kind host baseline for this test |",
		"| cilium | approximate | **differs** | 0 | 1 | 0 | 50 % |",
		"- calico: unverified here: not reproducible here: no image source for calico",
		"**holds** when |error| ≤ 10 % and the interval lies inside ±15 %",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("fidelity section lacks %q:\n%s", want, md)
		}
	}
	b.Reset()
	if err := FidelityMarkdown(&b, &results.Document{}); err != nil || b.Len() != 0 {
		t.Errorf("a run without the check wrote %q, %v", b.String(), err)
	}
}
