// Package report is the `cnilab report FILE..` command: rebuild the
// people-facing report of a run from its results.json.
package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/fidelity"
	"github.com/cnilab/cnilab/pkg/htmlreport"
	"github.com/cnilab/cnilab/pkg/rank"
	rep "github.com/cnilab/cnilab/pkg/report"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/scenario/servicescale"
)

// NewCommand returns `cnilab report`.
func NewCommand(s cli.Streams) *cobra.Command {
	var formats, fidelitySummary string
	var defs cli.Definitions
	cmd := &cobra.Command{
		Use:   "report RESULTS.json|RUN-DIR..",
		Short: "Write report.md, report.html and/or summaries.csv next to each results file",
		Long: "report rebuilds the people-facing files of runs from their results.json (or a run directory):\n" +
			"report.md (tables, services-scale, the run's ranking and the claims' verdicts), report.html\n" +
			"(the same with charts, one self-contained page) and summaries.csv (one row per figure with\n" +
			"its interval, provider and fidelity). Files are written 0644.\n" +
			"Exit codes: 0 written, 1 a file could not be written, 2 bad input (usage, or a results file\n" +
			"that does not parse).",
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if fidelitySummary != "" {
				return writeFidelitySummary(s, &defs, fidelitySummary, args)
			}
			want := map[string]bool{}
			for _, f := range strings.Split(formats, ",") {
				switch f = strings.TrimSpace(f); f {
				case "md", "csv", "html":
					want[f] = true
				default:
					return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--format %q: md, html or csv", f))
				}
			}
			for _, path := range args {
				if st, err := os.Stat(path); err == nil && st.IsDir() {
					path = filepath.Join(path, "results.json") // a run directory
				}
				doc, err := results.ReadFile(path)
				if err != nil {
					return cli.WithCode(cli.ExitInvalid, err)
				}
				if fc := fidelity.Compute(doc); fc != nil {
					doc.Fidelity = fc // this cnilab's rules
				}
				dir := filepath.Dir(path)
				if want["md"] {
					if err := writeMarkdown(filepath.Join(dir, "report.md"), doc); err != nil {
						return err
					}
					fmt.Fprintln(s.Err, "wrote", filepath.Join(dir, "report.md"))
				}
				if want["html"] {
					if err := htmlreport.WriteFile(filepath.Join(dir, "report.html"), doc); err != nil {
						return err
					}
					fmt.Fprintln(s.Err, "wrote", filepath.Join(dir, "report.html"))
				}
				if want["csv"] {
					if err := writeCSV(filepath.Join(dir, "summaries.csv"), doc); err != nil {
						return err
					}
					fmt.Fprintln(s.Err, "wrote", filepath.Join(dir, "summaries.csv"))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&formats, "format", "md", "formats, comma separated: md, html, csv")
	cmd.Flags().StringVar(&fidelitySummary, "fidelity-summary", "", "write the kept fidelity summary of these netns,kind runs to this file (reports/fidelity/summary.json) instead of the reports")
	defs.AddFlags(cmd)
	return cmd
}

// writeFidelitySummary reduces runs with both providers to the summary
// kept in the repo, which README's and labs/*.yaml's labels are checked
// against; a lab measured in a later run replaces its unverified entry of
// an earlier one.
func writeFidelitySummary(s cli.Streams, defs *cli.Definitions, out string, args []string) error {
	set, err := defs.Load()
	if err != nil {
		return err
	}
	var ks []*fidelity.Kept
	for _, path := range args {
		doc, err := results.ReadFile(path)
		if err != nil {
			return cli.WithCode(cli.ExitInvalid, err)
		}
		k, err := fidelity.BuildKept(doc, set)
		if err != nil {
			return cli.WithCode(cli.ExitInvalid, fmt.Errorf("%s: %w", path, err))
		}
		ks = append(ks, k)
	}
	k := fidelity.MergeKept(ks)
	if err := fidelity.WriteKept(out, k); err != nil {
		return err
	}
	for _, l := range k.Labs {
		fmt.Fprintf(s.Err, "  %-16s %-12s %s %s\n", l.Lab, l.Label, l.Verdict, l.Why)
	}
	fmt.Fprintln(s.Err, "wrote", out)
	return nil
}

func writeMarkdown(path string, doc *results.Document) error {
	f, err := results.CreateFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := rep.Markdown(f, doc); err != nil {
		return err
	}
	if err := rep.FidelityMarkdown(f, doc); err != nil {
		return err
	}
	if md := servicescale.Markdown(doc.Measurements); strings.TrimSpace(md) != "" {
		if _, err := f.WriteString("\n" + md); err != nil {
			return err
		}
	}
	// One ranking per provider, never the two mixed.
	split := doc.ByProvider()
	for _, d := range split {
		if len(split) > 1 {
			fmt.Fprintf(f, "\n# Ranking from the %s labs\n\n", d.Run.Provider)
		}
		if err := rank.AppendRunReport(f, d); err != nil {
			return err
		}
	}
	return f.Close()
}

// csvHeader names the columns of summaries.csv: the median and its own
// interval first (with the interval's coverage and method), then the mean
// with its t-interval, the spreads, the ratio to host with its interval,
// the above-host judgement with its evidence, and the flags.
var csvHeader = []string{"run", "lab", "scenario", "test", "placement", "proxy", "params", "metric", "unit",
	"median", "ci95_low", "ci95_high", "ci_level", "ci_method",
	"mean", "stddev", "mean_ci95_low", "mean_ci95_high", "cov_pct", "robust_cov_pct", "n",
	"ratio_to_host", "ratio_ci95_low", "ratio_ci95_high",
	"above_host", "host_median", "host_ci95_low", "host_ci95_high", "above_host_evidence",
	"flags", "provider", "fidelity"}

// writeCSV writes one row per summary, with provider and fidelity on every
// row like every other figure cnilab prints. An absent figure (robust CoV
// below 6 windows, no ratio) is an empty cell, never a zero.
func writeCSV(path string, doc *results.Document) error {
	f, err := results.CreateFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := csvRows(f, doc); err != nil {
		return err
	}
	return f.Close()
}

func csvRows(out io.Writer, doc *results.Document) error {
	w := csv.NewWriter(out)
	if err := w.Write(csvHeader); err != nil {
		return err
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	opt := func(v *float64) string {
		if v == nil {
			return ""
		}
		return g(*v)
	}
	for _, s := range doc.Summaries {
		var params []string
		for k, v := range s.Params {
			params = append(params, k+"="+v)
		}
		sort.Strings(params)
		above, hostMedian, hostLo, hostHi, evidence := "false", "", "", "", ""
		if a := s.AboveHost; a != nil {
			above, hostMedian, hostLo, hostHi, evidence = "true", g(a.HostMedian), g(a.HostCI95Low), g(a.HostCI95High), a.Evidence
		}
		if err := w.Write([]string{doc.Run.ID, s.Lab, s.Scenario, s.Test, s.Placement, s.Proxy, strings.Join(params, ";"), s.Metric, s.Unit,
			g(s.Median), g(s.CI95Low), g(s.CI95High), g(s.CILevel), s.CIMethod,
			g(s.Mean), g(s.StdDev), g(s.MeanCI95Low), g(s.MeanCI95High), g(s.CoVPct), opt(s.RobustCoVPct), strconv.Itoa(s.N),
			opt(s.RatioToHost), opt(s.RatioCI95Low), opt(s.RatioCI95High),
			above, hostMedian, hostLo, hostHi, evidence,
			strings.Join(s.Flags, "; "), s.Provider, string(s.Fidelity)}); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}
