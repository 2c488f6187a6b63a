// Package up is the `cnilab up` command: the first stage of compare.
package up

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/command"
	cmp "github.com/cnilab/cnilab/pkg/compare"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/netns"
	"github.com/cnilab/cnilab/pkg/schedule"
)

// NewCommand returns `cnilab up`.
func NewCommand(s cli.Streams) *cobra.Command {
	var defs cli.Definitions
	var cnis string
	var mtu int
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build labs and leave them running; prints the run id for `cnilab run --run ID`",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set, err := defs.Load()
			if err != nil {
				return err
			}
			o := cmp.Options{Set: set, Labs: strings.Split(cnis, ","), Profile: "quick", UnderlayMTU: mtu}
			if err := o.Validate(); err != nil {
				return cli.WithCode(cli.ExitInvalid, err)
			}
			if err := cmp.Prerequisites(); err != nil {
				return cli.WithCode(cli.ExitPrerequisite, err)
			}
			caps, err := kernelcap.Detect(cmd.Context())
			if err != nil {
				return cli.WithCode(cli.ExitPrerequisite, err)
			}
			p := netns.New(caps, command.Exec{})
			id := cmp.NewRunID()
			var specs []lab.Spec
			for _, n := range o.Labs {
				specs = append(specs, lab.Spec{Def: set.Labs[n], RunID: id, Nodes: 2, PodsPerNode: 2, UnderlayMTU: mtu})
			}
			var failed []string
			var built []*lab.Instance
			for _, oc := range schedule.Provision(cmd.Context(), p, specs) {
				switch {
				case oc.Err == nil:
					built = append(built, oc.Instance)
					fmt.Fprintf(s.Err, "up   %-16s %.2fs %s\n", oc.Spec.Def.Name, oc.Took.Seconds(), oc.Instance.Datapath)
				case lab.IsUnavailable(oc.Err):
					fmt.Fprintf(s.Err, "--   %-16s %v\n", oc.Spec.Def.Name, oc.Err)
				default:
					failed = append(failed, oc.Spec.Def.Name)
					fmt.Fprintf(s.Err, "FAIL %-16s %v\n", oc.Spec.Def.Name, oc.Err)
				}
			}
			if cmd.Context().Err() != nil {
				schedule.Teardown(context.Background(), p, built)
				return cmd.Context().Err()
			}
			fmt.Fprintln(s.Out, id)
			fmt.Fprintf(s.Err, "run id %s: measure with `cnilab run --run %s`, remove with `cnilab down --run %s`\n", id, id, id)
			if len(failed) > 0 {
				return cli.WithCode(cli.ExitFailed, errors.New("failed: "+strings.Join(failed, ", ")))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cnis, "cni", "host,flannel,calico,kube-router,cilium", "labs to build, comma separated")
	cmd.Flags().IntVar(&mtu, "underlay-mtu", 1500, "fabric MTU")
	defs.AddFlags(cmd)
	return cmd
}
