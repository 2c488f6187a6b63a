package diff

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/results"
)

func write(t *testing.T, dir, name, provider string, gbps float64) string {
	t.Helper()
	fid := results.Faithful
	if provider == "kind" {
		fid = results.Real
	}
	doc := results.Document{Schema: results.Schema, Run: results.Run{ID: name}, Summaries: []results.Summary{{
		Lab: "flannel", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.ThroughputBps, Unit: "bit/s",
		Median: gbps * 1e9, CI95Low: gbps * 0.98e9, CI95High: gbps * 1.02e9, CILevel: 0.75, CIMethod: "order-statistic", N: 3,
		Provider: provider, Fidelity: fid}}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodesAndOutput(t *testing.T) {
	dir := t.TempDir()
	base, same, worse, kind := write(t, dir, "base", "netns", 10), write(t, dir, "same", "netns", 10.1), write(t, dir, "worse", "netns", 8), write(t, dir, "kind", "kind", 10)
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"same", []string{base, same}, cli.ExitOK, "VERDICT", "0 regressions"},
		{"regression", []string{base, worse}, cli.ExitFailed, "regression  flannel throughput dts cross-node throughput_bps  10.00 [9.80–10.20] Gbit/s  8.00 [7.84–8.16] Gbit/s  -20.0%", "1 regressions"},
		{"provider mismatch", []string{base, kind}, cli.ExitInvalid, "not-comparable", "1 not comparable"},
		{"bad file", []string{base, bad}, cli.ExitInvalid, "", ""},
		{"negative threshold", []string{"--min-change", "-1", base, same}, cli.ExitInvalid, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			cmd := NewCommand(cli.Streams{Out: &out, Err: &errOut})
			cmd.SetArgs(tc.args)
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			err := cmd.Execute()
			if code := cli.Code(err); code != tc.code {
				t.Errorf("exit %d (%v), want %d", code, err, tc.code)
			}
			if !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) {
				t.Errorf("stdout %q / stderr %q; want %q / %q", out.String(), errOut.String(), tc.out, tc.err)
			}
			if tc.code == cli.ExitInvalid && tc.out == "not-comparable" && !strings.Contains(err.Error(), "flannel throughput dts cross-node throughput_bps: measured by netns/faithful in the old run and kind/real in the new one") {
				t.Errorf("error does not name the figure: %v", err)
			}
		})
	}
}

func TestHelpStatesTheRule(t *testing.T) {
	var out bytes.Buffer
	cmd := NewCommand(cli.Streams{Out: &out, Err: &out})
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"do not overlap", "Welch", "not-comparable", "--min-change"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
