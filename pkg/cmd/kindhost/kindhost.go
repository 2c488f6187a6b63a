// Package kindhost is the `cnilab kind-host` command: prepare this machine
// for the kind provider (see pkg/kindhost).
package kindhost

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/kindhost"
)

// NewCommand returns `cnilab kind-host`.
func NewCommand(s cli.Streams) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "kind-host [--dry-run]",
		Short: "Set this machine up for kind labs: Docker engine, privileged containers, inotify limits",
		Long: `kind-host installs docker.io when root and Docker is absent, starts dockerd when no
engine answers, installs a capability-dropping runc wrapper only when root's
bounding set lacks a capability --privileged requests, and raises the inotify
limits. It never changes a Docker engine that already runs privileged
containers. --dry-run prints the plan only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			begin := time.Now()
			sys := kindhost.Real()
			h, err := kindhost.Detect(cmd.Context(), sys, true)
			if err != nil {
				return err
			}
			plan := kindhost.PlanFor(h)
			plan.Write(s.Out)
			if dryRun {
				return blocked(plan)
			}
			if err := kindhost.Apply(cmd.Context(), sys, h, plan, s.Err); err != nil {
				return err
			}
			if !plan.Empty() {
				after, err := kindhost.Detect(cmd.Context(), sys, false)
				if err != nil {
					return err
				}
				for _, c := range after.Checks() {
					fmt.Fprintf(s.Out, "  %s: %s\n", c.Name, c.Detail)
				}
			}
			fmt.Fprintf(s.Out, "kind-host: done in %s\n", time.Since(begin).Round(10*time.Millisecond))
			return blocked(plan)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	return cmd
}

// blocked turns what the plan will not do into exit code 3 (something to
// do first).
func blocked(p kindhost.Plan) error {
	if len(p.Blockers) == 0 {
		return nil
	}
	return cli.WithCode(cli.ExitPrerequisite, errors.New("kind-host cannot finish the setup here: see \"not done\" above"))
}
