package rank

import (
	"fmt"
	"math"
	"strings"

	"github.com/cnilab/cnilab/pkg/fidelity"
	"github.com/cnilab/cnilab/pkg/results"
)

// ModelError is a netns model's measured error against the real CNI on
// one test (results.FidelityRow, reduced): model ratio / real ratio − 1,
// in percent, with its interval and verdict.
type ModelError struct {
	Pct     float64                 `json:"pct"`
	LowPct  float64                 `json:"low_pct"`
	HighPct float64                 `json:"high_pct"`
	Verdict results.FidelityVerdict `json:"verdict"`
	// From says which fidelity run measured it ("this run", "kept
	// fidelity run 4c6d17 (2026-12-01)").
	From string `json:"from"`
}

// Bound is the largest error the interval allows, in percent: how far the
// model's figure may sit from the real CNI's.
func (e ModelError) Bound() float64 {
	return math.Max(math.Abs(e.LowPct), math.Abs(e.HighPct))
}

// modelErrorRow is one test's measured model error, from this run's
// fidelity section or from the kept summary.
type modelErrorRow struct {
	lab, test, placement, metric string
	err                          ModelError
}

// modelErrorRows are the model errors that apply to a netns run: its own
// fidelity section when it measured both providers, else the kept summary
// this binary was built with (reports/fidelity/summary.json), whose run is
// named. Rows without an interval are left out: they bound nothing.
func modelErrorRows(doc *results.Document) []modelErrorRow {
	var out []modelErrorRow
	if fc := doc.Fidelity; fc != nil {
		if doc.Run.Provider != fc.Model {
			return nil
		}
		for _, r := range fc.Rows {
			if r.ErrorLowPct == nil || r.ErrorHighPct == nil {
				continue
			}
			out = append(out, modelErrorRow{r.Lab, r.Test, r.Placement, r.Metric,
				ModelError{Pct: r.ErrorPct, LowPct: *r.ErrorLowPct, HighPct: *r.ErrorHighPct, Verdict: r.Verdict, From: "this run"}})
		}
		return out
	}
	if doc.Run.Provider != fidelity.ModelProvider {
		return nil
	}
	k, err := fidelity.Embedded()
	if err != nil {
		return nil
	}
	for _, l := range k.Labs {
		run := l.Run
		if run == "" {
			run = k.RunID
		}
		for _, t := range l.Tests {
			if t.ErrorLowPct == nil || t.ErrorHighPct == nil {
				continue
			}
			out = append(out, modelErrorRow{l.Lab, t.Test, t.Placement, fidelity.CheckedMetric(t.Test),
				ModelError{Pct: t.ErrorPct, LowPct: *t.ErrorLowPct, HighPct: *t.ErrorHighPct, Verdict: t.Verdict,
					From: fmt.Sprintf("kept fidelity run %s (%s)", run, k.Date)}})
		}
	}
	return out
}

// applyModelError is one pass over a netns run's figures: each figure a
// fidelity check measured (same lab and test; cross-node preferred)
// carries the model's error, and its source says so, so the evidence rows
// show it.
func applyModelError(in *Input, doc *results.Document) {
	rows := modelErrorRows(doc)
	if len(rows) == 0 {
		return
	}
	for _, c := range in.Candidates {
		for k, v := range c.metrics {
			test, metric, _ := strings.Cut(k, "/")
			var best *modelErrorRow
			for i := range rows {
				r := &rows[i]
				if r.lab != c.Name || r.test != test || r.metric != metric {
					continue
				}
				if best == nil || r.placement == "cross-node" {
					best = r
				}
			}
			if best == nil {
				continue
			}
			e := best.err
			v.ModelError = &e
			v.Source += fmt.Sprintf("; model error vs the real CNI %+.0f %% (%+.0f…%+.0f %%, %s; %s)", e.Pct, e.LowPct, e.HighPct, e.Verdict, e.From)
			c.metrics[k] = v
		}
	}
}

// realInterval is the interval a netns figure's real-CNI counterpart may
// lie in, given the model's measured error: the figure's own interval
// (lo..hi, or the point) divided by 1 + error at the error's ends. An
// error interval reaching −100 % leaves the top unbounded.
func (e ModelError) realInterval(lo, hi float64) (float64, float64) {
	top := math.Inf(1)
	if d := 1 + e.LowPct/100; d > 0 {
		top = hi / d
	}
	return lo / (1 + math.Max(e.HighPct, -99.99)/100), top
}

// WithinModelError reports whether two figures differ by less than the
// model error either carries, so an order between them says nothing about
// the real CNIs; why says so in words ("within model error: 4 % apart,
// model error up to 17 %"). Figures without a model error are never
// within it.
func WithinModelError(a, b Value) (within bool, why string) {
	bound := 0.0
	for _, v := range []Value{a, b} {
		if v.ModelError != nil {
			bound = math.Max(bound, v.ModelError.Bound())
		}
	}
	if bound == 0 || a.V == 0 || b.V == 0 {
		return false, ""
	}
	gap := 100 * math.Abs(a.V/b.V-1)
	if gap >= bound {
		return false, ""
	}
	return true, fmt.Sprintf("within model error: %.0f %% apart, model error up to %.0f %%", gap, bound)
}
