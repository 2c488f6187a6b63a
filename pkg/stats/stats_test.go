package stats

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-3 }

func TestSummarise(t *testing.T) {
	cases := []struct {
		name                                 string
		xs                                   []float64
		median, mean, meanLo, meanHi, covPct float64
		ciLo, ciHi, level                    float64
	}{
		// mean 10, sd 1, t(0.975,2)=4.3027 → half-width 4.3027/√3 = 2.4841;
		// the median's interval at n = 3 is min..max with coverage 1 − 2/8.
		{"three", []float64{9, 10, 11}, 10, 10, 7.5159, 12.4841, 10, 9, 11, 0.75},
		// sd √(5/3) = 1.29099, t(0.975,3) = 3.18245 → half 2.05426.
		{"even count median", []float64{1, 2, 3, 4}, 2.5, 2.5, 0.44574, 4.55426, 51.640, 1, 4, 0.875},
		{"single", []float64{5}, 5, 5, 5, 5, 0, 5, 5, 0},
		{"constant", []float64{3, 3, 3}, 3, 3, 3, 3, 0, 3, 3, 0.75},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Summarise(tc.xs)
			if err != nil {
				t.Fatal(err)
			}
			if !near(s.Median, tc.median) || !near(s.Mean, tc.mean) || !near(s.MeanCI95Low, tc.meanLo) || !near(s.MeanCI95High, tc.meanHi) || !near(s.CoVPct, tc.covPct) {
				t.Errorf("got %+v", s)
			}
			if s.MedianCI != (Interval{tc.ciLo, tc.ciHi, tc.level}) {
				t.Errorf("median interval %+v, want [%v, %v] at %v", s.MedianCI, tc.ciLo, tc.ciHi, tc.level)
			}
			if s.RobustCoVPct != nil {
				t.Errorf("robust CoV %v at n = %d", *s.RobustCoVPct, s.N)
			}
		})
	}
	for _, bad := range [][]float64{nil, {1, math.NaN()}, {math.Inf(1)}} {
		if _, err := Summarise(bad); err == nil {
			t.Errorf("Summarise(%v) accepted", bad)
		}
	}
}

