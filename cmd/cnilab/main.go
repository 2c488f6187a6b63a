// Command cnilab: see pkg/cmd/cnilab.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/cmd/cnilab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := cnilab.NewRoot(cli.Streams{Out: os.Stdout, Err: os.Stderr})
	err := root.ExecuteContext(ctx)
	cli.Print(os.Stderr, err)
	stop()
	os.Exit(cli.Code(err))
}
