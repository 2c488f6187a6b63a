// Package kindtest decides, in one place, whether a test that brings up a
// kind cluster may run: it skips under -short and where there is no Docker
// engine or no offline image set, except under CI=true, where a test that
// needs Docker must run, so a missing engine fails it.
package kindtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/images"
)

// Require skips (or, under CI=true, fails) t when this machine cannot run
// a kind cluster. what names the test in the reason ("the kind
// end-to-end test").
func Require(t testing.TB, what string) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	cannot := func(why string) {
		if ci {
			t.Fatalf("%s cannot run under CI=true: %s", what, why)
		}
		t.Skip(why)
	}
	if testing.Short() {
		if ci {
			t.Logf("-short under CI=true: %s is skipped on request", what)
		}
		t.Skipf("-short: %s creates a kind cluster (a minute or more)", what)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := (command.Exec{}).Run(ctx, command.Cmd{Name: "docker", Args: []string{"info", "--format", "{{.ServerVersion}}"}}); err != nil {
		cannot("no Docker engine answers (make kind-host starts one): " + err.Error())
	}
	missing, err := images.Present(ctx, command.Exec{})
	if err != nil {
		cannot("cannot ask Docker for the offline images: " + err.Error())
	}
	if err := images.MissingError(missing); err != nil {
		cannot(err.Error())
	}
}
