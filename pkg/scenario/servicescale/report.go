package servicescale

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/stats"
)

// Markdown renders one table per proxy: a row per N with programming,
// sizes, first-packet percentiles per placement and the connect rate. Each
// figure is the median over the run's repeats.
func Markdown(ms []results.Measurement) string {
	ms = medianOverRepeats(ms)
	type row struct {
		n    int
		prog results.Measurement
		fp   map[string]results.Measurement
		rate results.Measurement
	}
	byProxy := map[string]map[int]*row{}
	defaultIPT := ""
	var errs []string
	for _, m := range ms {
		if m.Scenario != Scenario {
			continue
		}
		if m.Error != "" && m.Test == TestProgram {
			errs = append(errs, fmt.Sprintf("- %s: %s", m.Proxy, m.Error))
			continue
		}
		if m.NotReproducible != "" {
			errs = append(errs, fmt.Sprintf("- %s: %s", m.Proxy, m.NotReproducible))
			continue
		}
		n, err := strconv.Atoi(m.Params["services"])
		if err != nil {
			continue
		}
		if byProxy[m.Proxy] == nil {
			byProxy[m.Proxy] = map[int]*row{}
		}
		r := byProxy[m.Proxy][n]
		if r == nil {
			r = &row{n: n, fp: map[string]results.Measurement{}}
			byProxy[m.Proxy][n] = r
		}
		switch m.Test {
		case TestProgram:
			r.prog = m
			if d := m.Params["iptables_default"]; d != "" {
				defaultIPT = d
			}
		case TestFirstPacket:
			r.fp[m.Placement] = m
		case TestConnectRate:
			r.rate = m
		}
	}
	var b strings.Builder
	names := make([]string, 0, len(byProxy))
	for p := range byProxy {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		heading := p
		switch {
		case defaultIPT == "" || !isIPTables(p):
		case p == defaultIPT:
			heading += " (what this system's iptables drives: the labs' backend)"
		default:
			heading += fmt.Sprintf(" (beside the system's default %s)", defaultIPT)
		}
		fmt.Fprintf(&b, "\n### %s\n\n", heading)
		b.WriteString("| N | program s | add-one s | add-one partial s | rules | chains | map entries | rules/ep | p50 first µs | p50 middle µs | p50 last µs | p01/p90/p99 last µs | connects/s |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		var ns []int
		for n := range byProxy[p] {
			ns = append(ns, n)
		}
		sort.Ints(ns)
		for _, n := range ns {
			r := byProxy[p][n]
			pm := r.prog.Metrics
			f := func(m map[string]float64, k, format string) string {
				v, ok := m[k]
				if !ok {
					return "–"
				}
				return fmt.Sprintf(format, v)
			}
			last := r.fp["last"].Metrics
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s/%s | %s |\n", n,
				f(pm, results.ProgramSeconds, "%.3f"), f(pm, results.AddOneSeconds, "%.4f"), f(pm, results.AddOnePartialSeconds, "%.4f"),
				f(pm, results.RuleCount, "%.0f"), f(pm, results.ChainCount, "%.0f"), f(pm, results.MapEntryCount, "%.0f"), f(pm, results.RulesPerEP, "%.0f"),
				f(r.fp["first"].Metrics, results.FirstPacketP50, "%.1f"), f(r.fp["middle"].Metrics, results.FirstPacketP50, "%.1f"), f(last, results.FirstPacketP50, "%.1f"),
				f(last, results.FirstPacketP01, "%.1f"), f(last, results.FirstPacketP90, "%.1f"), f(last, results.FirstPacketP99, "%.1f"),
				f(r.rate.Metrics, results.ConnectRate, "%.0f"))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		errs = slices.Compact(errs) // the same reason once, not once per repeat
		b.WriteString("\nNot measured:\n" + strings.Join(errs, "\n") + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// ShapeSummary states, per proxy, the ratio of first-packet p50 (real
// service placed last) and of add-one time between the largest and the
// smallest N: the figures the claims C8/C9 are judged on. With repeats,
// each figure is the median over them; a proxy this kernel cannot run is
// listed with the reason.
func ShapeSummary(ms []results.Measurement) []string {
	type key struct {
		proxy, test, placement, metric string
		n                              int
	}
	vals := map[key][]float64{}
	sizes := map[string][]int{}
	reasons := map[string]string{}
	for _, m := range ms {
		if m.Scenario != Scenario || m.Error != "" {
			continue
		}
		if m.NotReproducible != "" {
			reasons[m.Proxy] = m.NotReproducible
			continue
		}
		n, err := strconv.Atoi(m.Params["services"])
		if err != nil {
			continue
		}
		if !containsInt(sizes[m.Proxy], n) {
			sizes[m.Proxy] = append(sizes[m.Proxy], n)
		}
		for metric, v := range m.Metrics {
			k := key{m.Proxy, m.Test, m.Placement, metric, n}
			vals[k] = append(vals[k], v)
		}
	}
	get := func(p, test, placement, metric string, n int) (float64, bool) {
		v := vals[key{p, test, placement, metric, n}]
		if len(v) == 0 {
			return 0, false
		}
		return stats.Median(v), true
	}
	var out []string
	for p, ns := range sizes {
		sort.Ints(ns)
		lo, hi := ns[0], ns[len(ns)-1]
		line := fmt.Sprintf("%s: N %d -> %d:", p, lo, hi)
		if a, ok1 := get(p, TestFirstPacket, "last", results.FirstPacketP50, lo); ok1 && a > 0 {
			if b, ok2 := get(p, TestFirstPacket, "last", results.FirstPacketP50, hi); ok2 {
				line += fmt.Sprintf(" first-packet p50 (last) %.1f -> %.1f µs (x%.2f);", a, b, b/a)
			}
		}
		if a, ok1 := get(p, TestProgram, "", results.AddOneSeconds, lo); ok1 && a > 0 {
			if b, ok2 := get(p, TestProgram, "", results.AddOneSeconds, hi); ok2 {
				line += fmt.Sprintf(" add-one %.4f -> %.4f s (x%.1f);", a, b, b/a)
			}
		}
		if b, ok := get(p, TestProgram, "", results.ProgramSeconds, hi); ok {
			line += fmt.Sprintf(" program all %d: %.3f s", hi, b)
		}
		out = append(out, strings.TrimSuffix(line, ";"))
	}
	for p, why := range reasons {
		if _, measured := sizes[p]; !measured {
			out = append(out, p+": "+why)
		}
	}
	sort.Strings(out)
	return out
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// medianOverRepeats collapses repeats of the same proxy × test × placement ×
// parameters into one measurement whose metrics are the medians. Failed and
// not-reproducible measurements are kept as they are.
func medianOverRepeats(ms []results.Measurement) []results.Measurement {
	type key struct{ proxy, test, placement, n, e string }
	var order []key
	groups := map[key][]results.Measurement{}
	var out []results.Measurement
	for _, m := range ms {
		if m.Error != "" || m.NotReproducible != "" {
			out = append(out, m)
			continue
		}
		k := key{m.Proxy, m.Test, m.Placement, m.Params["services"], m.Params["endpoints"]}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], m)
	}
	for _, k := range order {
		g := groups[k]
		m := g[0]
		vals := map[string][]float64{}
		for _, r := range g {
			for name, v := range r.Metrics {
				vals[name] = append(vals[name], v)
			}
		}
		m.Metrics = map[string]float64{}
		for name, v := range vals {
			m.Metrics[name] = stats.Median(v)
		}
		out = append(out, m)
	}
	return out
}
