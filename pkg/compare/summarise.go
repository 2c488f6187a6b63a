package compare

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/stats"
)

// HostLab is the baseline every figure is compared with.
const HostLab = "host"

// CIMethod names how a summary's interval was found.
const CIMethod = "order-statistic"

// AboveHostMinPct is how far above the host's median a figure must be to
// get results.FlagAboveHostWithinNoise when the intervals overlap.
const AboveHostMinPct = 5

// ratioMetrics are the metrics whose ratio to the host baseline means
// something: the host path is a physical limit of the same quantity — a
// ceiling for received throughput and for transaction/connect rates, a
// floor for latency percentiles — so "0.7 × host" or "1.4 × host" reads
// as the share of the limit a CNI keeps or the cost it adds. Left out on
// purpose: retransmits, UDP loss and jitter (counts and shares of rare
// events, often 0 on the host), CPU, memory and footprint figures (the
// host's idle CPU is no limit, and its CPU under load is a different
// workload's), pod_mtu and rule/map counts (settings, not performance),
// sent_bps (an input checked against the received rate), services-scale
// timings (the host runs no service proxy).
var ratioMetrics = map[string]bool{
	results.ThroughputBps:   true,
	results.TransactionRate: true,
	results.ConnectRate:     true,
	results.LatencyP50:      true,
	results.LatencyP90:      true,
	results.LatencyP99:      true,
}

// Summarise groups successful measurements by lab × scenario × test ×
// placement × proxy × params × metric and summarises each group: the
// median with its order-statistic interval and that interval's coverage,
// the mean with its t-interval, the CoV, the robust CoV from n = 6, and
// the union of the windows' flags.
//
// A lab is its name on its provider: each provider's labs are divided
// by that provider's own host baseline.
//
// Where the host baseline has the same test (a service test: the host's
// direct one), metric and placement, metrics in ratioMetrics get the ratio
// of medians with a conservative interval. A non-host received-throughput
// figure whose interval lies wholly above the host's (both n ≥ 2) gets
// AboveHost with the per-CPU evidence of both labs' windows; one whose
// median is more than AboveHostMinPct above the host's while the
// intervals overlap gets a results.FlagAboveHostWithinNoise flag.
func Summarise(doc *results.Document) []results.Summary {
	type key struct {
		// provider is part of a lab's identity: flannel on netns and
		// flannel on kind are two labs, each with its own host baseline.
		provider, lab, scenario, test, placement, proxy, params, metric string
	}
	groups := map[key][]float64{}
	windows := map[key][]results.Measurement{}
	var order []key
	for _, m := range doc.Measurements {
		if m.Error != "" {
			continue
		}
		for metric, v := range m.Metrics {
			k := key{m.Provider, m.Lab, m.Scenario, m.Test, m.Placement, m.Proxy, paramsKey(m.Params), metric}
			if _, seen := groups[k]; !seen {
				order = append(order, k)
			}
			groups[k] = append(groups[k], v)
			windows[k] = append(windows[k], m)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.scenario != b.scenario {
			return a.scenario < b.scenario
		}
		if a.test != b.test {
			return a.test < b.test
		}
		if a.placement != b.placement {
			return a.placement < b.placement
		}
		if a.proxy != b.proxy {
			return a.proxy < b.proxy
		}
		if a.params != b.params {
			return a.params < b.params
		}
		if a.lab != b.lab {
			return a.lab < b.lab
		}
		if a.provider != b.provider {
			return a.provider < b.provider
		}
		return a.metric < b.metric
	})
	var out []results.Summary
	var keys []key
	index := map[key]int{}
	for _, k := range order {
		s, err := stats.Summarise(groups[k])
		if err != nil {
			continue
		}
		m := windows[k][0]
		sum := results.Summary{Lab: k.lab, Scenario: k.scenario, Test: k.test, Placement: k.placement, Params: m.Params,
			Metric: k.metric, Unit: results.Unit(k.metric), Median: s.Median,
			CI95Low: s.MedianCI.Low, CI95High: s.MedianCI.High, CILevel: s.MedianCI.Level, CIMethod: CIMethod,
			Mean: s.Mean, StdDev: s.StdDev, MeanCI95Low: s.MeanCI95Low, MeanCI95High: s.MeanCI95High,
			CoVPct: s.CoVPct, RobustCoVPct: s.RobustCoVPct, N: s.N,
			Flags: windowFlags(windows[k]), Provider: m.Provider, Fidelity: m.Fidelity, Proxy: m.Proxy}
		// Every metric cnilab records is non-negative; a t-interval that
		// dips below zero (few, spread repeats) is cut at zero. The
		// median's interval lies within the data and needs no cut.
		if sum.MeanCI95Low < 0 {
			sum.MeanCI95Low = 0
		}
		index[k] = len(out)
		out = append(out, sum)
		keys = append(keys, k)
	}
	for i := range out {
		s := &out[i]
		if s.Lab == HostLab || !ratioMetrics[s.Metric] {
			continue
		}
		// A service test on a CNI is compared with the host's direct test:
		// the host has no service proxy, its direct path is the limit.
		test := s.Test
		if len(test) >= 3 && test[0] == 's' {
			test = "d" + test[1:]
		}
		hk := key{keys[i].provider, HostLab, s.Scenario, test, s.Placement, "", keys[i].params, s.Metric}
		hi, ok := index[hk]
		if !ok {
			continue
		}
		base := out[hi]
		attachRatio(s, base)
		if s.Metric == results.ThroughputBps {
			judgeAboveHost(s, base, windows[keys[i]], windows[hk])
		}
	}
	return out
}

