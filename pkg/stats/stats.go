// Package stats summarises repeated measurements so that every figure shown
// comes with the interval that belongs to it:
//
//   - the median with its distribution-free order-statistic interval
//     (MedianCI), whose exact coverage is returned with it because few
//     repeats cannot reach 95 %;
//   - the mean with its Student-t interval, the standard deviation and
//     Welch's test on two means (Welch);
//   - the coefficient of variation, and a robust CoV only from n = 6;
//   - the ratio of two medians with a conservative interval (Ratio);
//   - the one percentile implementation of the tree (Percentile, Median).
package stats

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// MinRobustN is the smallest sample with a robust CoV. Below it the median
// absolute deviation is one of two or three deviations (at n = 3 the
// smaller of the two non-zero ones), so one deviant window yields a small
// "robust" figure that says nothing about the spread.
const MinRobustN = 6

// Summary of a sample.
type Summary struct {
	N      int
	Median float64
	// MedianCI is the median's order-statistic interval and its coverage.
	MedianCI Interval
	Mean     float64
	// StdDev is the sample standard deviation (n − 1 in the denominator).
	StdDev float64
	// MeanCI95Low/High is the mean's 95 % Student-t interval.
	MeanCI95Low  float64
	MeanCI95High float64
	// CoVPct is the sample standard deviation over the mean, in percent.
	CoVPct float64
	// RobustCoVPct is 1.4826 × the median absolute deviation over the
	// median, in percent; nil below MinRobustN or when the median is 0.
	// 1.4826 makes it equal the CoV for a normal sample.
	RobustCoVPct *float64
}

// ErrEmpty is returned for an empty sample.
var ErrEmpty = errors.New("no values to summarise")

// Summarise computes the summary. With one value both intervals collapse
// to it (the median's with coverage 0) and CoV is 0; callers show n so
// readers can tell.
func Summarise(xs []float64) (Summary, error) {
	if len(xs) == 0 {
		return Summary{}, ErrEmpty
	}
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return Summary{}, fmt.Errorf("value %v is not a finite number", x)
		}
	}
	n := len(xs)
	s := Summary{N: n}
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	s.Median = quantileSorted(sorted, 0.5)
	s.MedianCI = medianCISorted(sorted)
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(n)
	s.MeanCI95Low, s.MeanCI95High = s.Mean, s.Mean
	if n > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.StdDev = math.Sqrt(ss / float64(n-1))
		half := TQuantile975(n-1) * s.StdDev / math.Sqrt(float64(n))
		s.MeanCI95Low, s.MeanCI95High = s.Mean-half, s.Mean+half
	}
	if s.Mean != 0 {
		s.CoVPct = 100 * s.StdDev / math.Abs(s.Mean)
	}
	if n >= MinRobustN && s.Median != 0 {
		dev := make([]float64, n)
		for i, x := range sorted {
			dev[i] = math.Abs(x - s.Median)
		}
		sort.Float64s(dev)
		r := 100 * 1.4826 * quantileSorted(dev, 0.5) / math.Abs(s.Median)
		s.RobustCoVPct = &r
	}
	return s, nil
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of xs, which need
// not be sorted. Between two order statistics it interpolates linearly
// (the definition R calls type 7 and NumPy uses by default), so the 50th
// percentile is the usual median. It is the one percentile of cnilab:
// latency percentiles of a window, medians over repeats and rank's
// medians all come from here. An empty sample is an error, never a zero.
func Percentile(xs []float64, p float64) (float64, error) {
	if len(xs) == 0 {
		return 0, errors.New("percentile of no samples")
	}
	if math.IsNaN(p) || p < 0 || p > 100 {
		return 0, fmt.Errorf("percentile %v out of range 0–100", p)
	}
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	return quantileSorted(sorted, p/100), nil
}

// Median is Percentile(xs, 50); NaN for an empty sample, so a missing
// figure cannot pass for a zero.
func Median(xs []float64) float64 {
	m, err := Percentile(xs, 50)
	if err != nil {
		return math.NaN()
	}
	return m
}

// quantileSorted is the q-quantile (0 ≤ q ≤ 1) of sorted, non-empty
// values with linear interpolation between closest ranks.
func quantileSorted(sorted []float64, q float64) float64 {
	if q <= 0 {
		return sorted[0]
	}
	if q >= 1 {
		return sorted[len(sorted)-1]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[hi]-sorted[lo])
}
