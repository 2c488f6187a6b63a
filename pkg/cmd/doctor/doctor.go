// Package doctor is the `cnilab doctor` command: what this machine can and
// cannot reproduce, and what to install.
package doctor

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/kindhost"
	"github.com/cnilab/cnilab/pkg/prereq"
)

type flags struct {
	defs      cli.Definitions
	provider  string
	cnis      string
	scenarios string
}

// NewCommand returns `cnilab doctor`.
func NewCommand(s cli.Streams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "doctor [--provider auto|netns|kind] [--cni a,b] [--scenario x,y]",
		Short: "Check what compare needs on this machine, and what to install",
		Long: "doctor runs the prerequisite checks compare runs before it builds anything, for the same\n" +
			"provider, labs and scenarios (the defaults are compare's), and adds what this machine can\n" +
			"reproduce: kernel capabilities for netns labs, the Docker set-up for kind labs.\n" +
			"--provider auto checks both and fails only when neither provider can run.\n" +
			"Exit codes: 0 ready, 2 bad input, 3 something to install (listed).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), s, f) },
	}
	cmd.Flags().StringVar(&f.provider, "provider", "auto", "provider to check: auto, netns or kind")
	cmd.Flags().StringVar(&f.cnis, "cni", "host,flannel,calico,kube-router,cilium", "labs compare would measure, comma separated")
	cmd.Flags().StringVar(&f.scenarios, "scenario", "throughput", "scenarios compare would run, comma separated")
	f.defs.AddFlags(cmd)
	return cmd
}

func run(ctx context.Context, s cli.Streams, f *flags) error {
	var providers []string
	switch f.provider {
	case "auto":
		providers = []string{"netns", "kind"}
	case "netns", "kind":
		providers = []string{f.provider}
	default:
		return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--provider %q: auto, netns or kind", f.provider))
	}
	set, err := f.defs.Load()
	if err != nil {
		return err
	}
	need := prereq.Need{Set: set, Labs: cli.SplitList(f.cnis), Scenarios: cli.SplitList(f.scenarios)}
	if err := known(set, need); err != nil {
		return cli.WithCode(cli.ExitInvalid, err)
	}
	tw := tabwriter.NewWriter(s.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tCHECK\tSTATUS\tDETAIL")
	fmt.Fprintf(tw, "-\tcpus\tinfo\t%d (measurement windows share them with whatever else runs)\n", runtime.NumCPU())
	var ready []string
	var errs []error
	for _, p := range providers {
		need.Provider = p
		cs, err := prereq.Checks(ctx, prereq.Real(), need)
		if err != nil {
			return err
		}
		for _, c := range cs {
			st := "ok"
			if !c.OK {
				st = "missing"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p, c.Name, st, detail(c))
		}
		if err := prereq.Err(p, cs); err != nil {
			errs = append(errs, err)
		} else {
			ready = append(ready, p)
		}
		if err := extras(ctx, tw, p); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if f.provider == "auto" && len(ready) > 0 {
		fmt.Fprintf(s.Out, "compare can run on: %s\n", strings.Join(ready, ", "))
		return nil
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return cli.WithCode(cli.ExitPrerequisite, fmt.Errorf("%s", strings.Join(msgs, "\n")))
	}
	return nil
}

// extras are what doctor adds beyond compare's checks: they decide what a
// lab can reproduce, not whether compare can start.
func extras(ctx context.Context, w io.Writer, provider string) error {
	switch provider {
	case "netns":
		if os.Geteuid() != 0 {
			fmt.Fprintln(w, "netns\tkernel\tunknown\trun as root to probe the kernel's capabilities")
			return nil
		}
		caps, err := kernelcap.Detect(ctx)
		if err != nil {
			return err
		}
		for _, c := range caps.List() {
			st, detail := "ok", c.Config
			if !c.Available {
				st = "absent"
				detail = fmt.Sprintf("%s missing: labs needing it report \"not reproducible here\" (%s)", c.Config, c.Detail)
			}
			fmt.Fprintf(w, "netns\tkernel %s\t%s\t%s\n", c.Name, st, detail)
		}
	case "kind":
		// The engine's set-up: privileged containers, the bounding-set gap,
		// and what `cnilab kind-host` would change.
		host, err := kindhost.Detect(ctx, kindhost.Real(), true)
		if err != nil {
			return err
		}
		for _, c := range host.Checks() {
			st := "ok"
			if !c.OK {
				st = "absent"
			}
			fmt.Fprintf(w, "kind\t%s\t%s\t%s\n", c.Name, st, c.Detail)
		}
		if plan := kindhost.PlanFor(host); !plan.Empty() {
			fmt.Fprintln(w, "kind\tkind-host\tto do\tcnilab kind-host (make kind-host) as root applies its plan; --dry-run prints it")
		}
	}
	return nil
}

func detail(c prereq.Check) string {
	if c.Why == "" {
		return c.Detail
	}
	if c.Detail == "" {
		return "for " + c.Why
	}
	return c.Detail + " — for " + c.Why
}

// known rejects lab and scenario names the definitions lack, as compare
// does.
func known(set *config.Set, n prereq.Need) error {
	var bad []string
	for _, l := range n.Labs {
		if set.Labs[l] == nil {
			bad = append(bad, fmt.Sprintf("--cni: unknown lab %q", l))
		}
	}
	for _, sc := range n.Scenarios {
		if set.Scenarios[sc] == nil {
			bad = append(bad, fmt.Sprintf("--scenario: unknown scenario %q", sc))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}
