package htmlreport

import (
	"bytes"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/rank"
	"github.com/cnilab/cnilab/pkg/results"
)

// wantChart is what a reader must find on one chart.
type wantChart struct {
	id      string
	series  []string // the series' legend entries
	labels  []string // category labels on the X axis
	texts   []string // other text that must be drawn (host baselines)
	colours int      // distinct series colours drawn
}

// capturedRuns are trimmed copies of real runs' results.json (testdata/
// README.md says which runs and how they were trimmed); a case of two
// files is one document holding both runs, as a kind + netns run is.
var capturedRuns = []struct {
	name   string
	files  []string
	charts int
	want   []wantChart
}{
	{
		name: "netns models, throughput, latency and services-scale", files: []string{"netns-scale-latency.json"},
		charts: 9 + 4 + 4 + 2, // throughput tests, latency tests, latency CDFs, services-scale p50/p99
		want: []wantChart{
			{id: "test-throughput-dts-cross-node", series: []string{"netns"}, labels: []string{"flannel", "calico", "cilium"}, texts: []string{"host baseline (netns)"}, colours: 1},
			{id: "test-throughput-dtm-cross-node", series: []string{"netns"}, labels: []string{"flannel", "calico", "cilium"}, texts: []string{"host baseline (netns)"}, colours: 1},
			{id: "test-throughput-stm-cross-node", series: []string{"netns"}, labels: []string{"flannel", "calico", "cilium"}, colours: 1}, // the host has no service path
			{id: "test-latency-drr-cross-node", series: []string{"netns"}, labels: []string{"flannel", "calico", "cilium"}, texts: []string{"host baseline (netns)"}, colours: 1},
			{id: "cdf-latency-dcrr-cross-node", series: []string{"host", "flannel", "calico", "cilium"}, colours: 4},
			{id: "scale-p50", series: scaleSeries("ebpf", "iptables", "nftables"), colours: 3},
			{id: "scale-p99", series: scaleSeries("ebpf", "iptables", "nftables"), colours: 3},
		},
	},
	{
		name: "kind, real CNIs, throughput and latency", files: []string{"kind-latency.json"},
		charts: 9 + 4 + 4,
		want: []wantChart{
			{id: "test-throughput-dts-cross-node", series: []string{"kind"}, labels: []string{"flannel", "cilium", "kube-router"}, colours: 1},
			{id: "test-throughput-idle-cross-node", series: []string{"kind"}, labels: []string{"flannel", "cilium", "kube-router"}, colours: 1},
			{id: "test-latency-scrr-cross-node", series: []string{"kind"}, labels: []string{"flannel", "cilium", "kube-router"}, colours: 1},
			{id: "cdf-latency-drr-cross-node", series: []string{"flannel", "cilium", "kube-router"}, colours: 3},
		},
	},
	{
		name: "netns and kind in one document, grouped by provider", files: []string{"netns-scale-latency.json", "kind-latency.json"},
		charts: 9 + 4 + 4 + 2,
		want: []wantChart{
			{id: "test-throughput-dts-cross-node", series: []string{"netns", "kind"}, labels: []string{"flannel", "calico", "cilium", "kube-router"}, texts: []string{"host baseline (netns)"}, colours: 2},
			{id: "cdf-latency-drr-cross-node", series: []string{"host (netns)", "flannel (netns)", "calico (netns)", "cilium (netns)", "flannel (kind)", "cilium (kind)", "kube-router (kind)"}, colours: 7},
		},
	},
}

func scaleSeries(proxies ...string) []string {
	var out []string
	for _, p := range proxies {
		for _, pl := range []string{"first", "middle", "last"} {
			out = append(out, p+" · "+pl)
		}
	}
	return out
}

// loadRun reads a case's documents; several are merged into one.
func loadRun(t *testing.T, files []string) *results.Document {
	t.Helper()
	var doc *results.Document
	for _, f := range files {
		d, err := results.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if doc == nil {
			doc = d
			continue
		}
		doc.Labs = append(doc.Labs, d.Labs...)
		doc.Measurements = append(doc.Measurements, d.Measurements...)
		doc.Summaries = append(doc.Summaries, d.Summaries...)
	}
	return doc
}

func TestPageIsSelfContained(t *testing.T) {
	for _, tc := range capturedRuns {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadRun(t, tc.files)
			var buf bytes.Buffer
			if err := Write(&buf, doc); err != nil {
				t.Fatal(err)
			}
			page := buf.String()
			if strings.Contains(strings.ToLower(page), "<script") {
				t.Error("page has a script")
			}
			if !strings.Contains(page, `content="default-src 'none'; style-src 'unsafe-inline'"`) {
				t.Error("page lacks the Content-Security-Policy that forbids fetches")
			}
			// Anything that could fetch: src/href attributes to another
			// document, CSS url() or @import, <link>.
			fetch := regexp.MustCompile(`(?i)(\ssrc\s*=|\shref\s*=\s*"[^#]|url\(|@import|<link\b|<img\b|<iframe\b|<object\b)`)
			if m := fetch.FindAllString(page, 5); len(m) > 0 {
				t.Errorf("page references outside resources: %q", m)
			}
			if strings.Contains(page, "<?xml") {
				t.Error("an SVG kept its XML prolog (invalid inside HTML)")
			}
		})
	}
}

