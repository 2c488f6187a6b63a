// Package down is the `cnilab down` command.
package down

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab/netns"
	"github.com/cnilab/cnilab/pkg/netplan"
)

// NewCommand returns `cnilab down`.
func NewCommand(s cli.Streams) *cobra.Command {
	var all bool
	var runID string
	cmd := &cobra.Command{
		Use:   "down [--run ID | --all]",
		Short: "Remove labs: one run's (--run) or every cnl- leftover (--all); idempotent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all == (runID != "") {
				return cli.WithCode(cli.ExitInvalid, errors.New("give exactly one of --run ID or --all"))
			}
			p := netns.New(nil, command.Exec{})
			if all {
				removed, err := p.DownAll(cmd.Context())
				fmt.Fprintf(s.Err, "removed %d namespaces\n", len(removed))
				return err
			}
			names, err := p.List(cmd.Context())
			if err != nil {
				return err
			}
			prefix := netns.NamePrefix + runID + "-"
			var errs []error
			n := 0
			for _, name := range names {
				if strings.HasPrefix(name, prefix) {
					n++
					errs = append(errs, netplan.DeleteNamespace(name))
				}
			}
			fmt.Fprintf(s.Err, "removed %d namespaces of run %s\n", n, runID)
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every cnl- namespace, whichever run made it")
	cmd.Flags().StringVar(&runID, "run", "", "remove the labs of this run id")
	return cmd
}
