// Package rank is the `cnilab rank` command: it ranks CNIs per environment
// from a results file, an embedded published dataset or a dataset file, and
// prints the published claims' verdicts (design §6–§7).
package rank

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/dataset"
	engine "github.com/cnilab/cnilab/pkg/rank"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/reports/published"
)

func badInput(err error) error { return cli.WithCode(cli.ExitInvalid, err) }

// options are one invocation's flags (kept per command, never global).
type options struct {
	results, published, dataset string
	envs                        []string
	output                      string
	defs                        cli.Definitions
}

// NewCommand returns `cnilab rank`.
func NewCommand(streams cli.Streams) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "rank [--results FILE | --published NAME | --dataset FILE] [--env e,..] [-o text|json|markdown]",
		Short: "Rank CNIs per environment with evidence, and check the published claims",
		Long: "Rank CNIs for each environment profile (scenarios/environments.yaml) from a cnilab results file,\n" +
			"an embedded published dataset (" + strings.Join(dataset.Names(published.FS), ", ") + ") or a dataset file\n" +
			"in the same format, and compute a verdict for every claim in reports/published/claims.yaml.\n\n" +
			"Figures are normalised as a ratio to the best candidate (1 = best). Where figures carry\n" +
			"intervals (a cnilab run), each score has one too; CNIs whose score intervals overlap are\n" +
			"tied and share a place (\"1= calico, kube-router (tied: dts 12.45 [8.05–15.73] vs ...)\").\n" +
			"A published dataset without intervals ties only on equal scores. Services-scale criteria\n" +
			"compare at the largest service count every candidate reached; a figure above its host\n" +
			"baseline beyond both intervals is left out (the notes say which).\n\n" +
			"JSON (-o json): input{name, kind, title, notes[]}; environments[]{name, weights[], ranking[]{\n" +
			"place (shared by tied entries: 1, 1, 3), cni, score, score_low, score_high, tied_with[] (the\n" +
			"other CNIs of the same place), tie (the figures that could not separate it from the entry\n" +
			"above), variant, evidence[]{criterion, value, raw, unit, ci95_low, ci95_high, ci_level,\n" +
			"normalized, normalized_low, normalized_high, weight, contribution, source, detail}},\n" +
			"excluded[], not_eligible[]}; claims[]{id, verdict, reason, evidence[]}. The full contract\n" +
			"is in the package documentation of pkg/rank.\n\n" +
			"Exit codes: 0 ranked, 1 failed, 2 bad input (usage, or a malformed results, dataset or definition file:\n" +
			"file:line: field).",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(streams)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.results, "results", "", "cnilab results file (results.json of a run)")
	f.StringVar(&o.published, "published", "", "embedded published dataset by name")
	f.StringVar(&o.dataset, "dataset", "", "dataset file in the published format (cnilab.dataset/v1)")
	f.StringSliceVar(&o.envs, "env", nil, "environments to rank (default: all)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text, json or markdown")
	o.defs.AddFlags(cmd)
	return cmd
}

func (o *options) run(streams cli.Streams) error {
	n := 0
	for _, s := range []string{o.results, o.published, o.dataset} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return badInput(errors.New("give one of --results, --published, --dataset"))
	}
	if n == 0 {
		o.published = "infrabuilder-2024"
		fmt.Fprintln(streams.Err, "rank: no input given; using --published infrabuilder-2024")
	}
	switch o.output {
	case "text", "json", "markdown":
	default:
		return badInput(fmt.Errorf("-o %q: want text, json or markdown", o.output))
	}
	src := engine.Sources{}
	var err error
	if src.Labs, src.LabsPrefix, src.Scenarios, src.ScenariosPrefix, err = o.defs.FS(); err != nil {
		return err
	}
	defs, err := engine.LoadDefinitions(src)
	if err != nil {
		return classify(err)
	}
	var rep *engine.Report
	switch {
	case o.results != "":
		doc, err := results.ReadFile(o.results)
		if err != nil {
			return badInput(err)
		}
		rep, err = engine.ForResults(doc, defs, o.envs)
		if err != nil {
			return badInput(err)
		}
	default:
		var d *dataset.Dataset
		if o.dataset != "" {
			d, err = dataset.ReadFile(o.dataset)
		} else {
			d, err = dataset.Load(published.FS, o.published)
		}
		if err != nil {
			return badInput(err)
		}
		rep, err = engine.ForDataset(d, defs, o.envs)
		if err != nil {
			return badInput(err)
		}
	}
	switch o.output {
	case "json":
		return rep.WriteJSON(streams.Out)
	case "markdown":
		return rep.WriteMarkdown(streams.Out)
	}
	return rep.WriteText(streams.Out)
}

// classify makes definition errors (file:line: field) and unreadable
// definition files bad input; anything else stays an internal error.
func classify(err error) error {
	if config.IsInvalid(err) || errors.Is(err, os.ErrNotExist) {
		return badInput(err)
	}
	return err
}
