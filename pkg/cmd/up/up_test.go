package up

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
)

// TestUpBadInput: a provider up cannot build, or a lab without a kind
// recipe on kind, fails before anything is built.
func TestUpBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown provider", []string{"--provider", "vagrant"}, cli.ExitInvalid, "netns or kind"},
		{"cluster is not built by up", []string{"--provider", "cluster"}, cli.ExitInvalid, "netns or kind"},
		{"unknown lab on kind", []string{"--provider", "kind", "--cni", "flanel"}, cli.ExitInvalid, `unknown lab "flanel"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := NewCommand(cli.Streams{Out: &out, Err: &errb})
			cmd.SetArgs(append(tc.args, "--out", t.TempDir()))
			cmd.SetOut(&errb)
			cmd.SetErr(&errb)
			err := cmd.ExecuteContext(context.Background())
			if cli.Code(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("exit %d (%v), want %d saying %q", cli.Code(err), err, tc.code, tc.msg)
			}
		})
	}
}
