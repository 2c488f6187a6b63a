// Package compare is the `cnilab compare` command.
package compare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/command"
	cmp "github.com/cnilab/cnilab/pkg/compare"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/cluster"
	"github.com/cnilab/cnilab/pkg/lab/kind"
	"github.com/cnilab/cnilab/pkg/lab/netns"
	"github.com/cnilab/cnilab/pkg/report"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/scenario/servicescale"
	"github.com/cnilab/cnilab/pkg/scenario/throughput"
)

type flags struct {
	defs        cli.Definitions
	provider    string
	cnis        string
	scenarios   string
	profile     string
	duration    cli.Seconds
	repeats     cli.Count
	placement   string
	underlayMTU int
	out         string
	keep        bool
	output      string
	runID       string
	resume      string
	seed        uint64
	solo        string
	pinCPUs     bool
	cluster     clusterFlags
}

// NewCommand returns `cnilab compare`.
func NewCommand(s cli.Streams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Stand up one lab per CNI, measure them all the same way, and report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, s, f)
		},
	}
	cmd.Flags().StringVar(&f.provider, "provider", "auto", "lab provider: auto, netns, kind, cluster, or netns,kind (each netns model beside the real CNI, with the fidelity table)")
	cmd.Flags().StringVar(&f.cnis, "cni", "host,flannel,calico,kube-router,cilium", "labs to compare, comma separated (cnilab list cnis)")
	cmd.Flags().StringVar(&f.scenarios, "scenario", "throughput", "scenarios, comma separated (cnilab list scenarios)")
	cmd.Flags().StringVar(&f.profile, "profile", "quick", "measurement profile: quick, stable or full (see scenarios/*.yaml)")
	cmd.Flags().Var(&f.duration, "duration", "length of each measurement window, a Go duration such as 10s or 2m (overrides the profile)")
	cmd.Flags().Var(&f.repeats, "repeats", "repeats per lab and test, at least 1 (overrides the profile)")
	cmd.Flags().StringVar(&f.placement, "placement", "", "cross-node, same-node or both (default: the profile's)")
	cmd.Flags().IntVar(&f.underlayMTU, "underlay-mtu", 1500, "fabric MTU (9000 mimics the 2024 lab's jumbo frames)")
	cmd.Flags().StringVar(&f.out, "out", "reports/runs", "folder for run directories")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "keep the labs after the run (cnilab down --all removes them)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "stdout format: text or json")
	cmd.Flags().BoolVar(&f.pinCPUs, "pin-cpus", true, "pin the iperf3 client and server to two different CPUs (the lowest and highest each pod may use), host baseline included; --pin-cpus=false leaves placement to the scheduler")
	cmd.Flags().StringVar(&f.runID, "run", "", "measure the labs 'cnilab up' built for this run id (they are kept)")
	cmd.Flags().Uint64Var(&f.seed, "seed", 0, "seed of the labs' window order per repeat (0 draws one; results.json records it as run.settings.order_seed, and the same seed replays the same order)")
	cmd.Flags().StringVar(&f.resume, "resume", "", "continue a killed run (its id under --out, or its directory): same id, seed, order and settings; labs still up are re-attached, missing ones rebuilt, finished measurements kept")
	cmd.Flags().StringVar(&f.solo, "solo-baseline", "", "bring this lab up alone (then remove it) before all labs together, to record the parallel-vs-one provisioning ratio")
	f.cluster.add(cmd)
	f.defs.AddFlags(cmd)
	return cmd
}

