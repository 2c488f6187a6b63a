package report

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cnilab/cnilab/pkg/results"
)

func ptr(v float64) *float64 { return &v }

func TestCSVCarriesTheMedianIntervalRatioAndFlags(t *testing.T) {
	doc := &results.Document{Run: results.Run{ID: "r1"}, Summaries: []results.Summary{
		{Lab: "calico", Scenario: "throughput", Test: "dtm", Placement: "cross-node", Metric: results.ThroughputBps, Unit: "bit/s",
			Median: 21e9, CI95Low: 20e9, CI95High: 22e9, CILevel: 0.75, CIMethod: "order-statistic",
			Mean: 21e9, StdDev: 1e9, MeanCI95Low: 18.5e9, MeanCI95High: 23.5e9, CoVPct: 4.76, N: 3,
			RatioToHost: ptr(2.1), RatioCI95Low: ptr(1.818), RatioCI95High: ptr(2.444),
			AboveHost: &results.AboveHost{HostMedian: 10e9, HostCI95Low: 9e9, HostCI95High: 11e9, Evidence: "calico dtm cross-node windows: r1 …"},
			Flags:     []string{"a", "b"}, Provider: "netns", Fidelity: results.Faithful},
		{Lab: "ss", Scenario: "services-scale", Test: "first-packet", Placement: "last", Proxy: "iptables", Params: map[string]string{"services": "100", "endpoints": "1"},
			Metric: results.FirstPacketP50, Unit: "µs", Median: 50, CI95Low: 40, CI95High: 60, CILevel: 0.96875, CIMethod: "order-statistic",
			RobustCoVPct: ptr(3), N: 6, Provider: "netns", Fidelity: results.Faithful},
	}}
	var b bytes.Buffer
	if err := csvRows(&b, doc); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	row := func(i int) map[string]string {
		m := map[string]string{}
		for j, h := range recs[0] {
			m[h] = recs[i][j]
		}
		return m
	}
	pick := func(m map[string]string, cols ...string) map[string]string {
		out := map[string]string{}
		for _, c := range cols {
			out[c] = m[c]
		}
		return out
	}
	cols := []string{"median", "ci95_low", "ci95_high", "ci_level", "ci_method", "mean_ci95_low", "robust_cov_pct", "ratio_to_host", "ratio_ci95_low", "ratio_ci95_high", "above_host", "host_median", "host_ci95_high", "flags", "params"}
	want := []map[string]string{
		{"median": "2.1e+10", "ci95_low": "2e+10", "ci95_high": "2.2e+10", "ci_level": "0.75", "ci_method": "order-statistic", "mean_ci95_low": "1.85e+10",
			"robust_cov_pct": "", "ratio_to_host": "2.1", "ratio_ci95_low": "1.818", "ratio_ci95_high": "2.444", "above_host": "true", "host_median": "1e+10", "host_ci95_high": "1.1e+10", "flags": "a; b", "params": ""},
		{"median": "50", "ci95_low": "40", "ci95_high": "60", "ci_level": "0.96875", "ci_method": "order-statistic", "mean_ci95_low": "0",
			"robust_cov_pct": "3", "ratio_to_host": "", "ratio_ci95_low": "", "ratio_ci95_high": "", "above_host": "false", "host_median": "", "host_ci95_high": "", "flags": "", "params": "endpoints=1;services=100"},
	}
	for i, w := range want {
		if d := cmp.Diff(w, pick(row(i+1), cols...)); d != "" {
			t.Errorf("row %d (-want +got):\n%s", i+1, d)
		}
	}
}
