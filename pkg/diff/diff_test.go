package diff

import (
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

func sum(lab, metric string, median, lo, hi float64) results.Summary {
	return results.Summary{Lab: lab, Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: metric, Median: median,
		CI95Low: lo, CI95High: hi, N: 3, Provider: "netns", Fidelity: results.Faithful}
}

func TestCompare(t *testing.T) {
	old := &results.Document{Summaries: []results.Summary{
		sum("flannel", results.ThroughputBps, 10e9, 9.5e9, 10.5e9),
		sum("calico", results.ThroughputBps, 12e9, 11e9, 13e9),
		sum("cilium", results.ThroughputBps, 12e9, 11.9e9, 12.1e9),
		sum("cilium", results.MCPUPerGbit, 100, 98, 102),
		sum("weave", results.ThroughputBps, 5e9, 4e9, 6e9),
	}}
	cur := &results.Document{Summaries: []results.Summary{
		sum("flannel", results.ThroughputBps, 8e9, 7.5e9, 8.5e9), // −20 %, outside: regression
		sum("calico", results.ThroughputBps, 12.8e9, 12e9, 13e9), // +6.7 % but inside old CI: same
		sum("cilium", results.ThroughputBps, 13.5e9, 13e9, 14e9), // +12.5 %: improvement
		sum("cilium", results.MCPUPerGbit, 120, 118, 122),        // lower is better: +20 % is a regression
		sum("canal", results.ThroughputBps, 9e9, 8e9, 10e9),
	}}
	got := map[string]Verdict{}
	for _, r := range Compare(old, cur, 5) {
		got[r.Key] = r.Verdict
	}
	for k, v := range map[string]Verdict{
		"flannel@netns throughput dts cross-node throughput_bps": Regression,
		"calico@netns throughput dts cross-node throughput_bps":  Same,
		"cilium@netns throughput dts cross-node throughput_bps":  Improvement,
		"cilium@netns throughput dts cross-node mcpu_per_gbit":   Regression,
		"weave@netns throughput dts cross-node throughput_bps":   OnlyOld,
		"canal@netns throughput dts cross-node throughput_bps":   OnlyNew,
	} {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	// A small move is never news, even outside a narrow interval.
	small := &results.Document{Summaries: []results.Summary{sum("cilium", results.ThroughputBps, 12.3e9, 12.2e9, 12.4e9)}}
	for _, r := range Compare(old, small, 5) {
		if r.Key == "cilium@netns throughput dts cross-node throughput_bps" && r.Verdict != Same {
			t.Errorf("2.5 %% move judged %s", r.Verdict)
		}
	}
}

// TestCompareKeepsProvidersApart: flannel on netns and flannel on kind are
// two figures, never compared with each other.
func TestCompareKeepsProvidersApart(t *testing.T) {
	kindSum := sum("flannel", results.ThroughputBps, 4e9, 3.9e9, 4.1e9)
	kindSum.Provider, kindSum.Fidelity = "kind", results.Real
	old := &results.Document{Summaries: []results.Summary{sum("flannel", results.ThroughputBps, 10e9, 9.5e9, 10.5e9)}}
	cur := &results.Document{Summaries: []results.Summary{kindSum}}
	got := map[string]Verdict{}
	for _, r := range Compare(old, cur, 5) {
		got[r.Key] = r.Verdict
	}
	if got["flannel@netns throughput dts cross-node throughput_bps"] != OnlyOld || got["flannel@kind throughput dts cross-node throughput_bps"] != OnlyNew {
		t.Errorf("verdicts %v: a netns figure was compared with a kind one", got)
	}
}
