package rank

import (
	"fmt"
	"math"
	"strings"

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
}

// Bound is the largest error the interval allows, in percent: how far the
// model's figure may sit from the real CNI's.
func (e ModelError) Bound() float64 {
	return math.Max(math.Abs(e.LowPct), math.Abs(e.HighPct))
}

// applyModelError is one pass over a netns run's figures: each figure a
// fidelity check measured (same lab and test; cross-node preferred) carries
// the model's error, and its source says so, so the evidence rows show it.
func applyModelError(in *Input, doc *results.Document) {
	fc := doc.Fidelity
	if fc == nil || doc.Run.Provider != fc.Model {
		return
	}
	for _, c := range in.Candidates {
		for k, v := range c.metrics {
			test, metric, _ := strings.Cut(k, "/")
			var best *results.FidelityRow
			for i := range fc.Rows {
				r := &fc.Rows[i]
				if r.Lab != c.Name || r.Test != test || r.Metric != metric || r.ErrorLowPct == nil {
					continue
				}
				if best == nil || r.Placement == "cross-node" {
					best = r
				}
			}
			if best == nil {
				continue
			}
			v.ModelError = &ModelError{Pct: best.ErrorPct, LowPct: *best.ErrorLowPct, HighPct: *best.ErrorHighPct, Verdict: best.Verdict}
			v.Source += fmt.Sprintf("; model error vs the real CNI %+.0f %% (%+.0f…%+.0f %%, %s)", best.ErrorPct, *best.ErrorLowPct, *best.ErrorHighPct, best.Verdict)
			c.metrics[k] = v
		}
	}
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
