// Package diff is the `cnilab diff OLD NEW` command: what changed between
// two runs, beyond their own noise. Exit code 1 when something regressed,
// so nightly CI can flag it.
package diff

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/diff"
	"github.com/cnilab/cnilab/pkg/results"
)

// NewCommand returns `cnilab diff`.
func NewCommand(s cli.Streams) *cobra.Command {
	var minPct float64
	var all bool
	cmd := &cobra.Command{
		Use:   "diff OLD/results.json NEW/results.json",
		Short: "Compare two runs figure by figure; exit 1 on a regression beyond noise",
		Long: "diff matches the summaries of two runs (lab, scenario, test, placement, proxy, metric) and\n" +
			"gives each a verdict:\n" +
			"  regression   the median moved the worse way by at least --min-change and lies outside the\n" +
			"               old run's 95% interval (same provider and fidelity in both runs)\n" +
			"  improvement  the same, the better way\n" +
			"  same         moved less than --min-change, inside the old interval, or not comparable\n" +
			"               (provider or fidelity differ); listed only with --all\n" +
			"  only-old     in the old run only; only-new: in the new run only\n" +
			"Exit codes: 0 no regression, 1 at least one regression, 2 bad input (usage, or a results\n" +
			"file that does not parse).",
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			old, err := results.ReadFile(args[0])
			if err != nil {
				return cli.WithCode(cli.ExitInvalid, err)
			}
			cur, err := results.ReadFile(args[1])
			if err != nil {
				return cli.WithCode(cli.ExitInvalid, err)
			}
			rows := diff.Compare(old, cur, minPct)
			tw := tabwriter.NewWriter(s.Out, 2, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "VERDICT\tFIGURE\tOLD\tNEW\tCHANGE\tWHY\n")
			regressions := 0
			for _, r := range rows {
				if r.Verdict == diff.Regression {
					regressions++
				}
				if !all && r.Verdict == diff.Same {
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%+.1f%%\t%s\n", r.Verdict, r.Key, val(r.Old), val(r.New), r.ChangePct, r.Why)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "%d figures compared (%s → %s), %d regressions\n", len(rows), old.Run.ID, cur.Run.ID, regressions)
			if regressions > 0 {
				return cli.WithCode(cli.ExitFailed, errors.New("regressions found"))
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&minPct, "min-change", 5, "smallest change in percent that can count")
	cmd.Flags().BoolVar(&all, "all", false, "also list figures that did not change")
	return cmd
}

func val(s *results.Summary) string {
	if s == nil {
		return "–"
	}
	if s.Metric == results.ThroughputBps {
		return fmt.Sprintf("%.2f Gbit/s", s.Median/1e9)
	}
	return fmt.Sprintf("%.4g %s", s.Median, s.Unit)
}
