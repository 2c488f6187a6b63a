// Package diff compares two results documents summary by summary, for
// nightly runs: a change counts as a regression or improvement only when the
// new median lies outside the old run's 95% interval and moved by more than
// a threshold, so run-to-run noise is not reported as news.
package diff

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/cnilab/cnilab/pkg/results"
)

// Verdict of one compared figure.
type Verdict string

const (
	Same        Verdict = "same"
	Regression  Verdict = "regression"
	Improvement Verdict = "improvement"
	OnlyOld     Verdict = "only-old"
	OnlyNew     Verdict = "only-new"
)

// Row is one compared summary.
type Row struct {
	Key      string
	Metric   string
	Unit     string
	Old, New *results.Summary
	// ChangePct is (new−old)/old in percent.
	ChangePct float64
	Verdict   Verdict
	Why       string
}

func key(s results.Summary) string {
	var params []string
	for k, v := range s.Params {
		params = append(params, k+"="+v)
	}
	sort.Strings(params)
	// A lab is its name on its provider: flannel@netns is not flannel@kind.
	parts := []string{s.Lab + "@" + s.Provider, s.Scenario, s.Test}
	if s.Placement != "" {
		parts = append(parts, s.Placement)
	}
	if s.Proxy != "" {
		parts = append(parts, s.Proxy)
	}
	parts = append(parts, params...)
	return strings.Join(parts, " ") + " " + s.Metric
}

// Compare returns every figure of both documents with a verdict. minPct is
// the smallest relative change that can count (e.g. 5).
func Compare(old, cur *results.Document, minPct float64) []Row {
	olds := map[string]results.Summary{}
	for _, s := range old.Summaries {
		olds[key(s)] = s
	}
	seen := map[string]bool{}
	var rows []Row
	for _, s := range cur.Summaries {
		k := key(s)
		seen[k] = true
		n := s
		r := Row{Key: k, Metric: s.Metric, Unit: s.Unit, New: &n}
		o, ok := olds[k]
		if !ok {
			r.Verdict, r.Why = OnlyNew, "not in the old run"
			rows = append(rows, r)
			continue
		}
		r.Old = &o
		r.Verdict, r.ChangePct, r.Why = judge(o, s, minPct)
		rows = append(rows, r)
	}
	for k, o := range olds {
		if !seen[k] {
			oc := o
			rows = append(rows, Row{Key: k, Metric: o.Metric, Unit: o.Unit, Old: &oc, Verdict: OnlyOld, Why: "not in the new run"})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows
}

func judge(o, n results.Summary, minPct float64) (Verdict, float64, string) {
	if o.Median == 0 {
		return Same, 0, "old median is zero"
	}
	change := 100 * (n.Median - o.Median) / math.Abs(o.Median)
	if math.Abs(change) < minPct {
		return Same, change, fmt.Sprintf("moved %.1f %%, under the %.0f %% threshold", change, minPct)
	}
	if o.N > 1 && n.Median >= o.CI95Low && n.Median <= o.CI95High {
		return Same, change, "inside the old run's 95% interval"
	}
	if o.Provider != n.Provider || o.Fidelity != n.Fidelity {
		return Same, change, fmt.Sprintf("not comparable: %s/%s vs %s/%s", o.Provider, o.Fidelity, n.Provider, n.Fidelity)
	}
	worse := change < 0
	if results.LowerIsBetter(n.Metric) {
		worse = change > 0
	}
	if worse {
		return Regression, change, fmt.Sprintf("moved %.1f %%, outside the old 95%% interval", change)
	}
	return Improvement, change, fmt.Sprintf("moved %.1f %%, outside the old 95%% interval", change)
}
