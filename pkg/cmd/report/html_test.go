package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
)

// A run directory or its results.json both get a report.html beside the
// results; an unknown format is bad input (exit 2).
func TestReportHTML(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "htmlreport", "testdata", "kind-latency.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		arg    func(dir string) string
		format string
		code   int
	}{
		{"run dir", func(dir string) string { return dir }, "html", 0},
		{"results file", func(dir string) string { return filepath.Join(dir, "results.json") }, "md,html", 0},
		{"unknown format", func(dir string) string { return dir }, "pdf", cli.ExitInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "results.json"), src, 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errs bytes.Buffer
			cmd := NewCommand(cli.Streams{Out: &out, Err: &errs})
			cmd.SetArgs([]string{tc.arg(dir), "--format", tc.format})
			cmd.SetOut(&out)
			cmd.SetErr(&errs)
			err := cmd.Execute()
			if got := cli.Code(err); got != tc.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.code)
			}
			if tc.code != 0 {
				return
			}
			page, err := os.ReadFile(filepath.Join(dir, "report.html"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), "cnilab run d8cfba") {
				t.Errorf("report.html has no chart or no run id (%d bytes)", len(page))
			}
			if st, _ := os.Stat(filepath.Join(dir, "report.html")); st.Mode().Perm() != 0o644 {
				t.Errorf("report.html mode %v, want 0644 like the run's other files", st.Mode().Perm())
			}
		})
	}
}
