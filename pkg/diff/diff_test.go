package diff

import (
	"math"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

// sum is a summary as compare writes it: the median with its
// order-statistic interval (n = 3: min..max at 75 %).
func sum(lab, metric string, median, lo, hi float64) results.Summary {
	return results.Summary{Lab: lab, Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: metric, Unit: results.Unit(metric), Median: median,
		CI95Low: lo, CI95High: hi, CILevel: 0.75, CIMethod: "order-statistic", N: 3, Provider: "netns", Fidelity: results.Faithful}
}

func with(s results.Summary, f func(*results.Summary)) results.Summary {
	f(&s)
	return s
}

func TestJudge(t *testing.T) {
	tput := results.ThroughputBps
	cases := []struct {
		name     string
		old, new results.Summary
		want     Verdict
		change   float64
		why      string
	}{
		{"drop beyond both intervals", sum("f", tput, 10e9, 9.5e9, 10.5e9), sum("f", tput, 8e9, 7.5e9, 8.5e9), Regression, -20,
			"moved -20.0 % beyond both runs' noise: old 9.50–10.50 Gbit/s (75 %), new 7.50–8.50 Gbit/s (75 %)"},
		{"rise beyond both intervals", sum("f", tput, 12e9, 11.9e9, 12.1e9), sum("f", tput, 13.5e9, 13e9, 14e9), Improvement, 12.5, "beyond both runs' noise"},
		// +6.7 %: past the threshold, but 12.0–13.0 lies inside 11.0–13.0.
		{"intervals overlap", sum("f", tput, 12e9, 11e9, 13e9), sum("f", tput, 12.8e9, 12e9, 13e9), Same, 6.6667, "intervals overlap"},
		// New median 13.2 lies outside the old 11.9–12.5, which the old
		// rule called a change; the new interval 12.4–14.0 overlaps it.
		{"new median outside the old interval, intervals overlap", sum("f", tput, 12.2e9, 11.9e9, 12.5e9), sum("f", tput, 13.2e9, 12.4e9, 14e9), Same, 8.1967, "intervals overlap"},
		{"under the threshold", sum("f", tput, 12e9, 11.9e9, 12.1e9), sum("f", tput, 12.3e9, 12.2e9, 12.4e9), Same, 2.5, "under the 5 % threshold"},
		{"lower is better", sum("f", results.MCPUPerGbit, 100, 98, 102), sum("f", results.MCPUPerGbit, 120, 118, 122), Regression, 20, ""},
		{"neutral metric moved", sum("f", results.PodMTU, 1450, 1450, 1450), sum("f", results.PodMTU, 8950, 8950, 8950), Changed, 517.2414, "beyond both runs' noise"},
		{"provider mismatch", sum("f", tput, 10e9, 9.5e9, 10.5e9), with(sum("f", tput, 10e9, 9.5e9, 10.5e9), func(s *results.Summary) { s.Provider, s.Fidelity = "kind", results.Real }), NotComparable, 0,
			"measured by netns/faithful in the old run and kind/real in the new one"},
		{"fidelity mismatch", sum("f", tput, 10e9, 9.5e9, 10.5e9), with(sum("f", tput, 10e9, 9.5e9, 10.5e9), func(s *results.Summary) { s.Fidelity = results.Approximate }), NotComparable, 0, ""},
		{"old zero, new beyond", sum("f", results.Retransmits, 0, 0, 0), sum("f", results.Retransmits, 500, 300, 700), Regression, math.Inf(1), "moved from 0 to 500"},
		{"old zero, overlapping", sum("f", results.Retransmits, 0, 0, 4), sum("f", results.Retransmits, 2, 0, 9), Same, math.Inf(1), "intervals overlap"},
		{"zero in both", sum("f", results.Retransmits, 0, 0, 0), sum("f", results.Retransmits, 0, 0, 0), Same, 0, "zero in both runs"},
		{"two windows", with(sum("f", tput, 10e9, 9.5e9, 10.5e9), func(s *results.Summary) { s.N = 2 }), sum("f", tput, 8e9, 7.5e9, 8.5e9), Undecided, -20, "2 and 3 windows"},
		{"old run from before ci_method", with(sum("f", tput, 10e9, 9.5e9, 10.5e9), func(s *results.Summary) { s.CIMethod = "" }), sum("f", tput, 8e9, 7.5e9, 8.5e9), Undecided, -20, "mean's interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, change, why := judge(tc.old, tc.new, 5)
			sameChange := math.Abs(change-tc.change) < 1e-3 || change == tc.change
			if got != tc.want || !sameChange || !strings.Contains(why, tc.why) {
				t.Errorf("%s, %.4f %%, %q; want %s, %.4f %%, containing %q", got, change, why, tc.want, tc.change, tc.why)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	old := &results.Document{Summaries: []results.Summary{
		sum("flannel", results.ThroughputBps, 10e9, 9.5e9, 10.5e9),
		sum("weave", results.ThroughputBps, 5e9, 4e9, 6e9),
		sum("cilium", results.ThroughputBps, 12e9, 11.9e9, 12.1e9),
	}}
	kind := sum("cilium", results.ThroughputBps, 12e9, 11.9e9, 12.1e9)
	kind.Provider, kind.Fidelity = "kind", results.Real
	cur := &results.Document{Summaries: []results.Summary{
		sum("flannel", results.ThroughputBps, 8e9, 7.5e9, 8.5e9),
		sum("canal", results.ThroughputBps, 9e9, 8e9, 10e9),
		kind,
	}}
	got := map[string]Verdict{}
	for _, r := range Compare(old, cur, 5) {
		got[r.Key] = r.Verdict
	}
	for k, v := range map[string]Verdict{
		"flannel throughput dts cross-node throughput_bps": Regression,
		"weave throughput dts cross-node throughput_bps":   OnlyOld,
		"canal throughput dts cross-node throughput_bps":   OnlyNew,
		"cilium throughput dts cross-node throughput_bps":  NotComparable,
	} {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
}

// TestCompareKeepsProvidersApart: in runs that measured with both
// providers, flannel on netns and flannel on kind are two figures, each
// compared with its own kind.
func TestCompareKeepsProvidersApart(t *testing.T) {
	both := func(netns, kind float64) *results.Document {
		n := sum("flannel", results.ThroughputBps, netns, netns*0.98, netns*1.02)
		k := sum("flannel", results.ThroughputBps, kind, kind*0.98, kind*1.02)
		k.Provider, k.Fidelity = "kind", results.Real
		return &results.Document{Summaries: []results.Summary{n, k}}
	}
	got := map[string]Verdict{}
	for _, r := range Compare(both(10e9, 4e9), both(10e9, 3e9), 5) {
		got[r.Key] = r.Verdict
	}
	if len(got) != 2 || got["flannel@netns throughput dts cross-node throughput_bps"] != Same || got["flannel@kind throughput dts cross-node throughput_bps"] != Regression {
		t.Errorf("verdicts %v: want netns same and kind a regression, apart", got)
	}
}
