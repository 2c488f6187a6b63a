// Package htmlreport writes a run's report as one self-contained HTML page
// (report.html): inline CSS and SVG charts drawn with gonum.org/v1/plot,
// no script, no font, image or style sheet from anywhere else, so the file
// opens the same offline, attached to a ticket or served by CI.
package htmlreport

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/cnilab/cnilab/pkg/dataset"
	"github.com/cnilab/cnilab/pkg/rank"
	"github.com/cnilab/cnilab/pkg/report"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/reports/published"
)

// Page is everything the page shows, built from one results document.
type Page struct {
	Doc       *results.Document
	Providers []string
	Tests     []TestFigure
	CDFs      []Chart
	Scale     []Chart
	// Policy is the NetworkPolicy matrix and cost, in report.md's cells
	// (report.Policy); nil without the policy scenario.
	Policy *PolicyView
	// ScaleNotes say which proxies services-scale could not measure here.
	ScaleNotes []string
	Flagged    []FlaggedFigure
	Ranking    *rank.Report
	// RankExtras are fields pkg/rank returns that this page has no layout
	// for yet (per environment, then per entry), shown as they come.
	EnvExtras   []map[string]json.RawMessage
	EntryExtras [][]map[string]json.RawMessage
	Claims      ClaimsTable
	// Fidelity is the results document's fidelity section, when the run
	// has one (netns models against the real CNIs).
	Fidelity template.HTML
	// Extras are other sections of the results document this page does not
	// lay out yet.
	Extras map[string]template.HTML
}

// PolicyView is the NetworkPolicy section with the texts that introduce
// its tables.
type PolicyView struct {
	*report.PolicyTables
	MatrixIntro, CostIntro string
}

// FlaggedFigure is a summary with a doubt: above its host baseline, or
// flagged by its windows.
type FlaggedFigure struct {
	Test, Lab, Provider, Metric, Median string
	AboveHost                           bool
	Doubts                              []string
}

// ClaimsTable is every published claim's verdict from this run beside its
// verdicts from the embedded published datasets.
type ClaimsTable struct {
	Columns []string
	Rows    []ClaimRow
}

// ClaimRow is one claim across the columns.
type ClaimRow struct {
	ID, Text string
	Cells    []rank.ClaimResult
}

// knownDocFields are the results document's sections the page lays out.
var knownDocFields = []string{"schema", "run", "labs", "measurements", "summaries"}

