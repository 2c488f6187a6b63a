package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cnilab/cnilab/pkg/results"
)

// FidelityMarkdown writes the fidelity section (each netns model against
// the real CNI on kind) when the document has one; nothing otherwise.
func FidelityMarkdown(w io.Writer, doc *results.Document) error {
	fc := doc.Fidelity
	if fc == nil {
		return nil
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "\n## Fidelity: the %s models against the real CNIs (%s)\n\n", fc.Model, fc.Real)
	fmt.Fprintf(b, "Each figure is a ratio to its own provider's host baseline, measured in this run (%s: node namespaces over the fabric bridge; %s: hostNetwork pods on the two workers, over the Docker network the pods cross): absolute figures of the two providers are not comparable, their ratios are. "+
		"Both placements are divided by the cross-node host baseline: kind's same-node host pair share one node's namespace and talk over loopback, where the netns same-node baseline crosses a veth. "+
		"The four windows of one repeat (model, model host, real, real host) run back to back, so each repeat gives its own error (model/host)/(real/host) − 1, which cancels what the machine did meanwhile: "+
		"the error shown is the median of those per-repeat errors, and its interval that median's own order-statistic interval with its exact coverage (a row of fewer than six pairs, below 95 %%, decides nothing). "+
		"Where the windows are not in the document, the error is model ratio / real ratio − 1, its interval from the model's low ratio over the real's high one to the model's high over the real's low. "+
		"Verdict: **holds** when |error| ≤ %.0f %% and the interval lies inside ±%.0f %%; **differs** when the whole interval lies beyond ±%.0f %%; otherwise **undecided (noise)**. On cross-node latency rows, \"added over host\" is the pod path's median minus its own host's on each provider: the time the CNI adds per transaction. The two hosts are not equally fast (kind's nodes talk over Docker's bridge, with br_netfilter), so the same added time is a smaller ratio on kind; read both before blaming a model.\n\n",
		fc.Model, fc.Real, fc.HoldsPct, fc.HoldsIntervalPct, fc.DiffersPct)
	if len(fc.Rows) > 0 {
		head, rows := FidelityRows(fc)
		markdownTable(b, head, rows)
		b.WriteString("\n")
		head, rows = FidelityLabRows(fc)
		for _, r := range rows {
			r[2] = "**" + r[2] + "**" // the lab's verdict
		}
		markdownTable(b, head, rows)
	} else if len(fc.Policy) == 0 {
		b.WriteString("No test was measured on both providers.\n")
	}
	if len(fc.Policy) > 0 {
		b.WriteString("\nNetworkPolicy, case by case: the model's verdict against the real CNI's.\n\n")
		head, rows := FidelityPolicyRows(fc)
		for _, r := range rows {
			r[5] = "**" + r[5] + "**"
		}
		markdownTable(b, head, rows)
	}
	for _, u := range fc.Unverified {
		fmt.Fprintf(b, "\n- %s: %s", u.Lab, escape(u.Why))
	}
	if len(fc.Unverified) > 0 {
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FidelityRows is the fidelity table as report.md shows it, one row per
// lab × test × placement: the one formatter report.md and report.html use.
func FidelityRows(fc *results.FidelityCheck) (head []string, rows [][]string) {
	head = []string{"lab", "test", "placement", "label", "model × host", "real × host", "error", "error interval", "verdict", "added over host (model / real)", "n (model/real)"}
	for _, r := range fc.Rows {
		rows = append(rows, []string{r.Lab, r.Test, dash(r.Placement), string(r.Label),
			ratioCell(r.ModelRatio, r.ModelRatioLow, r.ModelRatioHigh), ratioCell(r.RealRatio, r.RealRatioLow, r.RealRatioHigh),
			errorCell(r), errorInterval(r), verdictCell(r), addedCell(r), fmt.Sprintf("%d/%d", r.ModelN, r.RealN)})
	}
	return head, rows
}

// FidelityPolicyRows is the NetworkPolicy agreement table, case by case.
func FidelityPolicyRows(fc *results.FidelityCheck) (head []string, rows [][]string) {
	head = []string{"lab", "case", "required", "model", "real", "agreement"}
	for _, r := range fc.Policy {
		rows = append(rows, []string{r.Lab, r.Case, fmt.Sprint(r.Required), string(r.ModelVerdict), string(r.RealVerdict), string(r.Agreement)})
	}
	return head, rows
}

// FidelityLabRows is the per-lab verdict table.
func FidelityLabRows(fc *results.FidelityCheck) (head []string, rows [][]string) {
	head = []string{"lab", "label", "verdict", "holds", "differs", "undecided", "largest error"}
	for _, l := range fc.Labs {
		rows = append(rows, []string{l.Lab, string(l.Label), string(l.Verdict), fmt.Sprint(l.Holds), fmt.Sprint(l.Differs), fmt.Sprint(l.Undecided), fmt.Sprintf("%.0f %%", l.MaxAbsErrorPct)})
	}
	return head, rows
}

func markdownTable(b *strings.Builder, head []string, rows [][]string) {
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|" + strings.Repeat("---|", len(head)) + "\n")
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = escape(c)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
}

// FidelityText prints the fidelity table for a terminal; nothing when the
// document has none.
func FidelityText(w io.Writer, doc *results.Document) error {
	fc := doc.Fidelity
	if fc == nil {
		return nil
	}
	fmt.Fprintf(w, "\nfidelity: %s model vs real CNI on %s (ratios to each provider's own host baseline)\n", fc.Model, fc.Real)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "lab\ttest\tplacement\tlabel\tmodel×host\treal×host\terror\tinterval\tverdict")
	for _, r := range fc.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Lab, r.Test, dash(r.Placement), r.Label,
			ratioCell(r.ModelRatio, r.ModelRatioLow, r.ModelRatioHigh), ratioCell(r.RealRatio, r.RealRatioLow, r.RealRatioHigh), errorCell(r), errorInterval(r), verdictCell(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(fc.Policy) > 0 {
		fmt.Fprintln(w, "\nfidelity: NetworkPolicy cases, model verdict vs real CNI's")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "lab\tcase\trequired\tmodel\treal\tagreement")
		for _, r := range fc.Policy {
			fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\n", r.Lab, r.Case, r.Required, r.ModelVerdict, r.RealVerdict, r.Agreement)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, u := range fc.Unverified {
		fmt.Fprintf(w, "%s: %s\n", u.Lab, u.Why)
	}
	return nil
}

func ratioCell(r, lo, hi float64) string {
	if r == 0 {
		return "–"
	}
	if lo == 0 && hi == 0 {
		return fmt.Sprintf("%.2f", r)
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", r, lo, hi)
}

func errorCell(r results.FidelityRow) string {
	if r.RealRatio == 0 {
		return "–"
	}
	return fmt.Sprintf("%+.1f %%", r.ErrorPct)
}

func errorInterval(r results.FidelityRow) string {
	if r.ErrorLowPct == nil || r.ErrorHighPct == nil {
		return "–"
	}
	if r.ErrorLevel > 0 {
		return fmt.Sprintf("%+.1f … %+.1f %% (%.1f %%)", *r.ErrorLowPct, *r.ErrorHighPct, 100*r.ErrorLevel)
	}
	return fmt.Sprintf("%+.1f … %+.1f %%", *r.ErrorLowPct, *r.ErrorHighPct)
}

func verdictCell(r results.FidelityRow) string {
	if r.Why != "" {
		return fmt.Sprintf("%s: %s", r.Verdict, r.Why)
	}
	return string(r.Verdict)
}

// addedCell is what the pod path adds over its own host on each provider
// (cross-node latency rows), in the metric's unit.
func addedCell(r results.FidelityRow) string {
	if r.ModelAdded == nil || r.RealAdded == nil {
		return "–"
	}
	return fmt.Sprintf("%+.1f / %+.1f %s", *r.ModelAdded, *r.RealAdded, results.Unit(r.Metric))
}
