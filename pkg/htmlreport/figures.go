package htmlreport

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"

	"github.com/cnilab/cnilab/pkg/report"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/scenario/servicescale"
)

// testOrder is the order tests are shown in (the report.md order).
var testOrder = []string{"idle", "dts", "dtm", "dus", "dum", "sts", "stm", "sus", "sum", "drr", "dcrr", "srr", "scrr"}

// headlineMetrics are tried in order; a test's chart shows the first its
// summaries have.
var headlineMetrics = []string{results.ThroughputBps, results.LatencyP50, results.AgentCPUCores, results.CPUCores}

// display scales a metric for people.
func display(metric string) (scale float64, unit string) {
	base, _ := results.SplitComponent(metric)
	switch {
	case base == results.PodMTU:
		return 1, "bytes"
	case base == results.SentBps || results.Unit(base) == "bit/s":
		return 1e9, "Gbit/s"
	case results.Unit(base) == "bytes":
		return 1 << 20, "MiB"
	}
	return 1, results.Unit(base)
}

// testKey names one chart of the per-test section.
type testKey struct{ scenario, test, placement string }

// TestFigure is one test's chart and the figures behind it.
type TestFigure struct {
	Key    string
	Title  string
	Metric string
	Unit   string
	Chart  Chart
	Rows   []FigureRow
}

// FigureRow is one lab's figure as the table under a chart shows it.
type FigureRow struct {
	Lab, Provider, Fidelity string
	Median, Interval        string
	Coverage                string
	N                       int
	Ratio                   string
	Doubts                  []string
	Host                    bool
}

// labOrder returns the lab names in the document's order (each once, over
// providers), and the providers in order of first appearance.
func labOrder(doc *results.Document) (labs, providers []string, hostLabs map[string]bool) {
	hostLabs = map[string]bool{}
	for _, l := range doc.Labs {
		if l.CNI == "host" {
			hostLabs[l.Name] = true
		}
		if !slices.Contains(labs, l.Name) {
			labs = append(labs, l.Name)
		}
		if !slices.Contains(providers, l.Provider) {
			providers = append(providers, l.Provider)
		}
	}
	for _, s := range doc.Summaries {
		if !slices.Contains(providers, s.Provider) {
			providers = append(providers, s.Provider)
		}
	}
	return labs, providers, hostLabs
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', -1, 64) + " %" }

func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// coverageText prints the intervals' coverage levels of a chart: one
// level, or each level found.
func coverageText(levels []float64) string {
	slices.Sort(levels)
	levels = slices.Compact(levels)
	var s []string
	for _, l := range levels {
		if l > 0 {
			s = append(s, pct(l))
		}
	}
	if len(s) == 0 {
		return "coverage not recorded"
	}
	return "coverage " + strings.Join(s, ", ")
}

// testFigures builds one chart per scenario × test × placement (the
// services-scale tests have their own section): the labs' medians with
// the median's interval, grouped by provider, with the host baselines.
func testFigures(doc *results.Document) ([]TestFigure, error) {
	labs, providers, hostLabs := labOrder(doc)
	bySum := map[testKey][]results.Summary{}
	var keys []testKey
	for _, s := range doc.Summaries {
		if len(s.Params) > 0 || s.Scenario == servicescale.Scenario {
			continue
		}
		k := testKey{s.Scenario, s.Test, s.Placement}
		if _, ok := bySum[k]; !ok {
			keys = append(keys, k)
		}
		bySum[k] = append(bySum[k], s)
	}
	rank := func(t string) int {
		if i := slices.Index(testOrder, t); i >= 0 {
			return i
		}
		return len(testOrder)
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.scenario != b.scenario {
			return a.scenario > b.scenario // throughput before latency
		}
		if a.placement != b.placement {
			return a.placement < b.placement
		}
		return rank(a.test) < rank(b.test)
	})
	var out []TestFigure
	for _, k := range keys {
		sums := bySum[k]
		metric := ""
		for _, m := range headlineMetrics {
			if slices.ContainsFunc(sums, func(s results.Summary) bool { return s.Metric == m }) {
				metric = m
				break
			}
		}
		if metric == "" {
			continue
		}
		scale, unit := display(metric)
		type pk struct{ provider, lab string }
		fig := map[pk]results.Summary{}
		for _, s := range sums {
			if s.Metric == metric {
				fig[pk{s.Provider, s.Lab}] = s
			}
		}
		var cats []string
		for _, l := range labs {
			if hostLabs[l] {
				continue
			}
			if slices.ContainsFunc(providers, func(p string) bool { _, ok := fig[pk{p, l}]; return ok }) {
				cats = append(cats, l)
			}
		}
		var present []string
		for _, p := range providers {
			if slices.ContainsFunc(labs, func(l string) bool { _, ok := fig[pk{p, l}]; return ok }) {
				present = append(present, p)
			}
		}
		var series []dotSeries
		var levels []float64
		var rows []FigureRow
		width := 0.5 / math.Max(1, float64(len(present)))
		for pi, p := range present {
			ds := dotSeries{name: p, host: math.NaN()}
			for ci, l := range cats {
				s, ok := fig[pk{p, l}]
				if !ok {
					continue
				}
				y := s.Median / scale
				lo, hi := s.CI95Low/scale, s.CI95High/scale
				if s.N < 2 || lo > y || hi < y {
					lo, hi = y, y // no interval to draw
				}
				x := float64(ci) + (float64(pi)-float64(len(present)-1)/2)*width
				ds.points = append(ds.points, point{x: x, y: y, lo: lo, hi: hi, flagged: s.AboveHost != nil})
				levels = append(levels, s.CILevel)
			}
			for l := range hostLabs {
				if s, ok := fig[pk{p, l}]; ok {
					ds.host = s.Median / scale
					ds.hostName = fmt.Sprintf("host baseline (%s)", p)
				}
			}
			if math.IsNaN(ds.host) {
				// A flagged figure carries the baseline it beat.
				for _, l := range cats {
					if s, ok := fig[pk{p, l}]; ok && s.AboveHost != nil {
						ds.host = s.AboveHost.HostMedian / scale
						ds.hostName = fmt.Sprintf("host baseline (%s)", p)
						break
					}
				}
			}
			series = append(series, ds)
			for _, l := range labs {
				if s, ok := fig[pk{p, l}]; ok {
					rows = append(rows, figureRow(s, scale, hostLabs[l]))
				}
			}
		}
		id := "test-" + k.scenario + "-" + k.test
		title := k.test
		if t, ok := report.TestTitle(k.test); ok {
			title += ": " + t
		}
		if k.placement != "" {
			id += "-" + k.placement
			title += " (" + k.placement + ")"
		}
		caption := fmt.Sprintf("Dots: each lab's median %s; whiskers: the median's own order-statistic interval (%s); dashed: the host baseline of each provider. Red rings: a figure above its host baseline beyond both intervals, kept out of rankings.", metric, coverageText(levels))
		ch, err := dotChart(id, title, metric+" ("+unit+")", cats, series, caption)
		if err != nil {
			return nil, err
		}
		out = append(out, TestFigure{Key: id, Title: title, Metric: metric, Unit: unit, Chart: ch, Rows: rows})
	}
	return out, nil
}