func TestChartsShowSeriesAndLabels(t *testing.T) {
	for _, tc := range capturedRuns {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadRun(t, tc.files)
			p, err := Build(doc)
			if err != nil {
				t.Fatal(err)
			}
			byID := map[string]Chart{}
			for _, f := range p.Tests {
				byID[f.Chart.ID] = f.Chart
			}
			for _, c := range append(slices.Clone(p.CDFs), p.Scale...) {
				byID[c.ID] = c
			}
			if len(byID) != tc.charts {
				ids := make([]string, 0, len(byID))
				for id := range byID {
					ids = append(ids, id)
				}
				slices.Sort(ids)
				t.Errorf("%d charts, want %d: %q", len(byID), tc.charts, ids)
			}
			for _, w := range tc.want {
				c, ok := byID[w.id]
				if !ok {
					t.Errorf("no chart %s", w.id)
					continue
				}
				if !slices.Equal(c.Series, w.series) {
					t.Errorf("chart %s: series %q, want %q", w.id, c.Series, w.series)
				}
				if w.labels != nil && !slices.Equal(c.Labels, w.labels) {
					t.Errorf("chart %s: labels %q, want %q", w.id, c.Labels, w.labels)
				}
				for _, s := range slices.Concat(w.series, w.labels, w.texts) {
					if !strings.Contains(c.SVG, ">"+s+"</text>") {
						t.Errorf("chart %s: %q not drawn", w.id, s)
					}
				}
			}
		})
	}
}

// TestRankingAndClaimsFromPkgRank: the page shows pkg/rank's result for
// the run, every environment and every claim, not a copy of its own.
func TestRankingAndClaimsFromPkgRank(t *testing.T) {
	doc := loadRun(t, capturedRuns[0].files)
	defs, err := rank.LoadDefinitions(rank.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := rank.ForResults(doc, defs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, doc); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, env := range want.Environments {
		if !strings.Contains(page, `id="env-`+env.Name+`"`) {
			t.Errorf("environment %s missing", env.Name)
		}
		for _, e := range env.Ranking {
			tie := ""
			if len(e.TiedWith) > 0 {
				tie = "="
			}
			row := regexp.MustCompile(`<tr( class="tied")?><td class="num">` + strconv.Itoa(e.Place) + tie + `</td><td>` + regexp.QuoteMeta(e.CNI) + `</td>`)
			if !row.MatchString(page[strings.Index(page, `id="env-`+env.Name+`"`):]) {
				t.Errorf("%s: place %d %s not shown", env.Name, e.Place, e.CNI)
			}
		}
	}
	if got, n := strings.Count(page, `<span class="verdict-`), len(want.Claims); got < n {
		t.Errorf("%d verdicts shown, want at least %d (one per claim for this run)", got, n)
	}
}

// TestSectionsTheSchemaAdds: a results document with a section this page
// has no own layout for (the fidelity check another change adds) shows it.
func TestSectionsTheSchemaAdds(t *testing.T) {
	doc := loadRun(t, capturedRuns[0].files)
	p, err := Build(doc)
	if err != nil {
		t.Fatal(err)
	}
	if p.Fidelity != "" || len(p.Extras) != 0 {
		t.Fatalf("a plain document got extra sections: fidelity %q, extras %v", p.Fidelity, p.Extras)
	}
	type withFidelity struct {
		*results.Document
		Fidelity any `json:"fidelity"`
	}
	check := []map[string]any{{"cni": "flannel", "test": "dts", "netns_gbps": 9.56, "kind_gbps": 7.8, "verdict": "within noise"}}
	if err := p.addSections(withFidelity{doc, map[string]any{"labs": check}}); err != nil {
		t.Fatal(err)
	}
	page := writePage(t, p)
	for _, s := range []string{`id="fidelity"`, "<th>netns_gbps</th>", "<td>within noise</td>", "<td>9.56</td>"} {
		if !strings.Contains(page, s) {
			t.Errorf("fidelity section: %q not on the page", s)
		}
	}
}

// TestAboveHostAndFlagsShown: a figure above its host baseline is ringed
// on its chart and listed with its evidence; window flags are listed too.
func TestAboveHostAndFlagsShown(t *testing.T) {
	doc := loadRun(t, capturedRuns[0].files)
	marked := 0
	for i, s := range doc.Summaries {
		if s.Test == "dts" && s.Lab == "cilium" && s.Metric == results.ThroughputBps {
			doc.Summaries[i].AboveHost = &results.AboveHost{HostMedian: s.Median * 0.9, HostCI95Low: s.Median * 0.85, HostCI95High: s.Median * 0.95,
				Evidence: "cilium's server shared cpu1 with the softirq; the host's did not"}
			marked++
		}
		if s.Test == "dum" && s.Lab == "flannel" && s.Metric == results.ThroughputBps {
			doc.Summaries[i].Flags = []string{"sender and receiver rates 4 % apart"}
			marked++
		}
	}
	if marked != 2 {
		t.Fatalf("marked %d summaries, want 2", marked)
	}
	p, page := buildPage(t, doc)
	for _, s := range []string{
		`id="flags"`,
		"cilium&#39;s server shared cpu1 with the softirq; the host&#39;s did not",
		"sender and receiver rates 4 % apart",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("%q not on the page", s)
		}
	}
	for _, f := range p.Tests {
		ringed := strings.Contains(f.Chart.SVG, ">above host (not ranked)</text>")
		if want := f.Chart.ID == "test-throughput-dts-cross-node"; ringed != want {
			t.Errorf("chart %s: above-host legend %v, want %v", f.Chart.ID, ringed, want)
		}
		if f.Chart.ID == "test-throughput-dts-cross-node" && !strings.Contains(f.Chart.SVG, Hex(flagColour)) {
			t.Errorf("chart %s: no ring in %s", f.Chart.ID, Hex(flagColour))
		}
	}
}

