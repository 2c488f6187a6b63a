// Package diff is the `cnilab diff OLD NEW` command: what changed between
// two runs, beyond both runs' noise. Exit code 1 when something regressed,
// so nightly CI can flag it; 2 when a figure was measured by different
// providers or fidelities in the two runs.
package diff

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/diff"
	"github.com/cnilab/cnilab/pkg/results"
)

const long = `Compare two runs figure by figure (lab × test × placement × proxy × metric).

A figure counts as changed only when all of these hold:
  - both runs measured it with the same provider and fidelity; otherwise it
    is "not-comparable" and diff exits 2 naming the figure;
  - its median moved by at least --min-change percent of the old median
    (an old median of 0 has no relative change: the intervals alone decide);
  - each run has at least 3 windows behind it (else "undecided");
  - the two medians' order-statistic intervals (ci95_low..ci95_high in
    results.json, the interval printed beside the median) do not overlap.

Non-overlap of the medians' intervals is used rather than Welch's test on
the means: the median is the figure shown, and the rule holds for bimodal
samples. With n = 3..8 windows per run both intervals are min..max, and two
runs of an unchanged datapath are disjoint by chance with probability
2/C(2n, n): 10 % at n = 3, 0.8 % at n = 5, 0.2 % at n = 6 (--profile stable).

Verdicts: regression, improvement, changed (a metric with no better
direction, such as pod_mtu or rule counts), same, undecided, not-comparable,
only-old, only-new.

Exit codes: 0 nothing regressed, 1 a regression, 2 bad input or a figure
that is not comparable between the runs.`

// NewCommand returns `cnilab diff`.
func NewCommand(s cli.Streams) *cobra.Command {
	var minPct float64
	var all bool
	cmd := &cobra.Command{
		Use:   "diff OLD/results.json NEW/results.json",
		Short: "Compare two runs figure by figure; exit 1 on a regression beyond both runs' noise",
		Long:  long,
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if minPct < 0 {
				return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--min-change %g: must be ≥ 0", minPct))
			}
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
			count := map[diff.Verdict]int{}
			var notComparable []string
			for _, r := range rows {
				count[r.Verdict]++
				if r.Verdict == diff.NotComparable {
					notComparable = append(notComparable, r.Key+": "+r.Why)
				}
				if !all && r.Verdict == diff.Same {
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%+.1f%%\t%s\n", r.Verdict, r.Key, val(r.Old), val(r.New), r.ChangePct, r.Why)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "%d figures compared (%s → %s): %d regressions, %d improvements, %d changed, %d undecided, %d not comparable\n",
				len(rows), old.Run.ID, cur.Run.ID, count[diff.Regression], count[diff.Improvement], count[diff.Changed], count[diff.Undecided], count[diff.NotComparable])
			if len(notComparable) > 0 {
				return cli.WithCode(cli.ExitInvalid, fmt.Errorf("not comparable (different provider or fidelity):\n  %s", strings.Join(notComparable, "\n  ")))
			}
			if count[diff.Regression] > 0 {
				return cli.WithCode(cli.ExitFailed, errors.New("regressions found"))
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&minPct, "min-change", 5, "smallest change of the median, in percent of the old median, that can count")
	cmd.Flags().BoolVar(&all, "all", false, "also list figures that did not change")
	return cmd
}

// val is a summary's median with its interval and coverage.
func val(s *results.Summary) string {
	if s == nil {
		return "–"
	}
	if s.Unit == "bit/s" {
		return fmt.Sprintf("%.2f [%.2f–%.2f] Gbit/s", s.Median/1e9, s.CI95Low/1e9, s.CI95High/1e9)
	}
	return strings.TrimSpace(fmt.Sprintf("%.4g [%.4g–%.4g] %s", s.Median, s.CI95Low, s.CI95High, s.Unit))
}
