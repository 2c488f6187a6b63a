package compare

import (
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

func meas(lab, test string, repeat int, bps float64) results.Measurement {
	return results.Measurement{Lab: lab, Scenario: "throughput", Test: test, Placement: "cross-node", Repeat: repeat,
		Provider: "netns", Fidelity: results.Faithful, Metrics: map[string]float64{results.ThroughputBps: bps}}
}

func TestSummariseRatiosAndFailures(t *testing.T) {
	doc := &results.Document{Measurements: []results.Measurement{
		meas("host", "dts", 1, 10e9), meas("host", "dts", 2, 12e9), meas("host", "dts", 3, 11e9),
		meas("flannel", "dts", 1, 8e9), meas("flannel", "dts", 2, 9e9), meas("flannel", "dts", 3, 7e9),
		meas("flannel", "sts", 1, 5.5e9), meas("flannel", "sts", 2, 5.5e9),
		{Lab: "flannel", Scenario: "throughput", Test: "dts", Repeat: 4, Error: "boom", Metrics: map[string]float64{results.ThroughputBps: 1}},
	}}
	sums := Summarise(doc)
	get := func(lab, test string) results.Summary {
		for _, s := range sums {
			if s.Lab == lab && s.Test == test && s.Metric == results.ThroughputBps {
				return s
			}
		}
		t.Fatalf("no summary for %s %s", lab, test)
		return results.Summary{}
	}
	f := get("flannel", "dts")
	if f.N != 3 || f.Median != 8e9 {
		t.Errorf("failed measurement counted or wrong median: %+v", f)
	}
	if f.RatioToHost == nil || *f.RatioToHost != 8.0/11.0 {
		t.Errorf("ratio to host %v, want 8/11", f.RatioToHost)
	}
	if s := get("flannel", "sts"); s.RatioToHost == nil || *s.RatioToHost != 5.5/11 {
		t.Errorf("service test ratio is not against the host's direct path: %v", s.RatioToHost)
	}
	if h := get("host", "dts"); h.RatioToHost != nil {
		t.Error("host has a ratio to itself")
	}
	if f.CI95Low < 0 || f.CI95Low > f.Median || f.CI95High < f.Median {
		t.Errorf("CI %v–%v around median %v", f.CI95Low, f.CI95High, f.Median)
	}
	// Two proxies measured with the same parameters stay apart.
	scale := &results.Document{}
	for _, px := range []string{"iptables", "ebpf"} {
		for r, v := range []float64{10, 11, 12} {
			if px == "ebpf" {
				v *= 10
			}
			scale.Measurements = append(scale.Measurements, results.Measurement{Lab: "ss", Scenario: "services-scale", Test: "first-packet", Placement: "last", Proxy: px, Repeat: r,
				Params: map[string]string{"services": "100"}, Metrics: map[string]float64{results.FirstPacketP50: v}})
		}
	}
	got := map[string]float64{}
	for _, s := range Summarise(scale) {
		got[s.Proxy] = s.Median
	}
	if got["iptables"] != 11 || got["ebpf"] != 110 {
		t.Errorf("per-proxy medians %v, want iptables 11 and ebpf 110", got)
	}
	if f.Unit != "bit/s" {
		t.Errorf("unit %q", f.Unit)
	}
}
