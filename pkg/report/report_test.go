package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/results"
)

func ptr(v float64) *float64 { return &v }

// osSummary is an order-statistic summary at n = 3 (coverage 0.75), as compare
// writes it.
func osSummary(lab, scenario, test, metric string, median, lo, hi float64, fid results.Fidelity, f func(*results.Summary)) results.Summary {
	s := results.Summary{Lab: lab, Scenario: scenario, Test: test, Placement: "cross-node", Metric: metric, Unit: results.Unit(metric),
		Median: median, CI95Low: lo, CI95High: hi, CILevel: 0.75, CIMethod: "order-statistic", N: 3, Provider: "netns", Fidelity: fid}
	if f != nil {
		f(&s)
	}
	return s
}

func doc() *results.Document {
	return &results.Document{
		Schema: results.Schema,
		Run:    results.Run{ID: "abc123", Provider: "netns", Profile: "quick", Started: time.Unix(0, 0).UTC(), Host: results.Host{Kernel: "6.18", CPUs: 2}, Settings: results.Settings{DurationSeconds: 1, OmitSeconds: 1, Repeats: 3, Statistic: "median"}},
		Labs: []results.Lab{
			{Name: "host", CNI: "host", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK},
			{Name: "cilium", CNI: "cilium", Provider: "netns", Fidelity: results.Approximate, Status: results.StatusOK, Services: "ebpf", PodMTU: 1500},
			{Name: "weave", CNI: "weave", Provider: "netns", Fidelity: results.NotModelled, Status: results.StatusUnavailable, Error: "not modelled in netns: OVS"},
		},
		Summaries: []results.Summary{
			osSummary("host", "throughput", "dts", results.ThroughputBps, 10e9, 9e9, 11e9, results.Faithful, func(s *results.Summary) { s.CoVPct = 2 }),
			osSummary("cilium", "throughput", "dts", results.ThroughputBps, 7e9, 6.5e9, 7.5e9, results.Approximate, func(s *results.Summary) {
				s.CoVPct, s.RatioToHost, s.RatioCI95Low, s.RatioCI95High = 3, ptr(0.7), ptr(6.5/11), ptr(7.5/9)
			}),
			osSummary("cilium", "throughput", "sus", results.ThroughputBps, 1e9, 0.9e9, 1.1e9, results.Approximate, func(s *results.Summary) { s.Proxy = "ebpf" }),
			osSummary("cilium", "throughput", "sus", results.UDPLossPct, 4.5, 4, 5, results.Approximate, func(s *results.Summary) { s.Proxy = "ebpf" }),
			osSummary("cilium", "latency", "drr", results.LatencyP50, 71.6, 70, 74, results.Approximate, func(s *results.Summary) { s.CoVPct = 1 }),
			osSummary("cilium", "latency", "drr", results.LatencyP99, 128.5, 120, 130, results.Approximate, nil),
		},
	}
}

