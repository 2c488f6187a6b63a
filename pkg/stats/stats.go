// Package stats summarises repeated measurements: median, mean, a 95%
// confidence interval of the mean (Student's t, since repeats are few) and
// the coefficient of variation.
package stats

import (
	"errors"
	"math"
	"sort"
)

// Summary of a sample.
type Summary struct {
	N        int
	Median   float64
	Mean     float64
	StdDev   float64
	CI95Low  float64
	CI95High float64
	// CoVPct is the sample standard deviation over the mean, in percent.
	CoVPct float64
	// RobustCoVPct is 1.4826 × the median absolute deviation over the
	// median, in percent: the CoV a normal sample would have, but blind to
	// a single outlier window. A large CoV with a small robust CoV means one
	// window was disturbed, not that the path is unstable.
	RobustCoVPct float64
}

// t975 holds the 0.975 quantile of Student's t for 1..30 degrees of freedom.
var t975 = []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
	2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
	2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}

// TQuantile975 returns t(0.975, df).
func TQuantile975(df int) float64 {
	if df < 1 {
		return math.NaN()
	}
	if df < len(t975) {
		return t975[df]
	}
	return 1.960 + 2.4/float64(df) // within 0.002 of the true value above 30
}

// ErrEmpty is returned for an empty sample.
var ErrEmpty = errors.New("no values to summarise")

// Summarise computes the summary. With one value the interval collapses to
// it and CoV is 0; callers show n so readers can tell.
func Summarise(xs []float64) (Summary, error) {
	if len(xs) == 0 {
		return Summary{}, ErrEmpty
	}
	s := Summary{N: len(xs)}
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	s.Median = Quantile(sorted, 0.5)
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(len(xs))
	if len(xs) > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.StdDev = math.Sqrt(ss / float64(len(xs)-1))
		half := TQuantile975(len(xs)-1) * s.StdDev / math.Sqrt(float64(len(xs)))
		s.CI95Low, s.CI95High = s.Mean-half, s.Mean+half
	} else {
		s.CI95Low, s.CI95High = s.Mean, s.Mean
	}
	if s.Mean != 0 {
		s.CoVPct = 100 * s.StdDev / math.Abs(s.Mean)
	}
	if s.Median != 0 {
		dev := make([]float64, len(sorted))
		for i, x := range sorted {
			dev[i] = math.Abs(x - s.Median)
		}
		sort.Float64s(dev)
		s.RobustCoVPct = 100 * 1.4826 * Quantile(dev, 0.5) / math.Abs(s.Median)
	}
	return s, nil
}

// Quantile returns the q-quantile of sorted values with linear
// interpolation between closest ranks.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
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