func figureRow(s results.Summary, scale float64, host bool) FigureRow {
	r := FigureRow{Lab: s.Lab, Provider: s.Provider, Fidelity: string(s.Fidelity), Median: num(s.Median / scale), N: s.N, Host: host, Ratio: "–", Interval: "–"}
	if s.N >= 2 {
		r.Interval = num(s.CI95Low/scale) + " – " + num(s.CI95High/scale)
	}
	r.Coverage = "–"
	if s.CILevel > 0 {
		r.Coverage = pct(s.CILevel)
	}
	if s.RatioToHost != nil {
		r.Ratio = fmt.Sprintf("%.2f", *s.RatioToHost)
		if s.RatioCI95Low != nil && s.RatioCI95High != nil {
			r.Ratio += fmt.Sprintf(" (%.2f – %.2f)", *s.RatioCI95Low, *s.RatioCI95High)
		}
	}
	if a := s.AboveHost; a != nil {
		r.Doubts = append(r.Doubts, fmt.Sprintf("above host: host %s (%s – %s); %s", num(a.HostMedian/scale), num(a.HostCI95Low/scale), num(a.HostCI95High/scale), a.Evidence))
	}
	r.Doubts = append(r.Doubts, s.Flags...)
	return r
}

// latencyCDFs draws, per latency test, the distribution of the kept raw
// samples of every lab (all repeats pooled).
func latencyCDFs(doc *results.Document) ([]Chart, error) {
	_, providers, _ := labOrder(doc)
	labs, _, _ := labOrder(doc)
	type pk struct{ provider, lab string }
	byTest := map[testKey]map[pk][]float64{}
	windows := map[testKey]map[pk]int{}
	var keys []testKey
	for _, m := range doc.Measurements {
		if m.Scenario == servicescale.Scenario || len(m.Samples) == 0 || m.Error != "" {
			continue
		}
		k := testKey{m.Scenario, m.Test, m.Placement}
		if byTest[k] == nil {
			byTest[k] = map[pk][]float64{}
			windows[k] = map[pk]int{}
			keys = append(keys, k)
		}
		names := make([]string, 0, len(m.Samples))
		for n := range m.Samples {
			names = append(names, n)
		}
		sort.Strings(names)
		p := pk{m.Provider, m.Lab}
		byTest[k][p] = append(byTest[k][p], m.Samples[names[0]]...)
		windows[k][p]++
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.placement != b.placement {
			return a.placement < b.placement
		}
		return slices.Index(testOrder, a.test) < slices.Index(testOrder, b.test)
	})
	var out []Chart
	for _, k := range keys {
		var series []lineSeries
		total := 0
		for _, p := range providers {
			for _, l := range labs {
				v := byTest[k][pk{p, l}]
				if len(v) == 0 {
					continue
				}
				name := l
				if len(providers) > 1 {
					name += " (" + p + ")"
				}
				xys := cdf(v, 200)
				series = append(series, lineSeries{name: name, xys: xys, colour: len(series), dashed: p != providers[0]})
				total += len(v)
			}
		}
		if len(series) == 0 {
			continue
		}
		id := "cdf-" + k.scenario + "-" + k.test
		title := k.test + " latency distribution"
		if k.placement != "" {
			id += "-" + k.placement
			title += " (" + k.placement + ")"
		}
		caption := fmt.Sprintf("Empirical CDF of the raw samples kept per window (%d samples, every repeat pooled per lab); X on a log scale.", total)
		ch, err := lineChart(id, title, "latency (µs)", "fraction of samples ≤ x", series, true, false, caption)
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	return out, nil
}