// Build computes the page: charts, the ranking (pkg/rank, in-process) and
// the claims table.
func Build(doc *results.Document) (*Page, error) {
	p := &Page{Doc: doc, Extras: map[string]template.HTML{}}
	_, p.Providers, _ = labOrder(doc)
	var err error
	if p.Tests, err = testFigures(doc); err != nil {
		return nil, err
	}
	if p.CDFs, err = latencyCDFs(doc); err != nil {
		return nil, err
	}
	if p.Scale, p.ScaleNotes, err = scaleCharts(doc); err != nil {
		return nil, err
	}
	if pt := report.Policy(doc); pt != nil {
		p.Policy = &PolicyView{PolicyTables: pt, MatrixIntro: report.PolicyMatrixIntro, CostIntro: report.PolicyCostIntro}
	}
	// A window's flags reach every metric of it: they are listed once per
	// test and lab, with the figures they touch; an above-host figure is
	// its own row.
	flagRow := map[string]int{}
	flagCount := []int{} // per row of p.Flagged: figures a window flag touches (0: an above-host row)
	for _, s := range doc.Summaries {
		if s.AboveHost == nil && len(s.Flags) == 0 {
			continue
		}
		scale, unit := display(s.Metric)
		r := figureRow(s, scale, false)
		test := s.Scenario + "/" + s.Test
		if s.Placement != "" {
			test += " " + s.Placement
		}
		for _, k := range slices.Sorted(maps.Keys(s.Params)) {
			test += " " + k + "=" + s.Params[k]
		}
		if s.AboveHost != nil {
			p.Flagged = append(p.Flagged, FlaggedFigure{Test: test, Lab: s.Lab, Provider: s.Provider, Metric: s.Metric,
				Median: r.Median + " " + unit, AboveHost: true, Doubts: r.Doubts})
			flagCount = append(flagCount, 0)
			continue
		}
		key := strings.Join(append([]string{test, s.Lab, s.Provider}, s.Flags...), "\x00")
		if i, ok := flagRow[key]; ok {
			flagCount[i]++
			continue
		}
		flagRow[key] = len(p.Flagged)
		flagCount = append(flagCount, 1)
		p.Flagged = append(p.Flagged, FlaggedFigure{Test: test, Lab: s.Lab, Provider: s.Provider, Median: "–", Doubts: s.Flags})
	}
	for i, n := range flagCount {
		if n > 0 {
			p.Flagged[i].Metric = fmt.Sprintf("every figure of these windows (%d)", n)
		}
	}
	defs, err := rank.LoadDefinitions(rank.Sources{})
	if err != nil {
		return nil, err
	}
	if p.Ranking, err = rank.ForResults(doc, defs, nil); err != nil {
		return nil, err
	}
	for _, env := range p.Ranking.Environments {
		x, err := extraFields(env, "name", "title", "description", "variants", "requires", "weights", "ranking", "excluded", "not_eligible", "data_only_order")
		if err != nil {
			return nil, err
		}
		p.EnvExtras = append(p.EnvExtras, x)
		var per []map[string]json.RawMessage
		for _, e := range env.Ranking {
			x, err := extraFields(e, "place", "cni", "score", "score_low", "score_high", "tied_with", "tie", "variant", "options", "evidence", "other_variants")
			if err != nil {
				return nil, err
			}
			per = append(per, x)
		}
		p.EntryExtras = append(p.EntryExtras, per)
	}
	if p.Claims, err = claimsTable(doc, defs, p.Ranking); err != nil {
		return nil, err
	}
	if err := p.addSections(doc); err != nil {
		return nil, err
	}
	return p, nil
}

// addSections lays out the sections of the results document (v, as it
// marshals) that the page has no own layout for: the fidelity check once
// results.Document carries it, and whatever a later schema adds.
func (p *Page) addSections(v any) error {
	extra, err := extraFields(v, knownDocFields...)
	if err != nil {
		return err
	}
	for k, raw := range extra {
		if k == "fidelity" {
			p.Fidelity = genericHTML(raw)
			if p.Doc != nil && p.Doc.Fidelity != nil {
				p.Fidelity = fidelityHTML(p.Doc.Fidelity)
			}
			continue
		}
		p.Extras[k] = genericHTML(raw)
	}
	return nil
}

