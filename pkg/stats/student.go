package stats

import (
	"errors"
	"fmt"
	"math"
)

// StudentTCDF is P(T ≤ t) for Student's t with df > 0 degrees of freedom
// (df need not be an integer: Welch's test gives fractional ones). It uses
// the identity P(|T| > |t|) = I_x(df/2, ½) with x = df/(df+t²), I the
// regularised incomplete beta function.
func StudentTCDF(t, df float64) float64 {
	if math.IsNaN(t) || math.IsNaN(df) || df <= 0 {
		return math.NaN()
	}
	if math.IsInf(t, 0) {
		if t > 0 {
			return 1
		}
		return 0
	}
	tail := 0.5 * regIncBeta(df/(df+t*t), df/2, 0.5) // P(T > |t|)
	if t >= 0 {
		return 1 - tail
	}
	return tail
}

// TQuantile is the p-quantile of Student's t with df degrees of freedom
// (0 < p < 1), found by bisection on StudentTCDF to 1e-12.
func TQuantile(p, df float64) float64 {
	if math.IsNaN(p) || p <= 0 || p >= 1 || math.IsNaN(df) || df <= 0 {
		return math.NaN()
	}
	if p == 0.5 {
		return 0
	}
	if p < 0.5 {
		return -TQuantile(1-p, df)
	}
	lo, hi := 0.0, 1.0
	for StudentTCDF(hi, df) < p {
		lo, hi = hi, 2*hi
	}
	for hi-lo > 1e-12*math.Max(1, hi) {
		mid := (lo + hi) / 2
		if StudentTCDF(mid, df) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// TQuantile975 returns t(0.975, df), the factor of a two-sided 95 %
// interval; NaN for df < 1.
func TQuantile975(df int) float64 {
	if df < 1 {
		return math.NaN()
	}
	return TQuantile(0.975, float64(df))
}

// regIncBeta is the regularised incomplete beta function I_x(a, b), from
// its continued fraction (evaluated with the modified Lentz method), using
// the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) where the fraction converges
// slowly.
func regIncBeta(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	if x > (a+1)/(a+b+2) {
		return 1 - regIncBeta(1-x, b, a)
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(a*math.Log(x)+b*math.Log(1-x)-(la+lb-lab)) / a
	const tiny = 1e-300
	// I_x(a,b) = front / (1 + d1/(1 + d2/(1 + ...))), with
	// d_{2m+1} = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1)) and
	// d_{2m} = m(b−m)x / ((a+2m−1)(a+2m)).
	f, c, d := 1.0, 1.0, 0.0
	for i := 0; i <= 400; i++ {
		m := float64(i / 2)
		var num float64
		switch {
		case i == 0:
			num = 1
		case i%2 == 0:
			num = m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		default:
			num = -(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1))
		}
		d = 1 + num*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		d = 1 / d
		c = 1 + num/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		f *= c * d
		if math.Abs(1-c*d) < 1e-15 {
			break
		}
	}
	return front * (f - 1)
}

// Moments are what Welch's test needs of one sample.
type Moments struct {
	N      int
	Mean   float64
	StdDev float64
}

// WelchResult is Welch's unequal-variance t-test of two means.
type WelchResult struct {
	T float64
	// DF are the Welch–Satterthwaite degrees of freedom.
	DF float64
	// P is the two-sided p-value.
	P float64
	// Differs95 says the means differ at the 95 % level (P < 0.05).
	Differs95 bool
}

// Welch tests whether two samples' means differ, without assuming equal
// variances:
//
//	t  = (m₁ − m₂) / √(s₁²/n₁ + s₂²/n₂)
//	df = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1))
//
// Each sample needs n ≥ 2. When both standard deviations are 0 the
// answer is certain: P is 1 for equal means and 0 otherwise (DF is NaN).
func Welch(a, b Moments) (WelchResult, error) {
	if a.N < 2 || b.N < 2 {
		return WelchResult{}, fmt.Errorf("welch's test needs n ≥ 2 on both sides, have %d and %d", a.N, b.N)
	}
	if a.StdDev < 0 || b.StdDev < 0 || math.IsNaN(a.StdDev) || math.IsNaN(b.StdDev) {
		return WelchResult{}, errors.New("welch's test: standard deviation is negative or NaN")
	}
	va, vb := a.StdDev*a.StdDev/float64(a.N), b.StdDev*b.StdDev/float64(b.N)
	diff := a.Mean - b.Mean
	if va+vb == 0 {
		r := WelchResult{DF: math.NaN(), P: 1}
		if diff != 0 {
			r.T, r.P, r.Differs95 = math.Copysign(math.Inf(1), diff), 0, true
		}
		return r, nil
	}
	r := WelchResult{T: diff / math.Sqrt(va+vb)}
	r.DF = (va + vb) * (va + vb) / (va*va/float64(a.N-1) + vb*vb/float64(b.N-1))
	r.P = regIncBeta(r.DF/(r.DF+r.T*r.T), r.DF/2, 0.5)
	r.Differs95 = r.P < 0.05
	return r, nil
}
