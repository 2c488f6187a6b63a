package compare

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/results"
)

// TestResumeRefusesContradictions: --resume keeps the run's own request;
// a flag that says otherwise is a usage error (exit 2) naming the flag and
// what the run recorded. Nothing is built: every case fails before.
func TestResumeRefusesContradictions(t *testing.T) {
	out := t.TempDir()
	req := &results.Request{Providers: []string{"netns"}, Labs: []string{"host", "flannel"}, Scenarios: []string{"throughput"}, Profile: "quick", UnderlayMTU: 1500, PinCPUs: true}
	s, err := results.Create(filepath.Join(out, "20261201-150000-abc123"), results.Run{ID: "abc123", Provider: "netns", Request: req, Settings: results.Settings{OrderSeed: 7}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fin := time.Now()
	s, err = results.Create(filepath.Join(out, "20261201-140000-def456"), results.Run{ID: "def456", Provider: "netns", Request: req, Finished: &fin})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"other labs", []string{"--resume", "abc123", "--cni", "host,cilium"}, "--cni host,cilium (run abc123: host,flannel)"},
		{"other profile", []string{"--resume", "abc123", "--profile", "stable"}, "--profile stable (run abc123: quick)"},
		{"other duration", []string{"--resume", "abc123", "--duration", "5s"}, "--duration 5s (run abc123: 0)"},
		{"other provider", []string{"--resume", "abc123", "--provider", "kind"}, "--provider kind (run abc123: netns)"},
		{"other seed", []string{"--resume", "abc123", "--seed", "8"}, "--seed 8 (run abc123: 7)"},
		{"other scenarios", []string{"--resume", "abc123", "--scenario", "throughput,latency"}, "--scenario throughput,latency"},
		{"two at once", []string{"--resume", "abc123", "--repeats", "5", "--placement", "both"}, "--repeats 5 (run abc123: 0); --placement both"},
		{"solo baseline", []string{"--resume", "abc123", "--solo-baseline", "host"}, "--solo-baseline host"},
		{"unknown run", []string{"--resume", "fff000"}, "no run directory *-fff000"},
		{"finished run", []string{"--resume", "def456"}, "nothing to resume"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := NewCommand(cli.Streams{Out: &stdout, Err: &stderr})
			cmd.SetArgs(append(tc.args, "--out", out))
			cmd.SetOut(&stderr)
			cmd.SetErr(&stderr)
			err := cmd.ExecuteContext(context.Background())
			if cli.Code(err) != cli.ExitInvalid || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("exit %d (%v), want %d saying %q", cli.Code(err), err, cli.ExitInvalid, tc.msg)
			}
		})
	}
}