// claimsTable evaluates every claim on this run and on each embedded
// published dataset (what report.md's claims table shows).
func claimsTable(doc *results.Document, defs *rank.Definitions, run *rank.Report) (ClaimsTable, error) {
	t := ClaimsTable{Columns: []string{"this run"}}
	cols := [][]rank.ClaimResult{run.Claims}
	for _, name := range dataset.Names(published.FS) {
		d, err := dataset.Load(published.FS, name)
		if err != nil {
			return t, err
		}
		r, err := rank.ForDataset(d, defs, nil)
		if err != nil {
			return t, err
		}
		t.Columns = append(t.Columns, name)
		cols = append(cols, r.Claims)
	}
	for i, c := range run.Claims {
		row := ClaimRow{ID: c.ID, Text: c.Text}
		for _, col := range cols {
			if i < len(col) {
				row.Cells = append(row.Cells, col[i])
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// Write builds the page of doc and writes it to w.
func Write(w io.Writer, doc *results.Document) error {
	p, err := Build(doc)
	if err != nil {
		return err
	}
	return p.Write(w)
}

// Write renders the page.
func (p *Page) Write(w io.Writer) error {
	return pageTemplate.Execute(w, p)
}

// deciding returns the evidence rows that moved a score most.
func deciding(ev []rank.Evidence, n int) []rank.Evidence {
	s := slices.Clone(ev)
	slices.SortStableFunc(s, func(a, b rank.Evidence) int {
		switch {
		case a.Contribution > b.Contribution:
			return -1
		case a.Contribution < b.Contribution:
			return 1
		}
		return 0
	})
	return s[:min(n, len(s))]
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"svg":      func(s string) template.HTML { return template.HTML(s) }, // drawn by this package; text escaped by the SVG backend
	"deciding": deciding,
	"evidence": rank.Evidence.Line,
	"join":     strings.Join,
	"raw":      genericHTML,
	"index2": func(x [][]map[string]json.RawMessage, i, j int) map[string]json.RawMessage {
		if i < len(x) && j < len(x[i]) {
			return x[i][j]
		}
		return nil
	},
	"envExtra": func(x []map[string]json.RawMessage, i int) map[string]json.RawMessage {
		if i < len(x) {
			return x[i]
		}
		return nil
	},
	"time": func(t any) string { return fmt.Sprint(t) },
}).Parse(pageHTML))

// WriteFile writes the page of doc to path, with the mode of the run's
// other files.
func WriteFile(path string, doc *results.Document) error {
	p, err := Build(doc)
	if err != nil {
		return err
	}
	f, err := results.CreateFile(path)
	if err != nil {
		return err
	}
	if err := p.Write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fidelityHTML lays out the fidelity check with report.md's cells
// (report.FidelityRows), so the two reports cannot disagree.
func fidelityHTML(fc *results.FidelityCheck) template.HTML {
	var b strings.Builder
	esc := template.HTMLEscapeString
	table := func(head []string, rows [][]string) {
		b.WriteString(`<table class="fidelity"><tr>`)
		for _, h := range head {
			b.WriteString("<th>" + esc(h) + "</th>")
		}
		b.WriteString("</tr>\n")
		for _, r := range rows {
			b.WriteString("<tr>")
			for _, c := range r {
				b.WriteString("<td>" + esc(c) + "</td>")
			}
			b.WriteString("</tr>\n")
		}
		b.WriteString("</table>\n")
	}
	fmt.Fprintf(&b, "<p>Each figure is a ratio to its own provider's cross-node host baseline measured in this run (kind's same-node host pair talk over loopback); the error is the model's ratio against the real CNI's (median of the per-repeat errors where the windows are kept). Verdict: holds when |error| ≤ %.0f %% and the interval lies inside ±%.0f %%; differs when the whole interval lies beyond ±%.0f %%; otherwise undecided (noise). On cross-node latency rows, “added over host” is the pod path's median minus its own host's on each provider: the time the CNI adds per transaction. The two hosts are not equally fast (kind's nodes talk over Docker's bridge, with br_netfilter), so the same added time is a smaller ratio on kind; read both before blaming a model.</p>\n",
		fc.HoldsPct, fc.HoldsIntervalPct, fc.DiffersPct)
	if len(fc.Rows) == 0 && len(fc.Policy) == 0 {
		b.WriteString("<p>No test was measured on both providers.</p>\n")
	}
	if len(fc.Rows) > 0 {
		table(report.FidelityRows(fc))
		table(report.FidelityLabRows(fc))
	}
	if len(fc.Policy) > 0 {
		b.WriteString("<p>NetworkPolicy, case by case: the model's verdict against the real CNI's.</p>\n")
		table(report.FidelityPolicyRows(fc))
	}
	if len(fc.Unverified) > 0 {
		b.WriteString("<ul>")
		for _, u := range fc.Unverified {
			b.WriteString("<li>" + esc(u.Lab+": "+u.Why) + "</li>")
		}
		b.WriteString("</ul>\n")
	}
	return template.HTML(b.String())
}
