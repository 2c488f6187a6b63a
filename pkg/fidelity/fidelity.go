// Package fidelity checks cnilab's netns datapath models against the real
// CNIs: from a run that measured both providers, each model's ratio to its
// own host baseline is set against the real CNI's ratio to its own, per
// test, with the error, its interval and a verdict. The section it builds
// is results.FidelityCheck (the design is documented there); Kept is the
// small summary kept in the repo (reports/fidelity/) that backs the labels
// in README.md and labs/*.yaml, and CheckLabels says where they disagree.
package fidelity

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/cnilab/cnilab/pkg/results"
)

// Providers compared: the model and the real CNI.
const (
	ModelProvider = "netns"
	RealProvider  = "kind"
	// HostLab is the baseline each provider's ratios are taken against.
	HostLab = "host"
)

// Verdict bounds, as fractions.
const (
	HoldsBound         = 0.10
	HoldsIntervalBound = 0.15
	DiffersBound       = 0.10
)

// metricOf is the figure a scenario's tests are checked on, "" for none.
func metricOf(scenario, test string) string {
	if test == "idle" || (scenario != "throughput" && scenario != "latency") {
		return ""
	}
	return CheckedMetric(test)
}

// Verdict judges an error and its interval (fractions, not percent): holds
// when |err| ≤ 10 % and the interval lies inside ±15 %, differs when the
// interval lies entirely beyond +10 % or entirely below −10 %, otherwise
// undecided. Without an interval nothing is decided.
func Verdict(err float64, low, high *float64) results.FidelityVerdict {
	if low == nil || high == nil {
		return results.FidelityUndecided
	}
	switch {
	case math.Abs(err) <= HoldsBound && *low >= -HoldsIntervalBound && *high <= HoldsIntervalBound:
		return results.FidelityHolds
	case *low > DiffersBound || *high < -DiffersBound:
		return results.FidelityDiffers
	}
	return results.FidelityUndecided
}

type sumKey struct{ provider, lab, scenario, test, placement, metric string }

func keyOf(s results.Summary) sumKey {
	return sumKey{s.Provider, s.Lab, s.Scenario, s.Test, s.Placement, s.Metric}
}

// hostTest is the host test a lab's test is divided by: a service test by
// the host's direct one (the host has no service proxy).
func hostTest(test string) string {
	if len(test) >= 3 && test[0] == 's' {
		return "d" + test[1:]
	}
	return test
}

// hostPlacement is the host baseline's placement a row is divided by:
// cross-node for both placements. kind's same-node host pair are two
// hostNetwork pods in one node's namespace, which talk over loopback (64 KiB
// MTU, no veth: 3.5 Gbit/s single-stream UDP here against 1.07 over the
// netns same-node baseline's veth), so a same-node ratio to it would
// compare a pod path with loopback on kind and with a veth on netns. The
// cross-node baselines are the same construction on both providers (two
// node namespaces, or two node containers, over a bridge).
func hostPlacement(string) string { return "cross-node" }

// ratioInterval is a summary's ratio to its host with the ratio's
// interval: the summary's own RatioCI95Low/High where set, else built from
// the lab's and the host's median intervals at their widest. ok is false
// when the summary has no ratio; the interval is nil when neither source
// gives one.
// With no interval, from says why.
func ratioInterval(s results.Summary, host *results.Summary) (r float64, low, high *float64, from string, ok bool) {
	if host != nil && host.Placement != s.Placement {
		// Divided by another placement's baseline than the summary's
		// own ratio: from the medians.
		if host.Median <= 0 {
			return 0, nil, nil, "", false
		}
		r = s.Median / host.Median
	} else {
		if s.RatioToHost == nil {
			return 0, nil, nil, "", false
		}
		r = *s.RatioToHost
		if s.RatioCI95Low != nil && s.RatioCI95High != nil {
			return r, s.RatioCI95Low, s.RatioCI95High, "ratio interval", true
		}
	}
	switch {
	case host == nil || s.N < 2 || host.N < 2:
		n := 0
		if host != nil {
			n = host.N
		}
		return r, nil, nil, fmt.Sprintf("n=%d over a host of n=%d", s.N, n), true
	case host.CI95Low <= 0:
		return r, nil, nil, "the host's interval reaches 0: the ratio's is unbounded", true
	}
	lo, hi := s.CI95Low/host.CI95High, s.CI95High/host.CI95Low
	return r, &lo, &hi, "median intervals", true
}