func TestRobustCoVOnlyFromSixWindows(t *testing.T) {
	cases := []struct {
		name string
		xs   []float64
		want *float64
	}{
		// The review's case: at n = 3 the MAD is the smaller deviation and
		// would read 2.2 % on a bimodal sample; none is given.
		{"n=3 bimodal", []float64{13.44, 30.44, 30.90}, nil},
		{"n=5", []float64{100, 101, 99, 100, 60}, nil},
		// Sorted 60 99 100 100 101 102: median 100, deviations 40 1 0 0 1
		// 2 → MAD 1 → 1.4826 %; the plain CoV is dragged up by the 60.
		{"n=6 one outlier", []float64{100, 101, 99, 100, 60, 102}, ptr(1.4826)},
		{"n=6 zero median", []float64{0, 0, 0, 0, 1, 2}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Summarise(tc.xs)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == nil && s.RobustCoVPct != nil:
				t.Errorf("robust CoV %.2f %%, want none", *s.RobustCoVPct)
			case tc.want != nil && (s.RobustCoVPct == nil || !near(*s.RobustCoVPct, *tc.want)):
				t.Errorf("robust CoV %v, want %v", s.RobustCoVPct, *tc.want)
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

func TestOrderStatisticCoverage(t *testing.T) {
	// Coverage of [x(k), x(n−k+1)] is 1 − 2·P(B ≤ k−1), B ~ Bin(n, ½):
	//   n=3:  k=1: 1 − 2/8 = 0.75 (short of 95 %: min..max)
	//   n=5:  k=1: 1 − 2/32 = 0.9375 (short of 95 %)
	//   n=6:  k=1: 1 − 2/64 = 0.96875; k=2: 1 − 2·7/64 = 0.78125 < 0.95
	//   n=10: k=2: 1 − 2·(1+10)/1024 = 0.978515625;
	//         k=3: 1 − 2·(1+10+45)/1024 = 0.890625 < 0.95
	//   n=20: k=6: 1 − 2·(1+20+190+1140+4845+15504)/2²⁰ = 0.958610535;
	//         k=7 adds C(20,6)=38760: 0.884681702 < 0.95
	cases := []struct {
		n, k  int
		level float64
	}{
		{1, 1, 0}, {2, 1, 0.5}, {3, 1, 0.75}, {5, 1, 0.9375}, {6, 1, 0.96875}, {10, 2, 0.978515625}, {20, 6, 0.958610535},
	}
	for _, tc := range cases {
		k, level := OrderStatisticRank(tc.n)
		if k != tc.k || math.Abs(level-tc.level) > 1e-9 {
			t.Errorf("n=%d: k=%d coverage %.9f, want k=%d %.9f", tc.n, k, level, tc.k, tc.level)
		}
	}
	// n = 10 picks the second smallest and the second largest.
	ci, err := MedianCI([]float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5})
	if err != nil || ci != (Interval{2, 9, 0.978515625}) {
		t.Errorf("n=10 interval %+v, %v; want [2, 9] at 0.9785", ci, err)
	}
	if _, err := MedianCI(nil); err == nil {
		t.Error("interval of nothing")
	}
}

func TestPercentile(t *testing.T) {
	// 1..10 shuffled: position q·(n−1) between sorted values, e.g.
	// p90 → 8.1 → 9 + 0.1·(10 − 9) = 9.1; p1 → 0.09 → 1.09.
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct{ p, want float64 }{{0, 1}, {1, 1.09}, {25, 3.25}, {50, 5.5}, {90, 9.1}, {99, 9.91}, {100, 10}} {
		got, err := Percentile(xs, tc.p)
		if err != nil || !near(got, tc.want) {
			t.Errorf("p%v = %v, %v; want %v", tc.p, got, err, tc.want)
		}
	}
	for _, p := range []float64{-1, 101, math.NaN()} {
		if _, err := Percentile(xs, p); err == nil {
			t.Errorf("p%v accepted", p)
		}
	}
	if _, err := Percentile(nil, 50); err == nil {
		t.Error("percentile of nothing gave a value")
	}
	if xs[0] != 5 {
		t.Error("Percentile sorted its caller's slice")
	}
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := Median(tc.xs); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("median of nothing is a number")
	}
}

func TestTQuantile975(t *testing.T) {
	// Published two-sided 95 % t table values.
	for df, want := range map[int]float64{1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 10: 2.2281, 30: 2.0423, 100: 1.9840} {
		if got := TQuantile975(df); math.Abs(got-want) > 1e-4 {
			t.Errorf("t(0.975, %d) = %.5f, want %.4f", df, got, want)
		}
	}
	if !math.IsNaN(TQuantile975(0)) {
		t.Error("t quantile for df 0")
	}
	// Fractional df (Welch) lie between their integer neighbours.
	if q := TQuantile(0.975, 50.0/17); q <= 3.1824 || q >= 4.3027 {
		t.Errorf("t(0.975, 2.94) = %v, not between t(3) and t(2)", q)
	}
	// df = 2 has a closed form: F(t) = ½ + t / (2√(2 + t²)).
	for _, x := range []float64{-3, -0.5, 0, 1, 2.8284} {
		if got, want := StudentTCDF(x, 2), 0.5+x/(2*math.Sqrt(2+x*x)); math.Abs(got-want) > 1e-12 {
			t.Errorf("F(%v; 2) = %v, want %v", x, got, want)
		}
	}
}

func TestWelch(t *testing.T) {
	cases := []struct {
		name      string
		a, b      Moments
		tStat, df float64
		p         float64
		differs   bool
	}{
		// {1,3} vs {5,7}: means 2 and 6, sd √2 each; se² = 2/2 + 2/2 = 2,
		// t = −4/√2 = −2.8284; df = 2²/(1²/1 + 1²/1) = 2; with the df = 2
		// closed form p = 1 − |t|/√(2 + t²) = 1 − 2.8284/√10 = 0.105573.
		{"df 2", Moments{2, 2, math.Sqrt2}, Moments{2, 6, math.Sqrt2}, -2.828427, 2, 0.105573, false},
		// {1,2,3} vs {11,12,13}: sd 1 each, se² = 2/3, t = −10/√(2/3) =
		// −12.2474, df = (2/3)²/(2·(1/3)²/2) = 4; the df = 4 closed form
		// F(t) = ½ + (3/8)·u·(1 − t²/(12(1+t²/4))), u = t/√(1+t²/4), gives
		// F(12.2474) = 0.99987239 → p = 0.00025522.
		{"df 4", Moments{3, 2, 1}, Moments{3, 12, 1}, -12.247449, 4, 0.00025522, true},
		// {9,10,11} vs {12,14,16}: sd 1 and 2; se² = 1/3 + 4/3 = 5/3,
		// t = −4/1.29099 = −3.0984, df = (5/3)²/((1/3)²/2 + (4/3)²/2) =
		// 50/17 = 2.9412; t(0.975, 2.94) = 3.2188 > 3.0984, so not at 95 %
		// (p 0.0548).
		{"unequal variances, just short", Moments{3, 10, 1}, Moments{3, 14, 2}, -3.098387, 50.0 / 17, 0.054787, false},
		{"identical windows, equal", Moments{3, 5, 0}, Moments{4, 5, 0}, 0, math.NaN(), 1, false},
		{"identical windows, apart", Moments{3, 5, 0}, Moments{4, 6, 0}, math.Inf(-1), math.NaN(), 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Welch(tc.a, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			sameDF := near(r.DF, tc.df) || (math.IsNaN(r.DF) && math.IsNaN(tc.df))
			sameT := near(r.T, tc.tStat) || r.T == tc.tStat
			if !sameT || !sameDF || math.Abs(r.P-tc.p) > 1e-6 || r.Differs95 != tc.differs {
				t.Errorf("got %+v, want t %v df %v p %v differs %v", r, tc.tStat, tc.df, tc.p, tc.differs)
			}
		})
	}
	if _, err := Welch(Moments{1, 5, 0}, Moments{3, 5, 1}); err == nil {
		t.Error("welch with n = 1")
	}
}

func TestMedianRatio(t *testing.T) {
	// calico dtm 13.44/30.44/30.90 over host 11.27/14.88/13.73 (Gbit/s):
	// 30.44/13.73 = 2.2171; interval [13.44/14.88, 30.90/11.27] =
	// [0.9032, 2.7418]; each median interval covers at 0.75, so both do at
	// ≥ 0.5625.
	r, err := MedianRatio(30.44, Interval{13.44, 30.90, 0.75}, 13.73, Interval{11.27, 14.88, 0.75})
	if err != nil {
		t.Fatal(err)
	}
	if !near(r.Value, 2.2171) || !near(r.Low, 0.9032) || !near(r.High, 2.7418) || r.Level != 0.5625 {
		t.Errorf("ratio %+v", r)
	}
	for _, tc := range []struct {
		name string
		b    Interval
	}{{"denominator reaches zero", Interval{0, 2, 0.75}}, {"negative", Interval{-1, 2, 0.75}}} {
		if _, err := MedianRatio(1, Interval{1, 1, 0.75}, 1, tc.b); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
