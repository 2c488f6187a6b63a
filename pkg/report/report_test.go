package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/results"
)

func ptr(v float64) *float64 { return &v }

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
			{Lab: "host", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.ThroughputBps, Median: 10e9, CI95Low: 9e9, CI95High: 11e9, CoVPct: 2, N: 3, Provider: "netns", Fidelity: results.Faithful},
			{Lab: "cilium", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.ThroughputBps, Median: 7e9, CI95Low: 6.5e9, CI95High: 7.5e9, CoVPct: 3, N: 3, RatioToHost: ptr(0.7), Provider: "netns", Fidelity: results.Approximate},
			{Lab: "cilium", Scenario: "throughput", Test: "sus", Placement: "cross-node", Metric: results.ThroughputBps, Median: 1e9, N: 3, Provider: "netns", Fidelity: results.Approximate, Proxy: "ebpf"},
			{Lab: "cilium", Scenario: "throughput", Test: "sus", Placement: "cross-node", Metric: results.UDPLossPct, Median: 4.5, N: 3, Provider: "netns", Fidelity: results.Approximate, Proxy: "ebpf"},
			{Lab: "cilium", Scenario: "latency", Test: "drr", Placement: "cross-node", Metric: results.LatencyP50, Median: 71.6, CI95Low: 70, CI95High: 74, CoVPct: 1, N: 3, Provider: "netns", Fidelity: results.Approximate},
			{Lab: "cilium", Scenario: "latency", Test: "drr", Placement: "cross-node", Metric: results.LatencyP99, Median: 128.5, N: 3, Provider: "netns", Fidelity: results.Approximate},
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
		"| cilium | – | 7.00 | 6.50–7.50 | 3.0 (0.0) | 0.70 |",
		"| netns | approximate |",
		"| weave | weave | netns | not-modelled | unavailable |",
		"UDP loss % (median)",
		"| cilium | ebpf | 1.00 |",
		"## sus — pod → service, UDP, 1 stream (cross-node, throughput)",
		"| cilium | – | 71.6 | 70.0–74.0 | 1.0 (0.0) | – | – | 128.5 | – | 3 | netns | approximate |",
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
