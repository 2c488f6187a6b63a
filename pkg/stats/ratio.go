package stats

import "fmt"

// Ratio is a ratio of two medians with an interval.
type Ratio struct {
	Value     float64
	Low, High float64
	// Level is a lower bound on the interval's coverage: the product of
	// the two medians' coverages (independent samples). Whenever both
	// medians' intervals hold their true medians, the true ratio lies in
	// [Low, High]; it often does otherwise too, so the real coverage is
	// higher.
	Level float64
}

// MedianRatio is a's median over b's median, with the conservative
// interval [a.Low/b.High, a.High/b.Low]: the widest ratio the two
// intervals allow. Both samples must be non-negative quantities (rates,
// latencies) and b's interval must stay above zero, otherwise the ratio
// is unbounded and that is an error.
func MedianRatio(aMedian float64, a Interval, bMedian float64, b Interval) (Ratio, error) {
	if a.Low < 0 || b.Low < 0 || aMedian < 0 || bMedian < 0 {
		return Ratio{}, fmt.Errorf("ratio of medians needs non-negative figures, have %g [%g, %g] over %g [%g, %g]", aMedian, a.Low, a.High, bMedian, b.Low, b.High)
	}
	if b.Low == 0 || bMedian == 0 {
		return Ratio{}, fmt.Errorf("ratio over %g [%g, %g]: the denominator's interval reaches 0, the ratio is unbounded", bMedian, b.Low, b.High)
	}
	return Ratio{Value: aMedian / bMedian, Low: a.Low / b.High, High: a.High / b.Low, Level: a.Level * b.Level}, nil
}
