// Package report is the `cnilab report FILE..` command: rebuild the
// people-facing report of a run from its results.json.
package report

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/htmlreport"
	"github.com/cnilab/cnilab/pkg/rank"
	rep "github.com/cnilab/cnilab/pkg/report"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/scenario/servicescale"
)

// NewCommand returns `cnilab report`.
func NewCommand(s cli.Streams) *cobra.Command {
	var formats string
	cmd := &cobra.Command{
		Use:   "report RESULTS.json|RUN-DIR..",
		Short: "Write report.md, report.html and/or summaries.csv next to each results file",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
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
	return cmd
}

func writeMarkdown(path string, doc *results.Document) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := rep.Markdown(f, doc); err != nil {
		return err
	}
	if md := servicescale.Markdown(doc.Measurements); strings.TrimSpace(md) != "" {
		if _, err := f.WriteString("\n" + md); err != nil {
			return err
		}
	}
	if err := rank.AppendRunReport(f, doc); err != nil {
		return err
	}
	return f.Close()
}

// writeCSV writes one row per summary, with provider and fidelity on every
// row like every other figure cnilab prints.
func writeCSV(path string, doc *results.Document) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	_ = w.Write([]string{"run", "lab", "scenario", "test", "placement", "proxy", "params", "metric", "unit", "median", "mean", "ci95_low", "ci95_high", "cov_pct", "robust_cov_pct", "n", "ratio_to_host", "provider", "fidelity"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, s := range doc.Summaries {
		var params []string
		for k, v := range s.Params {
			params = append(params, k+"="+v)
		}
		ratio, robust := "", ""
		if s.RobustCoVPct != nil {
			robust = g(*s.RobustCoVPct)
		}
		if s.RatioToHost != nil {
			ratio = g(*s.RatioToHost)
		}
		_ = w.Write([]string{doc.Run.ID, s.Lab, s.Scenario, s.Test, s.Placement, s.Proxy, strings.Join(params, ";"), s.Metric, s.Unit,
			g(s.Median), g(s.Mean), g(s.CI95Low), g(s.CI95High), g(s.CoVPct), robust, strconv.Itoa(s.N), ratio, s.Provider, string(s.Fidelity)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return f.Close()
}
