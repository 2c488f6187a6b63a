package rank

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/dataset"
	"github.com/cnilab/cnilab/pkg/facts"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/reports/published"
	"github.com/cnilab/cnilab/scenarios"
)

// Definitions are the data a ranking is computed with.
type Definitions struct {
	Facts        map[string]facts.Capabilities
	Environments []Environment
	Claims       []Claim
}

// Sources says where definitions are read from; nil file systems mean the
// embedded copies (labs/, scenarios/, reports/published/).
type Sources struct {
	Labs            fs.FS
	LabsPrefix      string
	Scenarios       fs.FS
	ScenariosPrefix string
	Published       fs.FS
}

// LoadDefinitions reads facts, environments and claims.
func LoadDefinitions(src Sources) (*Definitions, error) {
	if src.Labs == nil {
		src.Labs, src.LabsPrefix = labs.FS, "labs"
	}
	if src.Scenarios == nil {
		src.Scenarios, src.ScenariosPrefix = scenarios.FS, "scenarios"
	}
	if src.Published == nil {
		src.Published = published.FS
	}
	f, err := FactsByCNI(src.Labs, src.LabsPrefix)
	if err != nil {
		return nil, err
	}
	envs, err := LoadEnvironments(src.Scenarios, src.ScenariosPrefix)
	if err != nil {
		return nil, err
	}
	claims, err := LoadClaims(src.Published, "reports/published", envs)
	if err != nil {
		return nil, err
	}
	return &Definitions{Facts: f, Environments: envs, Claims: claims}, nil
}

// InputInfo describes the data a report was computed from.
type InputInfo struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Title string   `json:"title"`
	Notes []string `json:"notes,omitempty"`
}

// Report is the output of `cnilab rank`.
type Report struct {
	Input        InputInfo     `json:"input"`
	Environments []EnvResult   `json:"environments"`
	Claims       []ClaimResult `json:"claims"`
}

// Build ranks every environment (or those named in only) and evaluates
// every claim. Claims whose environment was left out are untestable.
func Build(in *Input, defs *Definitions, only []string) (*Report, error) {
	r := &Report{Input: InputInfo{Name: in.Name, Kind: in.Kind, Title: in.Title, Notes: in.Notes}}
	for _, name := range only {
		if !slices.ContainsFunc(defs.Environments, func(e Environment) bool { return e.Name == name }) {
			var known []string
			for _, e := range defs.Environments {
				known = append(known, e.Name)
			}
			return nil, fmt.Errorf("unknown environment %q (known: %s)", name, strings.Join(known, ", "))
		}
	}
	for _, env := range defs.Environments {
		if len(only) > 0 && !slices.Contains(only, env.Name) {
			continue
		}
		r.Environments = append(r.Environments, Rank(in, env))
	}
	r.Claims = Evaluate(defs.Claims, in, r.Environments)
	return r, nil
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Line is the evidence row as the text and markdown reports print it
// ("dts: 12.07 Gbit/s [10.30–14.84 Gbit/s, 96.88 % CI] → 1.00 [0.85–1.00] × 2 = +22.2 [source]"),
// for every report format that shows evidence.
func (e Evidence) Line() string { return evidenceLine(e) }

func evidenceLine(e Evidence) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Criterion, e.Value)
	if e.Value == "" {
		b.WriteString("no figure")
	}
	if e.CI95Low != nil && e.CI95High != nil {
		lo, hi := Format(e.metric, *e.CI95Low), Format(e.metric, *e.CI95High)
		if e.metric == "" {
			lo, hi = fmt.Sprintf("%.4g", *e.CI95Low), fmt.Sprintf("%.4g", *e.CI95High)
		}
		num, _, _ := strings.Cut(lo, " ")
		level := "CI"
		if e.CILevel > 0 {
			level = fmt.Sprintf("%.4g %% CI", 100*e.CILevel)
		}
		fmt.Fprintf(&b, " [%s–%s, %s]", num, hi, level)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " (%s)", e.Detail)
	}
	if e.Kind == "requirement" {
		if e.Source != "" {
			fmt.Fprintf(&b, " [%s]", e.Source)
		}
		return b.String()
	}
	n := 0.0
	if e.Normalized != nil {
		n = *e.Normalized
	}
	fmt.Fprintf(&b, " → %.2f", n)
	if e.NormalizedLow != nil && e.NormalizedHigh != nil {
		fmt.Fprintf(&b, " [%.2f–%.2f]", *e.NormalizedLow, *e.NormalizedHigh)
	}
	fmt.Fprintf(&b, " × %g = %+.1f", e.Weight, e.Contribution)
	if e.Source != "" {
		fmt.Fprintf(&b, " [%s]", e.Source)
	}
	return b.String()
}