func run(cmd *cobra.Command, s cli.Streams, f *flags) error {
	if f.output != "text" && f.output != "json" {
		return cli.WithCode(cli.ExitInvalid, fmt.Errorf("-o %q: text or json", f.output))
	}
	if f.resume != "" {
		return resume(cmd, s, f)
	}
	both := false
	switch f.provider {
	case "auto", "netns", "kind":
		if f.cluster.set(cmd) {
			return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--kubeconfig, --context, --bench-image, --nodes, --node-selector and --dry-run are for --provider cluster, not %s", f.provider))
		}
	case "netns,kind", "kind,netns":
		both = true
		if f.cluster.set(cmd) {
			return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--kubeconfig, --context, --bench-image, --nodes, --node-selector and --dry-run are for --provider cluster, not %s", f.provider))
		}
	case "cluster":
	default:
		return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--provider %q: auto, netns, kind, cluster or netns,kind", f.provider))
	}
	set, err := f.defs.Load()
	if err != nil {
		return err
	}
	var placements []string
	if f.placement == "both" {
		placements = []string{"cross-node", "same-node"}
	} else if f.placement != "" {
		placements = cli.SplitList(f.placement)
	}
	labs := cli.SplitList(f.cnis)
	if f.runID != "" && !cmd.Flags().Changed("cni") && f.provider != "cluster" && !both {
		// The labs of that run that are up, wherever they are.
		if labs, f.provider, err = discoverRun(cmd.Context(), f.runID, f.provider); err != nil {
			return err
		}
		fmt.Fprintf(s.Err, "run %s: labs %s up on %s\n", f.runID, strings.Join(labs, ", "), f.provider)
	}
	if both && !slices.Contains(labs, cmp.HostLab) {
		// Each provider's ratios need its own host baseline.
		labs = append([]string{cmp.HostLab}, labs...)
	}
	var cp *cluster.Provider
	if f.provider == "cluster" {
		if cp, labs, err = f.cluster.prepare(cmd, s, set, labs, cmd.Flags().Changed("cni")); err != nil {
			return err
		}
	}
	opts := cmp.Options{Set: set, Labs: labs, Scenarios: cli.SplitList(f.scenarios), Profile: f.profile, Seconds: f.duration.N,
		Repeats: f.repeats.N, Placements: placements, UnderlayMTU: f.underlayMTU, OutDir: f.out, Keep: f.keep, Progress: cli.NewProgress(s.Err), RunID: f.runID, PinCPUs: f.pinCPUs, SoloBaseline: f.solo, OrderSeed: f.seed,
		LabsDir: absDir(f.defs.LabsDir), ScenariosDir: absDir(f.defs.ScenariosDir)}
	if err := opts.Validate(); err != nil {
		return cli.WithCode(cli.ExitInvalid, err)
	}
	if cp != nil {
		return runCluster(cmd, s, f, opts, cp)
	}
	var noRecipe []string
	for _, n := range opts.Labs {
		// Asked for, the kind provider realises the host baseline in one
		// of its clusters; it needs no recipe. (auto keeps counting it,
		// so the default lab list stays on netns.)
		if set.Labs[n].Kind == nil && (n != cmp.HostLab || f.provider == "auto") {
			noRecipe = append(noRecipe, n)
		}
	}
	ctx := cmd.Context()
	r := command.Exec{}
	want := f.provider
	if both {
		want = "kind"
	}
	ch, err := chooseProvider(ctx, want, noRecipe, kindReadiness{
		engine: func(ctx context.Context) error { return images.CheckEngine(ctx, r) },
		images: func(ctx context.Context) error {
			missing, err := images.Present(ctx, r)
			if err != nil {
				return err
			}
			return images.MissingError(missing)
		},
	})
	if err != nil {
		return cli.WithCode(cli.ExitPrerequisite, err)
	}
	var ps []lab.Provider
	var caps kernelcap.Set
	if both || ch.name == "netns" {
		caps, err = Prepare(ctx, &opts)
		if err != nil {
			return err
		}
		ps = append(ps, netns.New(caps, r))
	}
	if both || ch.name == "kind" {
		if err := opts.Prerequisites(ctx, "kind"); err != nil {
			return cli.WithCode(cli.ExitPrerequisite, err)
		}
		kp := kind.New(kind.ImagesFrom(images.Offline()), r, nil)
		kp.Log = func(format string, args ...any) { fmt.Fprintf(s.Err, "  "+format+"\n", args...) }
		ps = append(ps, kp)
		// The run records the host kernel's capabilities where it may
		// read them; kind labs need none of them.
		if caps == nil && os.Geteuid() == 0 {
			if c, err := kernelcap.Detect(ctx); err == nil {
				caps = c
			}
		}
	}
	if both {
		fmt.Fprintf(s.Err, "providers netns and kind (asked for): each model beside the real CNI\n")
	} else {
		fmt.Fprintf(s.Err, "provider %s (%s)\n", ch.name, ch.reason)
	}
	return finish(ctx, s, f, opts, ps, caps)
}

// finish runs the comparison with providers ps (one, or netns and kind)
// and prints its document.
func finish(ctx context.Context, s cli.Streams, f *flags, opts cmp.Options, ps []lab.Provider, caps kernelcap.Set) error {
	runner := &throughput.Runner{}
	doc, err := cmp.RunAll(ctx, opts, ps, caps, runner)
	if doc != nil {
		if f.output == "json" {
			enc := json.NewEncoder(s.Out)
			enc.SetIndent("", "  ")
			if werr := enc.Encode(doc); werr != nil {
				return werr
			}
		} else {
			fmt.Fprintln(s.Out)
			if werr := report.Table(s.Out, doc); werr != nil {
				return werr
			}
			if werr := report.Lines(s.Out, "services-scale (netns, measured here):", servicescale.ShapeSummary(doc.Measurements)); werr != nil {
				return werr
			}
			if werr := report.FidelityText(s.Out, doc); werr != nil {
				return werr
			}
		}
	}
	if err != nil {
		if errors.Is(err, cmp.ErrPrerequisite) {
			return cli.WithCode(cli.ExitPrerequisite, err)
		}
		return err
	}
	if failed := failures(doc); failed != "" {
		return cli.WithCode(cli.ExitFailed, errors.New(failed))
	}
	return nil
}

// Prepare validates options (exit 2), checks prerequisites (exit 3) and
// detects kernel capabilities, in that order, before anything is created.
func Prepare(ctx context.Context, o *cmp.Options) (kernelcap.Set, error) {
	if err := o.Validate(); err != nil {
		return nil, cli.WithCode(cli.ExitInvalid, err)
	}
	if err := o.Prerequisites(ctx, "netns"); err != nil {
		return nil, cli.WithCode(cli.ExitPrerequisite, err)
	}
	caps, err := kernelcap.Detect(ctx)
	if err != nil {
		return nil, cli.WithCode(cli.ExitPrerequisite, err)
	}
	return caps, nil
}

// failures summarises failed labs and measurements (exit code 1).
func failures(doc *results.Document) string {
	var parts []string
	for _, l := range doc.Labs {
		if l.Status == results.StatusFailed {
			parts = append(parts, fmt.Sprintf("lab %s failed: %s", l.Name, l.Error))
		}
	}
	n := 0
	for _, m := range doc.Measurements {
		if m.Error != "" {
			n++
		}
	}
	if n > 0 {
		parts = append(parts, fmt.Sprintf("%d measurements failed (see report.md)", n))
	}
	return strings.Join(parts, "; ")
}