// attachRatio sets the ratio of s's median to the host's with the
// conservative interval. When the host's interval reaches zero the ratio
// is shown without an interval (it would be unbounded); a zero host
// median gives no ratio at all.
func attachRatio(s *results.Summary, host results.Summary) {
	r, err := stats.MedianRatio(s.Median, stats.Interval{Low: s.CI95Low, High: s.CI95High, Level: s.CILevel},
		host.Median, stats.Interval{Low: host.CI95Low, High: host.CI95High, Level: host.CILevel})
	if err != nil {
		if host.Median > 0 && s.Median >= 0 {
			v := s.Median / host.Median
			s.RatioToHost = &v
		}
		return
	}
	s.RatioToHost, s.RatioCI95Low, s.RatioCI95High = &r.Value, &r.Low, &r.High
}

// judgeAboveHost flags a throughput figure above the host path it runs
// on. Beyond both intervals (the lab's lower bound above the host's upper
// bound, each from at least two windows) it is AboveHost, with the
// evidence; a median more than AboveHostMinPct above the host's inside
// overlapping intervals is a flag.
func judgeAboveHost(s *results.Summary, host results.Summary, labWindows, hostWindows []results.Measurement) {
	if host.Median <= 0 || s.Median <= host.Median {
		return
	}
	evidence := cpuEvidence(s.Lab, s.Test, s.Placement, labWindows) + "; " + cpuEvidence(HostLab, host.Test, host.Placement, hostWindows)
	if s.N >= 2 && host.N >= 2 && s.CI95Low > host.CI95High {
		s.AboveHost = &results.AboveHost{HostMedian: host.Median, HostCI95Low: host.CI95Low, HostCI95High: host.CI95High, Evidence: evidence}
		return
	}
	pct := 100 * (s.Median - host.Median) / host.Median
	if pct <= AboveHostMinPct {
		return
	}
	g := func(v float64) string { return fmt.Sprintf("%.2f", v/1e9) }
	s.Flags = append(s.Flags, fmt.Sprintf("%s (median %s vs host %s Gbit/s, +%.0f %%; intervals %s–%s (%s) and %s–%s (%s) overlap): %s",
		results.FlagAboveHostWithinNoise, g(s.Median), g(host.Median), pct,
		g(s.CI95Low), g(s.CI95High), levelPct(s.CILevel), g(host.CI95Low), g(host.CI95High), levelPct(host.CILevel), evidence))
}

// cpuEvidence describes where a lab's windows ran, window by window:
// "calico dtm cross-node windows: r1 30.44 Gbit/s: cpu0 98 % busy (41 %
// softirq), cpu1 12 % busy (3 % softirq); r2 …".
func cpuEvidence(lab, test, placement string, ws []results.Measurement) string {
	ws = append([]results.Measurement(nil), ws...)
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].Repeat < ws[j].Repeat })
	b := &strings.Builder{}
	fmt.Fprintf(b, "%s %s %s windows:", lab, test, placement)
	for i, m := range ws {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(b, " r%d %s", m.Repeat, gbit(m.Metrics[results.ThroughputBps]))
		if m.Pinning != "" {
			fmt.Fprintf(b, " (%s)", m.Pinning)
		}
		if len(m.CPUs) == 0 {
			b.WriteString(": no per-CPU data")
			continue
		}
		b.WriteString(":")
		for j, c := range m.CPUs {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(b, " cpu%d %.0f %% busy (%.0f %% softirq)", c.CPU, c.BusyPct, c.SoftirqPct)
		}
	}
	return b.String()
}

// windowFlags is the union of the windows' flags, sorted.
func windowFlags(ws []results.Measurement) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ws {
		for _, f := range m.Flags {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

func gbit(bps float64) string { return fmt.Sprintf("%.2f Gbit/s", bps/1e9) }

// levelPct prints a coverage as a percentage with three significant
// figures: 0.75 → "75 %", 0.9375 → "93.8 %".
func levelPct(l float64) string {
	if math.IsNaN(l) {
		return "? %"
	}
	return fmt.Sprintf("%.3g %%", 100*l)
}

func paramsKey(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += k + "=" + p[k] + ";"
	}
	return s
}