func TestMarkdownNamesProviderAndFidelityOfEveryFigure(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, doc()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"datapath models",
		"| cilium | – | 7.00 [6.50–7.50] (75 %) | 3.0 | 0.70 [0.59–0.83] |",
		"| host | – | 10.00 [9.00–11.00] (75 %) | 2.0 | – |",
		"the median's own distribution-free order-statistic interval",
		"| netns | approximate |",
		"| weave | weave | netns | not-modelled | unavailable |",
		"UDP loss % (median)",
		"| cilium | ebpf | 1.00 [0.90–1.10] (75 %) |",
		"## sus — pod → service, UDP, 1 stream (cross-node, throughput)",
		"| cilium | – | 71.6 [70.0–74.0] (75 %) | 1.0 | – | – | 128.5 | – | 3 | netns | approximate |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q\n%s", want, out)
		}
	}
	if n := strings.Count(out, "## drr"); n != 1 {
		t.Errorf("latency test drr has %d tables, want 1", n)
	}
	// Every table row with a Gbit/s figure ends with provider and fidelity.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| host |") || strings.HasPrefix(line, "| cilium |") {
			if !strings.Contains(line, "| netns |") {
				t.Errorf("row without provider: %s", line)
			}
		}
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, doc()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"netns/approximate", "weave", "unavailable"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMarkdownAboveHostFlagsAndCoV(t *testing.T) {
	d := doc()
	d.Summaries = append(d.Summaries,
		osSummary("calico", "throughput", "dtm", results.ThroughputBps, 30.44e9, 13.44e9, 30.90e9, results.Faithful, func(s *results.Summary) {
			s.RatioToHost, s.RatioCI95Low, s.RatioCI95High = ptr(2.2171), ptr(0.9032), ptr(2.7418)
			s.Flags = []string{results.FlagAboveHostWithinNoise + " (median 30.44 vs host 13.73 Gbit/s, +122 %; …): calico dtm cross-node windows: r2 30.44 Gbit/s: cpu0 98 % busy (41 % softirq)"}
		}),
		osSummary("calico", "throughput", "dts", results.ThroughputBps, 21e9, 20e9, 22e9, results.Faithful, func(s *results.Summary) {
			s.RatioToHost, s.RatioCI95Low, s.RatioCI95High = ptr(2.1), ptr(20.0/11), ptr(22.0/9)
			s.AboveHost = &results.AboveHost{HostMedian: 10e9, HostCI95Low: 9e9, HostCI95High: 11e9, Evidence: "calico dts cross-node windows: r1 20.00 Gbit/s: cpu0 99 % busy (60 % softirq), cpu1 5 % busy (0 % softirq); host dts cross-node windows: r1 10.00 Gbit/s: cpu0 70 % busy (20 % softirq), cpu1 68 % busy (19 % softirq)"}
			s.Flags = []string{"sender 3.1 % above receiver"}
		}),
		osSummary("calico", "throughput", "dts", results.Retransmits, 12, 10, 15, results.Faithful, func(s *results.Summary) { s.Flags = []string{"sender 3.1 % above receiver"} }),
		osSummary("flannel", "throughput", "dts", results.ThroughputBps, 8e9, 7e9, 9e9, results.Faithful, func(s *results.Summary) {
			s.N, s.CILevel, s.CoVPct, s.RobustCoVPct = 6, 0.96875, 9.5, ptr(1.5)
		}),
		results.Summary{Lab: "canal", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.ThroughputBps, Unit: "bit/s", Median: 6e9, CI95Low: 6e9, CI95High: 6e9, N: 1, CIMethod: "order-statistic", Provider: "netns", Fidelity: results.Faithful},
		results.Summary{Lab: "weave", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.ThroughputBps, Unit: "bit/s", Median: 5e9, CI95Low: 4e9, CI95High: 6e9, N: 3, Provider: "netns", Fidelity: results.Faithful},
	)
	d.Labs = append(d.Labs, results.Lab{Name: "calico", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK},
		results.Lab{Name: "flannel", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK},
		results.Lab{Name: "canal", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK})
	var b strings.Builder
	if err := Markdown(&b, d); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"## Figures above their host baseline",
		"| calico | dts | cross-node | throughput_bps | 21.00 [20.00–22.00] (75 %) | 10.00 [9.00–11.00] | 2.10 [1.82–2.44] ⚠ above host | 3 | netns | faithful | calico dts cross-node windows: r1 20.00 Gbit/s: cpu0 99 % busy (60 % softirq)",
		"inside the noise (the intervals overlap)",
		"- **calico dtm cross-node** (throughput_bps, netns/faithful): above host within noise (median 30.44 vs host 13.73 Gbit/s, +122 %",
		"| calico | – | 30.44 [13.44–30.90] (75 %) | 0.0 | 2.22 [0.90–2.74] |",
		// Robust CoV only where there is one (n ≥ 6), coverage 96.9 %.
		"| flannel | – | 8.00 [7.00–9.00] (96.9 %) | 9.5 (1.5) |",
		"| canal | – | 6.00 (n=1, no interval) |",
		"| weave | – | 5.00 (older run: mean's 95 % CI 4.00–6.00) |",
		"## Flags",
		// Once per lab × test, not once per metric.
		"| calico | throughput | dts | cross-node | – | sender 3.1 % above receiver |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(out, "sender 3.1 % above receiver"); n != 1 {
		t.Errorf("flag printed %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "above host within noise") && strings.Contains(out[strings.Index(out, "## Flags"):], "above host within noise") {
		t.Error("within-noise flag repeated in the flags table")
	}
	var tb bytes.Buffer
	if err := Table(&tb, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"21.00 [20.00–22.00] (75 %)", "2.10 [1.82–2.44] ⚠ above host", "ABOVE HOST (see report.md)", "1 flag(s)"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
}
