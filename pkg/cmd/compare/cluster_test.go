package compare

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
)

// TestClusterFlagsBadInput: cluster flags are checked before any cluster
// is contacted; bad ones exit 2 and say which.
func TestClusterFlagsBadInput(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"cluster flags on netns", []string{"--provider", "netns", "--kubeconfig", kc}, cli.ExitInvalid, "are for --provider cluster"},
		{"no kubeconfig", []string{"--provider", "cluster"}, cli.ExitInvalid, "needs --kubeconfig"},
		{"kubeconfig missing", []string{"--provider", "cluster", "--kubeconfig", filepath.Join(dir, "nope")}, cli.ExitInvalid, "no such file"},
		{"bad pull policy", []string{"--provider", "cluster", "--kubeconfig", kc, "--bench-pull-policy", "Sometimes"}, cli.ExitInvalid, "IfNotPresent, Always or Never"},
		{"unknown lab", []string{"--provider", "cluster", "--kubeconfig", kc, "--cni", "flanel"}, cli.ExitInvalid, `unknown lab "flanel"`},
		{"kubeconfig without a context", []string{"--provider", "cluster", "--kubeconfig", kc, "--bench-image", "r/b:v1"}, cli.ExitInvalid, "kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := NewCommand(cli.Streams{Out: &out, Err: &errb})
			cmd.SetArgs(append(tc.args, "--out", dir))
			cmd.SetOut(&errb)
			cmd.SetErr(&errb)
			err := cmd.ExecuteContext(context.Background())
			if cli.Code(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("exit %d (%v), want %d saying %q", cli.Code(err), err, tc.code, tc.msg)
			}
		})
	}
}
