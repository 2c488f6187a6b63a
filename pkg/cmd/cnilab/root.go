// Package cnilab builds the cnilab root command from one package per
// subcommand.
package cnilab

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/cmd/compare"
	diffcmd "github.com/cnilab/cnilab/pkg/cmd/diff"
	"github.com/cnilab/cnilab/pkg/cmd/doctor"
	"github.com/cnilab/cnilab/pkg/cmd/down"
	imagescmd "github.com/cnilab/cnilab/pkg/cmd/images"
	kindhostcmd "github.com/cnilab/cnilab/pkg/cmd/kindhost"
	"github.com/cnilab/cnilab/pkg/cmd/list"
	rankcmd "github.com/cnilab/cnilab/pkg/cmd/rank"
	reportcmd "github.com/cnilab/cnilab/pkg/cmd/report"
	"github.com/cnilab/cnilab/pkg/cmd/run"
	"github.com/cnilab/cnilab/pkg/cmd/up"
	"github.com/cnilab/cnilab/pkg/probe"
)

// NewRoot returns the root command.
func NewRoot(s cli.Streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "cnilab",
		Short:         "Measure Kubernetes CNI datapaths side by side and rank them per environment",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(&cobra.Command{
		// The connect/serve probe the services-scale scenario runs inside
		// lab namespaces: cnilab re-executes itself as `cnilab probe ...`.
		Use:                "probe",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if code := probe.Main(args, s.Out, s.Err); code != 0 {
				return cli.WithCode(code, fmt.Errorf("probe exited %d", code))
			}
			return nil
		},
	})
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.AddCommand(compare.NewCommand(s), up.NewCommand(s), run.NewCommand(s), down.NewCommand(s), list.NewCommand(s), doctor.NewCommand(s),
		rankcmd.NewCommand(s), diffcmd.NewCommand(s), reportcmd.NewCommand(s), imagescmd.NewCommand(s),
		kindhostcmd.NewCommand(s))
	cli.Harden(root)
	return root
}
