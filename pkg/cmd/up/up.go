// Package up is the `cnilab up` command: the first stage of compare.
package up

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/cmd/compare"
	"github.com/cnilab/cnilab/pkg/command"
	cmp "github.com/cnilab/cnilab/pkg/compare"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/netns"
	"github.com/cnilab/cnilab/pkg/schedule"
)

// NewCommand returns `cnilab up`.
func NewCommand(s cli.Streams) *cobra.Command {
	var defs cli.Definitions
	var cnis, provider, out string
	var mtu int
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build labs and leave them running; prints the run id for `cnilab run --run ID`",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if provider != "netns" && provider != "kind" {
				return cli.WithCode(cli.ExitInvalid, fmt.Errorf("--provider %q: netns or kind", provider))
			}
			set, err := defs.Load()
			if err != nil {
				return err
			}
			// The workloads every default scenario of compare asks for,
			// both placements: `compare --run` finds them by name.
			o := cmp.Options{Set: set, Labs: cli.SplitList(cnis), Profile: "quick", UnderlayMTU: mtu,
				Scenarios: []string{"throughput", "latency"}, Placements: []string{"cross-node", "same-node"}}
			ctx := cmd.Context()
			var p lab.Provider
			id := cmp.NewRunID()
			dir := ""
			switch provider {
			case "netns":
				caps, err := compare.Prepare(ctx, &o)
				if err != nil {
					return err
				}
				p = netns.New(caps, command.Exec{})
			case "kind":
				if err := o.Validate(); err != nil {
					return cli.WithCode(cli.ExitInvalid, err)
				}
				for _, n := range o.Labs {
					if set.Labs[n].Kind == nil && n != cmp.HostLab {
						return cli.WithCode(cli.ExitPrerequisite, fmt.Errorf("--provider kind: %s has no kind recipe yet (labs/*.yaml kind:)", n))
					}
				}
				kp, err := compare.KindProvider(ctx, &o, s.Err)
				if err != nil {
					return err
				}
				p = kp
				// Per-lab files (kubeconfigs); the labs themselves are found
				// again by their cluster names, never from here.
				dir = filepath.Join(out, "up-"+id)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			var specs []lab.Spec
			for _, n := range o.Labs {
				specs = append(specs, lab.Spec{Def: set.Labs[n], RunID: id, Workloads: o.Workloads(), Nodes: 2, PodsPerNode: 2, UnderlayMTU: mtu, Dir: dir})
			}
			var failed, unavailable []string
			var built []*lab.Instance
			for _, oc := range cmp.Provision(ctx, p, specs, dir) {
				switch {
				case oc.Err == nil:
					built = append(built, oc.Instance)
					fmt.Fprintf(s.Err, "up   %-16s %-5s %.2fs %s\n", oc.Spec.Def.Name, p.Name(), oc.Took.Seconds(), oc.Instance.Datapath)
				case lab.IsUnavailable(oc.Err):
					unavailable = append(unavailable, oc.Spec.Def.Name)
					fmt.Fprintf(s.Err, "--   %-16s %-5s %v\n", oc.Spec.Def.Name, p.Name(), oc.Err)
				default:
					failed = append(failed, oc.Spec.Def.Name)
					fmt.Fprintf(s.Err, "FAIL %-16s %-5s %v\n", oc.Spec.Def.Name, p.Name(), oc.Err)
				}
			}
			if ctx.Err() != nil {
				schedule.Teardown(context.Background(), p, built)
				return ctx.Err()
			}
			if len(built) == 0 {
				// No run to measure: printing an id would send the user to
				// `compare --run` for nothing.
				if dir != "" {
					_ = os.RemoveAll(dir)
				}
				if len(failed) > 0 {
					return cli.WithCode(cli.ExitFailed, errors.New("no lab is up; failed: "+strings.Join(failed, ", ")))
				}
				return cli.WithCode(cli.ExitPrerequisite, errors.New("no lab is up: not reproducible here: "+strings.Join(unavailable, ", ")))
			}
			fmt.Fprintln(s.Out, id)
			fmt.Fprintf(s.Err, "run id %s: measure with `cnilab compare --run %s` (or `cnilab run --run %s`), remove with `cnilab down --run %s`\n", id, id, id, id)
			if dir != "" {
				fmt.Fprintf(s.Err, "kubeconfigs in %s\n", dir)
			}
			if len(failed) > 0 {
				return cli.WithCode(cli.ExitFailed, errors.New("failed: "+strings.Join(failed, ", ")))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "netns", "lab provider: netns or kind (kind clusters running the real CNIs)")
	cmd.Flags().StringVar(&cnis, "cni", "host,flannel,calico,kube-router,cilium", "labs to build, comma separated")
	cmd.Flags().IntVar(&mtu, "underlay-mtu", 1500, "fabric MTU")
	cmd.Flags().StringVar(&out, "out", "reports/runs", "--provider kind: folder for the labs' kubeconfigs (up-<id>/)")
	defs.AddFlags(cmd)
	return cmd
}
