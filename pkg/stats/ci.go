package stats

import (
	"math"
	"sort"
)

// Interval is a confidence interval with its actual coverage.
type Interval struct {
	Low, High float64
	// Level is the interval's coverage (0.95 means 95 %); for an
	// order-statistic interval it is exact, not nominal.
	Level float64
}

// TargetLevel is the coverage the median's interval aims for.
const TargetLevel = 0.95

// MedianCI is the distribution-free interval of the median of xs (need not
// be sorted): see OrderStatisticRank for which order statistics bound it.
// It assumes only independent windows from one continuous distribution,
// so a bimodal sample gets an honest (wide) interval instead of a
// normal-theory one.
func MedianCI(xs []float64) (Interval, error) {
	if len(xs) == 0 {
		return Interval{}, ErrEmpty
	}
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	return medianCISorted(sorted), nil
}

func medianCISorted(sorted []float64) Interval {
	n := len(sorted)
	k, level := OrderStatisticRank(n)
	return Interval{Low: sorted[k-1], High: sorted[n-k], Level: level}
}

// OrderStatisticRank returns k for the median's interval [x₍ₖ₎, x₍ₙ₋ₖ₊₁₎]
// of n sorted values, and its exact coverage.
//
// The number of values below the true median is Binomial(n, ½), so the
// interval covers the median with probability
//
//	P(k ≤ B ≤ n−k) = 1 − 2·P(B ≤ k−1).
//
// k is the largest (the interval the narrowest) whose coverage is at
// least TargetLevel. When even k = 1 (min to max) falls short, which is
// the case for n ≤ 5, k is 1 and the coverage is what it is:
// 1 − 2·0.5ⁿ, 0.75 at n = 3 and 0.9375 at n = 5. n = 1 gives k = 1 and
// coverage 0: one value says nothing about where the median lies.
func OrderStatisticRank(n int) (k int, coverage float64) {
	if n < 1 {
		return 0, math.NaN()
	}
	k, coverage = 1, 1-2*binomHalfCDF(n, 0)
	for j := 2; j <= (n+1)/2; j++ {
		c := 1 - 2*binomHalfCDF(n, j-1)
		if c < TargetLevel {
			break
		}
		k, coverage = j, c
	}
	if coverage < 0 {
		coverage = 0
	}
	return k, coverage
}

// binomHalfCDF is P(B ≤ j) for B ~ Binomial(n, ½), summed in log space so
// large n does not overflow.
func binomHalfCDF(n, j int) float64 {
	ln2n := float64(n) * math.Ln2
	lgN, _ := math.Lgamma(float64(n + 1))
	var p float64
	for i := 0; i <= j && i <= n; i++ {
		a, _ := math.Lgamma(float64(i + 1))
		b, _ := math.Lgamma(float64(n - i + 1))
		p += math.Exp(lgN - a - b - ln2n)
	}
	return p
}