// WriteText writes the report for a terminal.
func (r *Report) WriteText(w io.Writer) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("cnilab rank — %s (%s: %s)\n", r.Input.Title, r.Input.Kind, r.Input.Name)
	for _, n := range r.Input.Notes {
		p("  note: %s\n", n)
	}
	for _, env := range r.Environments {
		p("\n== %s — %s\n   %s\n", env.Name, env.Title, env.Description)
		p("   compares: %s variants; each CNI placed by its best variant\n", env.Variants)
		for _, q := range env.Requires {
			p("   requires: %s\n", q)
		}
		p("   weights:\n")
		for _, wt := range env.Weights {
			skip := ""
			if wt.Skipped != "" {
				skip = "  — skipped: " + wt.Skipped
			}
			p("     %4g  %s: %s%s\n", wt.Weight, wt.Criterion, wt.Rule, skip)
		}
		if len(env.Ranking) == 0 {
			p("   no CNI qualifies\n")
		}
		for i, e := range env.Ranking {
			if line, ok := tieLine(env.Ranking, i); ok {
				p("   %s\n", line)
			}
			p("   %-3s %-12s score %5.1f%s  (variant %s)\n", placeLabel(env.Ranking, i), e.CNI, e.Score, scoreRange(e), e.Variant)
			if e.WithinModelError != "" {
				p("        %s\n", e.WithinModelError)
			}
			for _, ev := range e.Evidence {
				p("        %s\n", evidenceLine(ev))
			}
		}
		for _, x := range env.Excluded {
			p("   excluded: %s — %s\n", x.CNI, x.Reason)
			for _, ev := range x.Evidence {
				p("        %s\n", evidenceLine(ev))
			}
		}
		for _, n := range env.NotEligible {
			p("   not compared: %s\n", n)
		}
		if len(env.DataOnly) > 0 {
			p("   without requirements: %s\n", strings.Join(env.DataOnly, " > "))
		}
	}
	if len(r.Claims) > 0 {
		p("\n== Published claims (verdicts computed from %s)\n", r.Input.Name)
		for _, c := range r.Claims {
			p("   %-4s %-13s %s\n", c.ID, c.Verdict, c.Text)
			p("        %s\n", c.Reason)
			for _, e := range c.Evidence {
				p("        · %s\n", e)
			}
			if c.Diff != "" {
				p("        seed (-) vs computed (+):\n")
				for _, l := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
					p("          %s\n", l)
				}
			}
		}
	}
	return nil
}

// placeLabel is "1." for a place of its own and "1=" for a shared one.
func placeLabel(r []Entry, i int) string {
	if len(r[i].TiedWith) > 0 {
		return fmt.Sprintf("%d=", r[i].Place)
	}
	return fmt.Sprintf("%d.", r[i].Place)
}

// scoreRange prints the score interval when figures had intervals.
func scoreRange(e Entry) string {
	if e.ScoreLow == e.ScoreHigh {
		return ""
	}
	return fmt.Sprintf(" [%.1f–%.1f]", e.ScoreLow, e.ScoreHigh)
}

