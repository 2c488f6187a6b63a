package stats

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-3 }

func TestSummarise(t *testing.T) {
	cases := []struct {
		name                         string
		xs                           []float64
		median, mean, lo, hi, covPct float64
	}{
		// mean 10, sd 1, t(0.975,2)=4.303 → half-width 4.303/sqrt(3)=2.4844
		{"three", []float64{9, 10, 11}, 10, 10, 7.5156, 12.4844, 10},
		{"even count median", []float64{1, 2, 3, 4}, 2.5, 2.5, 0.4457, 4.5543, 51.640},
		{"single", []float64{5}, 5, 5, 5, 5, 0},
		{"constant", []float64{3, 3, 3}, 3, 3, 3, 3, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Summarise(tc.xs)
			if err != nil {
				t.Fatal(err)
			}
			if !near(s.Median, tc.median) || !near(s.Mean, tc.mean) || !near(s.CI95Low, tc.lo) || !near(s.CI95High, tc.hi) || !near(s.CoVPct, tc.covPct) {
				t.Errorf("got %+v", s)
			}
		})
	}
	if _, err := Summarise(nil); err == nil {
		t.Error("empty sample accepted")
	}
}

func TestRobustCoVIgnoresOneOutlier(t *testing.T) {
	s, err := Summarise([]float64{100, 101, 99, 100, 60})
	if err != nil {
		t.Fatal(err)
	}
	// MAD = 1 → 1.4826 %; the plain CoV is dragged up by the 60.
	if !near(s.RobustCoVPct, 1.4826) || s.CoVPct < 15 {
		t.Errorf("CoV %.2f%%, robust %.4f%%", s.CoVPct, s.RobustCoVPct)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]float64{0: 1, 0.5: 5.5, 0.9: 9.1, 1: 10, 0.01: 1.09} {
		if got := Quantile(xs, q); !near(got, want) {
			t.Errorf("q%.2f = %v, want %v", q, got, want)
		}
	}
}
