// Package run is the `cnilab run` command: measure labs that `cnilab up`
// left running. It is `compare` without building or removing labs.
package run

import (
	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/cmd/compare"
)

// NewCommand returns `cnilab run`.
func NewCommand(s cli.Streams) *cobra.Command {
	cmd := compare.NewCommand(s)
	cmd.Use = "run --run ID"
	cmd.Short = "Measure the labs of a run that `cnilab up` built (found by their names)"
	_ = cmd.MarkFlagRequired("run")
	return cmd
}