// Compute builds the fidelity section of a run that measured both
// providers; nil when the document has no summaries of one of them.
func Compute(doc *results.Document) *results.FidelityCheck {
	by := map[sumKey]results.Summary{}
	has := map[string]bool{}
	for _, s := range doc.Summaries {
		if len(s.Params) > 0 {
			continue
		}
		by[keyOf(s)] = s
		has[s.Provider] = true
	}
	policy := PolicyCases(doc)
	if (!has[ModelProvider] || !has[RealProvider]) && len(policy) == 0 {
		return nil
	}
	fc := &results.FidelityCheck{Model: ModelProvider, Real: RealProvider,
		HoldsPct: 100 * HoldsBound, HoldsIntervalPct: 100 * HoldsIntervalBound, DiffersPct: 100 * DiffersBound, Policy: policy}
	host := func(provider string, s results.Summary) *results.Summary {
		h, ok := by[sumKey{provider, HostLab, s.Scenario, hostTest(s.Test), hostPlacement(s.Placement), s.Metric}]
		if !ok {
			return nil
		}
		return &h
	}
	windows := indexWindows(doc.Measurements)
	for _, m := range doc.Summaries {
		if m.Provider != ModelProvider || m.Lab == HostLab || len(m.Params) > 0 || m.Metric != metricOf(m.Scenario, m.Test) {
			continue
		}
		k := keyOf(m)
		k.provider = RealProvider
		r, ok := by[k]
		if !ok {
			continue
		}
		row := results.FidelityRow{Lab: m.Lab, Scenario: m.Scenario, Test: m.Test, Placement: m.Placement, Metric: m.Metric,
			Label: m.Fidelity, ModelN: m.N, RealN: r.N}
		if l, ok := doc.LabOf(m.Lab, ModelProvider); ok {
			row.CNI, row.Label = l.CNI, l.Fidelity
		}
		mh, rh := host(ModelProvider, m), host(RealProvider, r)
		mr, mlo, mhi, mfrom, mok := ratioInterval(m, mh)
		rr, rlo, rhi, rfrom, rok := ratioInterval(r, rh)
		if m.Scenario == "latency" && m.Placement == "cross-node" && mh != nil && rh != nil {
			ma, ra := m.Median-mh.Median, r.Median-rh.Median
			row.ModelAdded, row.RealAdded = &ma, &ra
		}
		switch {
		case !mok:
			row.Verdict, row.Why = results.FidelityUndecided, "no netns host baseline for this test"
		case !rok:
			row.Verdict, row.Why = results.FidelityUndecided, "no kind host baseline for this test"
		case rr <= 0:
			row.Verdict, row.Why = results.FidelityUndecided, "the real CNI's ratio is 0"
		default:
			row.ModelRatio, row.RealRatio = mr, rr
			e := mr/rr - 1
			row.ErrorPct = 100 * e
			var lo, hi *float64
			var noInterval []string
			if mlo == nil {
				noInterval = append(noInterval, "model: "+mfrom)
			}
			if rlo == nil {
				noInterval = append(noInterval, "real: "+rfrom)
			} else if *rlo <= 0 {
				noInterval = append(noInterval, "real: the ratio's interval reaches 0")
			}
			if len(noInterval) == 0 {
				row.ModelRatioLow, row.ModelRatioHigh = *mlo, *mhi
				row.RealRatioLow, row.RealRatioHigh = *rlo, *rhi
				l, h := *mlo / *rhi - 1, *mhi / *rlo - 1
				lo, hi = &l, &h
				lp, hp := 100*l, 100*h
				row.ErrorLowPct, row.ErrorHighPct = &lp, &hp
				row.IntervalFrom = mfrom
				if mfrom != rfrom {
					row.IntervalFrom = mfrom + " (model), " + rfrom + " (real)"
				}
			}
			if p, ok := windows.paired(m.Lab, m.Scenario, m.Test, m.Placement, m.Metric); ok {
				// The per-repeat errors replace the stacked
				// intervals: the headline is their median, and the
				// interval is that median's own.
				l, h := p.interval.Low, p.interval.High
				lo, hi = &l, &h
				row.ErrorPct = 100 * p.median
				lp, hp := 100*l, 100*h
				row.ErrorLowPct, row.ErrorHighPct = &lp, &hp
				row.ErrorLevel, row.Pairs = p.interval.Level, p.pairs
				row.IntervalFrom = p.describe()
				noInterval = nil
				if p.interval.Level < MinPairedLevel {
					row.Verdict = results.FidelityUndecided
					row.Why = fmt.Sprintf("%d pairs: the interval covers %.1f %%, below %.0f %%", p.pairs, 100*p.interval.Level, 100*MinPairedLevel)
					fc.Rows = append(fc.Rows, row)
					continue
				}
				row.Verdict = Verdict(p.median, lo, hi)
			} else {
				row.Verdict = Verdict(e, lo, hi)
			}
			if lo == nil {
				row.Why = "no interval (" + strings.Join(noInterval, "; ") + ")"
			}
		}
		fc.Rows = append(fc.Rows, row)
	}
	sort.SliceStable(fc.Rows, func(i, j int) bool {
		a, b := fc.Rows[i], fc.Rows[j]
		if a.Lab != b.Lab {
			return a.Lab < b.Lab
		}
		if a.Placement != b.Placement {
			return a.Placement < b.Placement
		}
		if a.Scenario != b.Scenario {
			return a.Scenario > b.Scenario // throughput before latency
		}
		return TestOrder(a.Test) < TestOrder(b.Test)
	})
	fc.Labs = labVerdicts(fc.Rows)
	for _, l := range doc.Labs {
		if l.Provider != RealProvider || l.Name == HostLab || l.Status == results.StatusOK {
			continue
		}
		if _, ok := doc.LabOf(l.Name, ModelProvider); !ok {
			continue
		}
		why := "unverified here: " + l.Error
		if l.Status == results.StatusFailed {
			why = "unverified here: the kind lab failed: " + l.Error
		}
		fc.Unverified = append(fc.Unverified, results.FidelityMissing{Lab: l.Name, Why: why})
	}
	return fc
}