// TestTiesShown: CNIs whose score intervals overlap share a place, and the
// page says so with pkg/rank's reason.
func TestTiesShown(t *testing.T) {
	doc := loadRun(t, capturedRuns[0].files)
	p, err := Build(doc)
	if err != nil {
		t.Fatal(err)
	}
	p.Ranking.Environments = []rank.EnvResult{{Name: "standard", Title: "Standard", Ranking: []rank.Entry{
		{Place: 1, CNI: "cilium", Score: 80, ScoreLow: 71, ScoreHigh: 88, TiedWith: []string{"calico"}},
		{Place: 1, CNI: "calico", Score: 77, ScoreLow: 70, ScoreHigh: 84, TiedWith: []string{"cilium"}, Tie: "throughput_bps on dts: intervals overlap"},
		{Place: 3, CNI: "flannel", Score: 40, ScoreLow: 40, ScoreHigh: 40},
	}}}
	p.EnvExtras, p.EntryExtras = nil, nil
	page := writePage(t, p)
	for _, s := range []string{
		`<td class="num">1=</td><td>cilium</td>`,
		`<td class="num">1=</td><td>calico</td>`,
		`<td class="num">3</td><td>flannel</td>`,
		"tied with cilium: throughput_bps on dts: intervals overlap",
		"71.0–88.0",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("%q not on the page", s)
		}
	}
	if strings.Contains(page, "40.0–40.0") {
		t.Error("a score without an interval shows a range")
	}
}

// TestPolicySectionOnPage: the NetworkPolicy matrix and cost of a captured
// kind run are on the page, in report.md's cells: a verdict per case and
// lab, and what kube-router's agent programmed for 1000 policies.
func TestPolicySectionOnPage(t *testing.T) {
	doc := loadRun(t, []string{"kind-policy.json"})
	_, page := buildPage(t, doc)
	for _, s := range []string{
		`<h2 id="policy">NetworkPolicy</h2>`,
		"<tr><th>case</th><th>required</th><th>flannel</th><th>cilium</th><th>kube-router</th></tr>",
		"<tr><td>default-deny-ingress</td><td>yes</td><td>not-enforced</td><td>pass (5.0 s)</td><td>pass (4.3 s)</td></tr>",
		"<td>not enforced (10% of cases pass)</td><td>enforced (100% of cases pass)</td><td>enforced (100% of cases pass)</td>",
		"cilium: the connection opened before the deny was cut (11 transactions answered, 22 failed)",
		"<th>agent lag s</th>",
		"<td>811 iptables rules, 1007 chains, 1251 ipsets, 503 set/map entries</td><td>3 (75 %)</td>",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("%q not on the page", s)
		}
	}
}

// buildPage lays out a run's page and writes it.
func buildPage(t *testing.T, doc *results.Document) (*Page, string) {
	t.Helper()
	p, err := Build(doc)
	if err != nil {
		t.Fatal(err)
	}
	return p, writePage(t, p)
}

// writePage is the page as it is written to report.html.
func writePage(t *testing.T, p *Page) string {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