// cdf returns at most n points of the empirical CDF of v (positive values
// only: the axis is logarithmic).
func cdf(v []float64, n int) plotter.XYs {
	s := make([]float64, 0, len(v))
	for _, x := range v {
		if x > 0 && !math.IsInf(x, 0) && !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return nil
	}
	sort.Float64s(s)
	step := max(1, len(s)/n)
	var out plotter.XYs
	for i := 0; i < len(s); i += step {
		out = append(out, plotter.XY{X: s[i], Y: float64(i+1) / float64(len(s))})
	}
	if last := out[len(out)-1]; last.Y < 1 {
		out = append(out, plotter.XY{X: s[len(s)-1], Y: 1})
	}
	return out
}

// placementGlyphs mark where the real service sat among the N.
var placementGlyphs = map[string]draw.GlyphDrawer{
	"first":  draw.CircleGlyph{},
	"middle": draw.TriangleGlyph{},
	"last":   draw.BoxGlyph{},
}

// scaleCharts draws services-scale first-packet latency against N per
// proxy backend, one curve per placement of the real service, on log
// axes: p50 and p99.
func scaleCharts(doc *results.Document) ([]Chart, []string, error) {
	type sk struct{ proxy, placement string }
	var notes []string
	for _, m := range doc.Measurements {
		if m.Scenario == servicescale.Scenario && m.NotReproducible != "" {
			n := fmt.Sprintf("%s: %s", m.Proxy, m.NotReproducible)
			if !slices.Contains(notes, n) {
				notes = append(notes, n)
			}
		}
	}
	var out []Chart
	for _, metric := range []string{results.FirstPacketP50, results.FirstPacketP99} {
		pts := map[sk]plotter.XYs{}
		var proxies []string
		dropped := 0
		for _, s := range doc.Summaries {
			if s.Scenario != servicescale.Scenario || s.Test != servicescale.TestFirstPacket || s.Metric != metric {
				continue
			}
			n, err := strconv.Atoi(s.Params["services"])
			if err != nil {
				return nil, nil, fmt.Errorf("summary %s/%s/%s: services=%q is not a count", s.Lab, s.Test, s.Metric, s.Params["services"])
			}
			proxy := s.Proxy
			if proxy == "" {
				proxy = s.Params["proxy"]
			}
			if s.Median <= 0 || n <= 0 {
				dropped++
				continue
			}
			if !slices.Contains(proxies, proxy) {
				proxies = append(proxies, proxy)
			}
			k := sk{proxy, s.Placement}
			pts[k] = append(pts[k], plotter.XY{X: float64(n), Y: s.Median})
		}
		if len(pts) == 0 {
			continue
		}
		sort.Strings(proxies)
		var series []lineSeries
		for pi, proxy := range proxies {
			for _, pl := range servicescale.Placements {
				xys := pts[sk{proxy, pl}]
				if len(xys) == 0 {
					continue
				}
				sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
				series = append(series, lineSeries{name: proxy + " · " + pl, xys: xys, colour: pi, glyph: placementGlyphs[pl], dashed: pl != "last"})
			}
		}
		caption := fmt.Sprintf("Median %s over repeats per N services, one colour per service proxy, one marker per placement of the real service among the N (first ●, middle ▲, last ■; last solid); both axes logarithmic.", metric)
		if dropped > 0 {
			caption += fmt.Sprintf(" %d non-positive figures left out (log axis).", dropped)
		}
		if len(notes) > 0 {
			caption += " Not measured: " + strings.Join(notes, "; ") + "."
		}
		id := "scale-" + strings.TrimSuffix(strings.TrimPrefix(metric, "first_packet_"), "_us")
		ch, err := lineChart(id, "services-scale: first packet "+strings.TrimSuffix(strings.TrimPrefix(metric, "first_packet_"), "_us"), "services (N)", "first-packet latency (µs)", series, true, true, caption)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, ch)
	}
	return out, notes, nil
}