// TestOrder is the order tests are listed in.
func TestOrder(t string) int {
	for i, o := range []string{"dts", "dtm", "dus", "dum", "sts", "stm", "sus", "sum", "drr", "dcrr", "srr", "scrr"} {
		if o == t {
			return i
		}
	}
	return 99
}

// labVerdicts sums the rows per lab: differs if any row differs, holds if
// every row holds, else undecided.
func labVerdicts(rows []results.FidelityRow) []results.FidelityLab {
	var out []results.FidelityLab
	idx := map[string]int{}
	for _, r := range rows {
		i, ok := idx[r.Lab]
		if !ok {
			i = len(out)
			idx[r.Lab] = i
			out = append(out, results.FidelityLab{Lab: r.Lab, CNI: r.CNI, Label: r.Label})
		}
		l := &out[i]
		switch r.Verdict {
		case results.FidelityHolds:
			l.Holds++
		case results.FidelityDiffers:
			l.Differs++
		default:
			l.Undecided++
		}
	}
	for i := range out {
		l := &out[i]
		switch {
		case l.Differs > 0:
			l.Verdict = results.FidelityDiffers
		case l.Undecided == 0:
			l.Verdict = results.FidelityHolds
		default:
			l.Verdict = results.FidelityUndecided
		}
		for _, r := range rows {
			if r.Lab != l.Lab || (l.Differs > 0 && r.Verdict != results.FidelityDiffers) || r.RealRatio == 0 {
				continue
			}
			l.MaxAbsErrorPct = math.Max(l.MaxAbsErrorPct, math.Abs(r.ErrorPct))
		}
	}
	return out
}

// ErrorFor is the model's measured error for one lab × test × placement
// (percent, with its interval), for evidence elsewhere (rank); ok is false
// when the check has no such row or the row has no interval.
func ErrorFor(fc *results.FidelityCheck, lab, test, placement string) (row results.FidelityRow, ok bool) {
	if fc == nil {
		return row, false
	}
	for _, r := range fc.Rows {
		if r.Lab == lab && r.Test == test && r.Placement == placement && r.ErrorLowPct != nil {
			return r, true
		}
	}
	return row, false
}

// policyScenario is the NetworkPolicy scenario's name in results
// (pkg/scenario/policy.Scenario).
const policyScenario = "policy"

// PolicyCases sets each policy case a lab finished on both providers side
// by side: agrees when the model's verdict is the real CNI's. Rows follow
// the labs' and cases' order of first appearance; a case measured more
// than once counts its last finished measurement.
func PolicyCases(doc *results.Document) []results.FidelityPolicyCase {
	type key struct{ provider, lab, test string }
	last := map[key]results.Measurement{}
	var order []key
	for _, m := range doc.Measurements {
		if m.Scenario != policyScenario || m.Error != "" || m.Params["case"] == "" || m.Params["verdict"] == "" {
			continue
		}
		k := key{m.Provider, m.Lab, m.Test}
		if _, seen := last[k]; !seen && m.Provider == ModelProvider {
			order = append(order, k)
		}
		last[k] = m
	}
	var out []results.FidelityPolicyCase
	for _, k := range order {
		mod := last[k]
		real, ok := last[key{RealProvider, k.lab, k.test}]
		if !ok {
			continue
		}
		row := results.FidelityPolicyCase{Lab: k.lab, Case: mod.Params["case"], Required: mod.Params["required"] == "true",
			ModelVerdict: mod.Params["verdict"], RealVerdict: real.Params["verdict"], Agreement: results.PolicyAgrees}
		if l, ok := doc.LabOf(k.lab, ModelProvider); ok {
			row.CNI = l.CNI
		}
		if row.ModelVerdict != row.RealVerdict {
			row.Agreement = results.PolicyDisagrees
		}
		out = append(out, row)
	}
	return out
}