// tieLine is the line that opens a tie group, at its first entry:
// "1= calico, kube-router (tied: dts 12.45 [8.05–15.73] vs 11.10
// [8.77–12.81] Gbit/s)".
func tieLine(r []Entry, i int) (string, bool) {
	if len(r[i].TiedWith) == 0 || (i > 0 && r[i-1].Place == r[i].Place) {
		return "", false
	}
	names := []string{r[i].CNI}
	var why []string
	for j := i + 1; j < len(r) && r[j].Place == r[i].Place; j++ {
		names = append(names, r[j].CNI)
		if j-i == 1 && (j+1 >= len(r) || r[j+1].Place != r[i].Place) {
			why = append(why, r[j].Tie)
		} else {
			why = append(why, fmt.Sprintf("%s vs %s: %s", r[j-1].CNI, r[j].CNI, r[j].Tie))
		}
	}
	return fmt.Sprintf("%d= %s (tied: %s)", r[i].Place, strings.Join(names, ", "), strings.Join(why, "; ")), true
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// deciding returns the evidence rows that moved a score most, for the
// compact markdown table.
func deciding(ev []Evidence, n int) []Evidence {
	s := slices.Clone(ev)
	slices.SortStableFunc(s, func(a, b Evidence) int {
		switch {
		case a.Contribution > b.Contribution:
			return -1
		case a.Contribution < b.Contribution:
			return 1
		}
		return 0
	})
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// WriteMarkdown writes the report for people, as Markdown.
func (r *Report) WriteMarkdown(w io.Writer) error {
	return r.writeMarkdown(w, "##")
}

func (r *Report) writeMarkdown(w io.Writer, h string) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("%s CNI ranking: %s\n\n", h, r.Input.Title)
	p("Data: %s `%s`. Each CNI is placed by its best-scoring variant; scores are 0–100 (weighted mean of normalised criteria, 1 = best candidate).\n\n", r.Input.Kind, r.Input.Name)
	for _, n := range r.Input.Notes {
		p("- %s\n", mdEscape(n))
	}
	if len(r.Input.Notes) > 0 {
		p("\n")
	}
	for _, env := range r.Environments {
		p("%s# %s — %s\n\n%s. Compares %s variants.", h, env.Name, env.Title, env.Description, env.Variants)
		if len(env.Requires) > 0 {
			p(" Requires: %s.", strings.Join(env.Requires, "; "))
		}
		p("\n\n| weight | criterion | rule | why |\n|---:|---|---|---|\n")
		for _, wt := range env.Weights {
			rule := wt.Rule
			if wt.Skipped != "" {
				rule += " — *skipped: " + wt.Skipped + "*"
			}
			p("| %g | %s | %s | %s |\n", wt.Weight, mdEscape(wt.Criterion), mdEscape(rule), mdEscape(wt.Why))
		}
		p("\n| place | CNI | variant | score | deciding evidence |\n|---:|---|---|---:|---|\n")
		for i, e := range env.Ranking {
			var ev []string
			for _, x := range deciding(e.Evidence, 3) {
				ev = append(ev, mdEscape(evidenceLine(x)))
			}
			if e.Tie != "" {
				ev = append([]string{mdEscape("tied with the place above: " + e.Tie)}, ev...)
			}
			if e.WithinModelError != "" {
				ev = append([]string{mdEscape(e.WithinModelError)}, ev...)
			}
			p("| %s | %s | %s | %.1f%s | %s |\n", strings.TrimSuffix(placeLabel(env.Ranking, i), "."), e.CNI, e.Variant, e.Score, scoreRange(e), strings.Join(ev, "<br>"))
		}
		var ties []string
		for i := range env.Ranking {
			if line, ok := tieLine(env.Ranking, i); ok {
				ties = append(ties, line)
			}
		}
		for _, x := range env.Excluded {
			p("| – | %s | | excluded | %s |\n", x.CNI, mdEscape(x.Reason))
		}
		p("\n")
		for _, t := range ties {
			p("- %s\n", mdEscape(t))
		}
		if len(ties) > 0 {
			p("\n")
		}
		for _, n := range env.NotEligible {
			p("- not compared: %s\n", n)
		}
		if len(env.DataOnly) > 0 {
			p("- without the requirements: %s\n", strings.Join(env.DataOnly, " > "))
		}
		if len(env.NotEligible) > 0 || len(env.DataOnly) > 0 {
			p("\n")
		}
	}
	if len(r.Claims) > 0 {
		p("%s# Published claims (verdicts from `%s`)\n\n| claim | verdict | why | seed vs computed |\n|---|---|---|---|\n", h, r.Input.Name)
		for _, c := range r.Claims {
			order := ""
			if len(c.Seed) > 0 {
				order = fmt.Sprintf("%s vs %s", strings.Join(c.Seed, " > "), strings.Join(c.Computed, " > "))
			}
			p("| %s %s | **%s** | %s | %s |\n", c.ID, mdEscape(c.Text), c.Verdict, mdEscape(c.Reason), mdEscape(order))
		}
		p("\n")
	}
	return nil
}

// ForDataset ranks a published dataset with the given definitions.
func ForDataset(d *dataset.Dataset, defs *Definitions, only []string) (*Report, error) {
	return Build(FromDataset(d, defs.Facts), defs, only)
}

// ForResults ranks a cnilab results document with the given definitions.
func ForResults(doc *results.Document, defs *Definitions, only []string) (*Report, error) {
	return Build(FromResults(doc, defs.Facts), defs, only)
}

// AppendRunReport appends the run's ranking and the published-claims table
// to a run's report.md (make lab-compare calls it after the run): the
// ranking computed from doc, then every claim's verdict from this run next
// to its verdicts from the embedded published datasets.
func AppendRunReport(w io.Writer, doc *results.Document) error {
	defs, err := LoadDefinitions(Sources{})
	if err != nil {
		return err
	}
	run, err := ForResults(doc, defs, nil)
	if err != nil {
		return err
	}
	run.Claims = run.Claims[:0:0] // shown in the combined table below
	if err := run.writeMarkdown(w, "##"); err != nil {
		return err
	}
	cols := []*Report{}
	names := []string{"this run"}
	for _, name := range dataset.Names(published.FS) {
		d, err := dataset.Load(published.FS, name)
		if err != nil {
			return err
		}
		rep, err := ForDataset(d, defs, nil)
		if err != nil {
			return err
		}
		cols = append(cols, rep)
		names = append(names, name)
	}
	own := Evaluate(defs.Claims, FromResults(doc, defs.Facts), run.Environments)
	fmt.Fprintf(w, "## Published claims\n\n| claim | %s |\n|---|%s\n", strings.Join(names, " | "), strings.Repeat("---|", len(names)))
	for i, c := range own {
		cells := []string{cell(c)}
		for _, rep := range cols {
			cells = append(cells, cell(rep.Claims[i]))
		}
		fmt.Fprintf(w, "| %s %s | %s |\n", c.ID, mdEscape(c.Text), strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
	return nil
}

func cell(c ClaimResult) string {
	return fmt.Sprintf("**%s**: %s", c.Verdict, mdEscape(c.Reason))
}
