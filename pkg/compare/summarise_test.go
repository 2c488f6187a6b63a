package compare

import (
	"math"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/config"
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

// window is one throughput window in Gbit/s with its per-CPU view.
func window(lab, test, placement string, repeat int, gbit float64, cpus ...results.CPUWindow) results.Measurement {
	m := meas(lab, test, repeat, gbit*1e9)
	m.Placement = placement
	m.CPUs = cpus
	m.Metrics[results.Retransmits] = 10
	m.Metrics[results.CPUCores] = 1.5
	return m
}

func cpu(n int, busy, softirq float64) results.CPUWindow {
	return results.CPUWindow{CPU: n, BusyPct: busy, SoftirqPct: softirq}
}

func find(t *testing.T, sums []results.Summary, lab, test, placement, metric string) results.Summary {
	t.Helper()
	for _, s := range sums {
		if s.Lab == lab && s.Test == test && s.Placement == placement && s.Metric == metric {
			return s
		}
	}
	t.Fatalf("no summary for %s %s %s %s", lab, test, placement, metric)
	return results.Summary{}
}

func TestSummariseMedianIntervalAndRatio(t *testing.T) {
	// The review's bimodal calico dtm run against its host baseline.
	// n = 3 each: the median's interval is min..max at coverage 0.75.
	// calico [13.44, 30.90] and host [11.27, 14.88] overlap (13.44 ≤
	// 14.88), so the figure is NOT above the host beyond both intervals.
	// Its median 30.44 is 30.44/13.73 − 1 = +122 % above the host's,
	// which is flagged as "within noise". Ratio 2.2171 with the interval
	// [13.44/14.88, 30.90/11.27] = [0.9032, 2.7418].
	doc := &results.Document{Measurements: []results.Measurement{
		window("host", "dtm", "cross-node", 1, 11.27, cpu(0, 70, 20), cpu(1, 65, 22)),
		window("host", "dtm", "cross-node", 2, 14.88, cpu(0, 80, 25), cpu(1, 75, 24)),
		window("host", "dtm", "cross-node", 3, 13.73, cpu(0, 78, 23), cpu(1, 72, 21)),
		window("calico", "dtm", "cross-node", 1, 13.44, cpu(0, 99, 45), cpu(1, 97, 40)),
		window("calico", "dtm", "cross-node", 2, 30.44, cpu(0, 98, 41), cpu(1, 12, 3)),
		window("calico", "dtm", "cross-node", 3, 30.90, cpu(0, 97, 43), cpu(1, 11, 2)),
	}}
	sums := Summarise(doc)
	c := find(t, sums, "calico", "dtm", "cross-node", results.ThroughputBps)
	if c.Median != 30.44e9 || c.CI95Low != 13.44e9 || c.CI95High != 30.90e9 || c.CILevel != 0.75 || c.CIMethod != "order-statistic" {
		t.Errorf("median %v [%v, %v] at %v (%s), want 30.44e9 [13.44e9, 30.90e9] at 0.75", c.Median, c.CI95Low, c.CI95High, c.CILevel, c.CIMethod)
	}
	if c.RobustCoVPct != nil {
		t.Errorf("robust CoV %v at n = 3", *c.RobustCoVPct)
	}
	// mean 24.9267, sd √(198.021/2) = 9.9504; the mean's t-interval
	// ±4.3027·9.9504/√3 = ±24.718 → 0.21–49.64, the review's 0.20–49.65.
	if math.Abs(c.Mean/1e9-24.9267) > 1e-3 || math.Abs(c.StdDev/1e9-9.9504) > 1e-3 ||
		math.Abs(c.MeanCI95Low/1e9-0.2085) > 1e-3 || math.Abs(c.MeanCI95High/1e9-49.6448) > 1e-3 {
		t.Errorf("mean %v sd %v mean CI %v–%v", c.Mean/1e9, c.StdDev/1e9, c.MeanCI95Low/1e9, c.MeanCI95High/1e9)
	}
	if c.RatioToHost == nil || c.RatioCI95Low == nil || c.RatioCI95High == nil ||
		math.Abs(*c.RatioToHost-2.2171) > 1e-4 || math.Abs(*c.RatioCI95Low-0.9032) > 1e-4 || math.Abs(*c.RatioCI95High-2.7418) > 1e-4 {
		t.Errorf("ratio %v [%v, %v], want 2.2171 [0.9032, 2.7418]", c.RatioToHost, c.RatioCI95Low, c.RatioCI95High)
	}
	if c.AboveHost != nil {
		t.Errorf("above host beyond both intervals at n = 3 with overlapping intervals: %+v", c.AboveHost)
	}
	if len(c.Flags) != 1 || !strings.HasPrefix(c.Flags[0], results.FlagAboveHostWithinNoise) ||
		!strings.Contains(c.Flags[0], "+122 %") || !strings.Contains(c.Flags[0], "13.44–30.90 (75 %) and 11.27–14.88 (75 %)") ||
		!strings.Contains(c.Flags[0], "r2 30.44 Gbit/s: cpu0 98 % busy (41 % softirq), cpu1 12 % busy (3 % softirq)") ||
		!strings.Contains(c.Flags[0], "host dtm cross-node windows: r1 11.27 Gbit/s: cpu0 70 % busy (20 % softirq)") {
		t.Errorf("flags %q", c.Flags)
	}
	for _, metric := range []string{results.Retransmits, results.CPUCores} {
		if s := find(t, sums, "calico", "dtm", "cross-node", metric); s.RatioToHost != nil || len(s.Flags) != 0 {
			t.Errorf("%s: ratio %v flags %q, want neither", metric, s.RatioToHost, s.Flags)
		}
	}
	if h := find(t, sums, "host", "dtm", "cross-node", results.ThroughputBps); h.RatioToHost != nil || h.AboveHost != nil || len(h.Flags) != 0 {
		t.Errorf("host compared with itself: %+v", h)
	}
}

func TestSummariseAboveHostBeyondBothIntervals(t *testing.T) {
	// Same-node: calico [20, 22] lies wholly above host [11.27, 14.88].
	doc := &results.Document{Measurements: []results.Measurement{
		window("host", "dts", "same-node", 1, 11.27, cpu(0, 60, 10)),
		window("host", "dts", "same-node", 2, 14.88, cpu(0, 61, 11)),
		window("host", "dts", "same-node", 3, 13.73, cpu(0, 62, 12)),
		window("calico", "dts", "same-node", 1, 20, cpu(0, 50, 30), cpu(1, 50, 5)),
		window("calico", "dts", "same-node", 2, 21),
		window("calico", "dts", "same-node", 3, 22, cpu(0, 51, 31), cpu(1, 49, 4)),
		// 10 % above the host's median, intervals overlap: flagged
		// within noise. 3 % above: nothing.
		window("flannel", "dts", "same-node", 1, 14), window("flannel", "dts", "same-node", 2, 15.1), window("flannel", "dts", "same-node", 3, 16),
		window("cilium", "dts", "same-node", 1, 13.5), window("cilium", "dts", "same-node", 2, 14.14), window("cilium", "dts", "same-node", 3, 14.5),
	}}
	sums := Summarise(doc)
	c := find(t, sums, "calico", "dts", "same-node", results.ThroughputBps)
	if c.AboveHost == nil {
		t.Fatalf("calico 20–22 above host 11.27–14.88 not flagged: %+v", c)
	}
	a := c.AboveHost
	if a.HostMedian != 13.73e9 || a.HostCI95Low != 11.27e9 || a.HostCI95High != 14.88e9 {
		t.Errorf("host figures %+v", a)
	}
	for _, want := range []string{
		"calico dts same-node windows: r1 20.00 Gbit/s: cpu0 50 % busy (30 % softirq), cpu1 50 % busy (5 % softirq); r2 21.00 Gbit/s: no per-CPU data; r3 22.00 Gbit/s:",
		"host dts same-node windows: r1 11.27 Gbit/s: cpu0 60 % busy (10 % softirq)",
	} {
		if !strings.Contains(a.Evidence, want) {
			t.Errorf("evidence lacks %q:\n%s", want, a.Evidence)
		}
	}
	if f := find(t, sums, "flannel", "dts", "same-node", results.ThroughputBps); f.AboveHost != nil || len(f.Flags) != 1 || !strings.HasPrefix(f.Flags[0], results.FlagAboveHostWithinNoise+" (median 15.10 vs host 13.73 Gbit/s, +10 %") {
		t.Errorf("flannel +10 %% inside the intervals: above %v flags %q", f.AboveHost, f.Flags)
	}
	if s := find(t, sums, "cilium", "dts", "same-node", results.ThroughputBps); s.AboveHost != nil || len(s.Flags) != 0 {
		t.Errorf("cilium +3 %%: above %v flags %q", s.AboveHost, s.Flags)
	}
}

func TestSummariseRobustCoVFlagsAndNeutralMetrics(t *testing.T) {
	var ms []results.Measurement
	for r, v := range []float64{100, 101, 99, 100, 60, 102} {
		m := meas("flannel", "dts", r+1, v*1e9)
		m.Metrics[results.PodMTU] = 1450
		if r == 1 || r == 4 {
			m.Flags = []string{"sender 3.1 % above receiver"}
		}
		if r == 4 {
			m.Flags = append(m.Flags, "a cpu was offline")
		}
		ms = append(ms, m)
		h := meas("host", "dts", r+1, 120e9)
		h.Metrics[results.PodMTU] = 1500
		ms = append(ms, h)
	}
	sums := Summarise(&results.Document{Measurements: ms})
	f := find(t, sums, "flannel", "dts", "cross-node", results.ThroughputBps)
	// Sorted 60 99 100 100 101 102: median 100, MAD 1 → 1.4826 %.
	if f.RobustCoVPct == nil || math.Abs(*f.RobustCoVPct-1.4826) > 1e-3 {
		t.Errorf("robust CoV at n = 6: %v", f.RobustCoVPct)
	}
	// n = 6: min..max, coverage 1 − 2/64.
	if f.CI95Low != 60e9 || f.CI95High != 102e9 || f.CILevel != 0.96875 {
		t.Errorf("interval [%v, %v] at %v", f.CI95Low, f.CI95High, f.CILevel)
	}
	if want := []string{"a cpu was offline", "sender 3.1 % above receiver"}; strings.Join(f.Flags, "|") != strings.Join(want, "|") {
		t.Errorf("flags %q, want %q", f.Flags, want)
	}
	if m := find(t, sums, "flannel", "dts", "cross-node", results.PodMTU); m.RatioToHost != nil {
		t.Errorf("pod_mtu has a ratio to host: %v", *m.RatioToHost)
	}
}

// TestRunSettings: the run's window settings are the throughput scenario's
// when it runs, else those of the first scenario with the profile (a
// policy-only run said "0 s per window, 0 repeats").
func TestRunSettings(t *testing.T) {
	set := &config.Set{Scenarios: map[string]*config.Scenario{
		"throughput": {Name: "throughput", Kind: "throughput", Profiles: map[string]config.Profile{"quick": {DurationSeconds: 10, OmitSeconds: 2, Repeats: 3}}},
		"latency":    {Name: "latency", Kind: "latency", Profiles: map[string]config.Profile{"quick": {DurationSeconds: 5, Repeats: 3}}},
		"policy":     {Name: "policy", Kind: "policy", Profiles: map[string]config.Profile{"quick": {DurationSeconds: 3, OmitSeconds: 1, Repeats: 3}}},
	}}
	for _, tc := range []struct {
		scenarios        []string
		duration, repeat float64
	}{
		{[]string{"policy"}, 3, 3},
		{[]string{"latency", "throughput"}, 10, 3},
		{[]string{"latency", "policy"}, 5, 3},
	} {
		o := &Options{Set: set, Scenarios: tc.scenarios, Profile: "quick", OrderSeed: 1}
		s, err := o.settings()
		if err != nil {
			t.Fatal(err)
		}
		if s.DurationSeconds != tc.duration || float64(s.Repeats) != tc.repeat {
			t.Errorf("%v: %v s per window, %d repeats; want %v s, %v", tc.scenarios, s.DurationSeconds, s.Repeats, tc.duration, tc.repeat)
		}
	}
}
