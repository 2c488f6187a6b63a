package servicescale

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/results"
)

// Markdown renders one table per proxy: a row per N with programming,
// sizes, first-packet percentiles per placement and the connect rate.
func Markdown(ms []results.Measurement) string {
	type row struct {
		n    int
		prog results.Measurement
		fp   map[string]results.Measurement
		rate results.Measurement
	}
	byProxy := map[string]map[int]*row{}
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
		fmt.Fprintf(&b, "\n### %s\n\n", p)
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
		b.WriteString("\nNot measured:\n" + strings.Join(errs, "\n") + "\n")
	}
	return b.String()
}

// ShapeSummary states, per proxy, the ratio of first-packet p50 (real
// service placed last) and of add-one time between the largest and the
// smallest N: the figures the claims C8/C9 are judged on.
func ShapeSummary(ms []results.Measurement) []string {
	type span struct {
		minN, maxN           int
		p50Min, p50Max       float64
		addMin, addMax       float64
		p50Lo, p50Hi         float64
		haveP50Lo, haveP50Hi bool
	}
	sp := map[string]*span{}
	for _, m := range ms {
		n, err := strconv.Atoi(m.Params["services"])
		if err != nil || m.Error != "" {
			continue
		}
		s := sp[m.Proxy]
		if s == nil {
			s = &span{minN: n, maxN: n}
			sp[m.Proxy] = s
		}
		if n < s.minN {
			s.minN = n
		}
		if n > s.maxN {
			s.maxN = n
		}
		_ = s
	}
	var out []string
	for p, s := range sp {
		get := func(test, placement, metric string, n int) (float64, bool) {
			for _, m := range ms {
				if m.Proxy == p && m.Test == test && m.Placement == placement && m.Params["services"] == strconv.Itoa(n) {
					v, ok := m.Metrics[metric]
					return v, ok
				}
			}
			return 0, false
		}
		lo, ok1 := get(TestFirstPacket, "last", results.FirstPacketP50, s.minN)
		hi, ok2 := get(TestFirstPacket, "last", results.FirstPacketP50, s.maxN)
		alo, ok3 := get(TestProgram, "", results.AddOneSeconds, s.minN)
		ahi, ok4 := get(TestProgram, "", results.AddOneSeconds, s.maxN)
		line := fmt.Sprintf("%s: N %d -> %d:", p, s.minN, s.maxN)
		if ok1 && ok2 && lo > 0 {
			line += fmt.Sprintf(" first-packet p50 (last) %.1f -> %.1f µs (x%.2f);", lo, hi, hi/lo)
		}
		if ok3 && ok4 && alo > 0 {
			line += fmt.Sprintf(" add-one %.4f -> %.4f s (x%.1f)", alo, ahi, ahi/alo)
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}
