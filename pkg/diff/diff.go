// Package diff compares two results documents summary by summary, for
// nightly runs, judging every figure with both runs' uncertainty.
//
// The rule: a figure changed only when
//
//  1. both runs measured it with the same provider and fidelity — a
//     mismatch is NotComparable, an error, never "same";
//  2. its median moved by at least the threshold (--min-change, 5 % by
//     default), relative to the old median;
//  3. both runs have at least MinWindows windows behind it; with fewer the
//     verdict is Undecided;
//  4. the two medians' order-statistic intervals (ci95_low..ci95_high, the
//     interval that belongs to the median shown) do not overlap.
//
// Non-overlap of the two medians' intervals was chosen over Welch's test
// on the means because the figure shown and ranked is the median, and
// because the test must hold for the bimodal samples placement produces
// (Welch assumes near-normal means and has 2–4 degrees of freedom at
// n = 3). The rule is distribution-free: with n windows per run, n = 3..8,
// both intervals are min..max, and two runs of an unchanged datapath have
// disjoint ranges with probability 2/C(2n, n) — 10 % at n = 3, 0.8 % at
// n = 5, 0.2 % at n = 6. The threshold removes most of the n = 3 ones;
// the stable profile (n = 6) makes the rule strict.
//
// An old median of 0 has no relative change: the threshold cannot apply,
// so the intervals alone decide, and the change is reported as ±Inf %.
// A metric with no direction (results.Neutral: pod_mtu, rule counts, ...)
// that changed is Changed, neither a regression nor an improvement.
package diff

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/cnilab/cnilab/pkg/results"
)

// MinWindows is the fewest windows per run a change can rest on: below
// it the median's interval covers less than 75 % and two runs' ranges are
// disjoint by chance a third of the time or more.
const MinWindows = 3

// Verdict of one compared figure.
type Verdict string

const (
	Same        Verdict = "same"
	Regression  Verdict = "regression"
	Improvement Verdict = "improvement"
	// Changed: a neutral metric moved beyond both runs' noise.
	Changed Verdict = "changed"
	// Undecided: the median moved past the threshold, but the runs cannot
	// say whether beyond noise (too few windows, or an interval that is
	// not the median's).
	Undecided Verdict = "undecided"
	// NotComparable: the two runs measured the figure with different
	// providers or fidelities; comparing them would be meaningless.
	NotComparable Verdict = "not-comparable"
	OnlyOld       Verdict = "only-old"
	OnlyNew       Verdict = "only-new"
)

// Row is one compared summary.
type Row struct {
	Key      string
	Metric   string
	Unit     string
	Old, New *results.Summary
	// ChangePct is (new−old)/|old| in percent; ±Inf when old is 0.
	ChangePct float64
	Verdict   Verdict
	Why       string
}

// key names a figure across the two runs. When either run measured one
// lab with two providers (netns and kind), a lab is its name on its
// provider (flannel@netns is not flannel@kind); otherwise the provider is
// left out of the key, so the same figure measured by another provider is
// found and judged NotComparable.
func key(s results.Summary, withProvider bool) string {
	var params []string
	for k, v := range s.Params {
		params = append(params, k+"="+v)
	}
	sort.Strings(params)
	lab := s.Lab
	if withProvider {
		lab += "@" + s.Provider
	}
	parts := []string{lab, s.Scenario, s.Test}
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
	// Provider in the key only where a run holds one lab on two providers
	// (a netns,kind run): elsewhere a provider change is NotComparable.
	multi := false
	for _, d := range []*results.Document{old, cur} {
		providerOf := map[string]string{}
		for _, s := range d.Summaries {
			if p, ok := providerOf[s.Lab]; ok && p != s.Provider {
				multi = true
			}
			providerOf[s.Lab] = s.Provider
		}
	}
	olds := map[string]results.Summary{}
	for _, s := range old.Summaries {
		olds[key(s, multi)] = s
	}
	seen := map[string]bool{}
	var rows []Row
	for _, s := range cur.Summaries {
		k := key(s, multi)
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

// medianCIMethod is the only interval the rule reads (compare.CIMethod).
const medianCIMethod = "order-statistic"

func judge(o, n results.Summary, minPct float64) (Verdict, float64, string) {
	if o.Provider != n.Provider || o.Fidelity != n.Fidelity {
		return NotComparable, 0, fmt.Sprintf("measured by %s/%s in the old run and %s/%s in the new one", o.Provider, o.Fidelity, n.Provider, n.Fidelity)
	}
	var change float64
	switch {
	case o.Median == 0 && n.Median == 0:
		return Same, 0, "zero in both runs"
	case o.Median == 0:
		change = math.Copysign(math.Inf(1), n.Median)
	default:
		change = 100 * (n.Median - o.Median) / math.Abs(o.Median)
		if math.Abs(change) < minPct {
			return Same, change, fmt.Sprintf("moved %.1f %%, under the %g %% threshold", change, minPct)
		}
	}
	if o.N < MinWindows || n.N < MinWindows {
		return Undecided, change, fmt.Sprintf("%d and %d windows: at least %d per run are needed to tell a change from noise", o.N, n.N, MinWindows)
	}
	if o.CIMethod != medianCIMethod || n.CIMethod != medianCIMethod {
		return Undecided, change, fmt.Sprintf("interval method %q vs %q: a run from before ci_method carries the mean's interval, not the median's; re-run it", o.CIMethod, n.CIMethod)
	}
	intervals := fmt.Sprintf("old %s (%s), new %s (%s)", span(o), level(o.CILevel), span(n), level(n.CILevel))
	moved := fmt.Sprintf("moved %.1f %%", change)
	if o.Median == 0 {
		moved = fmt.Sprintf("moved from 0 to %.4g (no relative change; the threshold does not apply)", n.Median)
	}
	if n.CI95Low <= o.CI95High && o.CI95Low <= n.CI95High {
		return Same, change, fmt.Sprintf("%s inside the noise: the medians' intervals overlap, %s", moved, intervals)
	}
	beyond := fmt.Sprintf("%s beyond both runs' noise: %s", moved, intervals)
	switch results.Better(n.Metric) {
	case results.Neutral:
		return Changed, change, beyond
	case results.Lower:
		if change > 0 {
			return Regression, change, beyond
		}
	default:
		if change < 0 {
			return Regression, change, beyond
		}
	}
	return Improvement, change, beyond
}

// span is a summary's interval in its unit, bit rates in Gbit/s.
func span(s results.Summary) string {
	if s.Unit == "bit/s" {
		return fmt.Sprintf("%.2f–%.2f Gbit/s", s.CI95Low/1e9, s.CI95High/1e9)
	}
	return strings.TrimSpace(fmt.Sprintf("%.4g–%.4g %s", s.CI95Low, s.CI95High, s.Unit))
}

func level(l float64) string { return fmt.Sprintf("%.3g %%", 100*l) }
