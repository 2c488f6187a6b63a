package fidelity

import (
	"fmt"

	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/stats"
)

// Pairing by repeat.
//
// The windows of one repeat of one test run back to back for every lab of
// both providers (schedule.Order: per repeat, per test and placement, each
// lab in turn), so the four windows one error needs — model, model host,
// real, real host — share whatever the machine was doing during that
// block. Their per-repeat error
//
//	e_r = (model_r / modelhost_r) / (real_r / realhost_r) − 1
//
// cancels that block-level drift, and the median of the e_r has its own
// distribution-free order-statistic interval (the same as every median in
// cnilab). Building the interval from the four summaries' intervals
// instead stacks four independent worst cases: at six repeats and a
// window-to-window spread of 3 %, about ±15 % against about ±8 % here.
// This needs the measurements; a document with only summaries falls back
// to the summaries' intervals (ratioInterval).

// MinPairedLevel is the coverage a paired interval must reach before its
// verdict counts: six pairs (min..max, 96.9 %). Fewer pairs give an
// interval that covers too little (75 % at three) to call a model
// faithful or wrong.
const MinPairedLevel = 0.95

// windowKey names one measured window's figure.
type windowKey struct {
	provider, lab, scenario, test, placement, metric string
}

// windowIndex holds, per lab × test × placement × metric, each repeat's
// figure from the windows that measured it (failed, not-reproducible and
// parameterised windows left out).
type windowIndex map[windowKey]map[int]float64

func indexWindows(ms []results.Measurement) windowIndex {
	idx := windowIndex{}
	for _, m := range ms {
		if m.Error != "" || m.NotReproducible != "" || len(m.Params) > 0 {
			continue
		}
		for metric, v := range m.Metrics {
			k := windowKey{m.Provider, m.Lab, m.Scenario, m.Test, m.Placement, metric}
			if idx[k] == nil {
				idx[k] = map[int]float64{}
			}
			idx[k][m.Repeat] = v
		}
	}
	return idx
}

// pairedError is a row's error from its per-repeat errors.
type pairedError struct {
	median   float64
	interval stats.Interval
	pairs    int
}

// paired computes the per-repeat errors of one row; ok is false when the
// measurements give fewer than two complete repeats.
func (idx windowIndex) paired(lab, scenario, test, placement, metric string) (pairedError, bool) {
	get := func(provider, lab, test, placement string) map[int]float64 {
		return idx[windowKey{provider, lab, scenario, test, placement, metric}]
	}
	hp := hostPlacement(placement) // in the same block: placements are the inner loop
	m, mh := get(ModelProvider, lab, test, placement), get(ModelProvider, HostLab, hostTest(test), hp)
	r, rh := get(RealProvider, lab, test, placement), get(RealProvider, HostLab, hostTest(test), hp)
	var errs []float64
	for rep, mv := range m {
		mhv, ok1 := mh[rep]
		rv, ok2 := r[rep]
		rhv, ok3 := rh[rep]
		if !ok1 || !ok2 || !ok3 || mhv <= 0 || rv <= 0 || rhv <= 0 {
			continue
		}
		errs = append(errs, (mv/mhv)/(rv/rhv)-1)
	}
	if len(errs) < 2 {
		return pairedError{}, false
	}
	ci, err := stats.MedianCI(errs)
	if err != nil {
		return pairedError{}, false
	}
	return pairedError{median: stats.Median(errs), interval: ci, pairs: len(errs)}, true
}

// describe says where a paired interval came from, for IntervalFrom.
func (p pairedError) describe() string {
	return fmt.Sprintf("paired by repeat: median of %d per-repeat errors, order-statistic interval (%.1f %%)", p.pairs, 100*p.interval.Level)
}
