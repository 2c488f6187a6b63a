package rank

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/google/go-cmp/cmp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(cli.Streams{Out: &out, Err: &errOut})
	cli.Harden(cmd)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func exitCode(err error) int { return cli.Code(err) }

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("schema: cnilab.dataset/v1\nname: x\nattribution: a\nsources:\n  - {id: a, what: b, url: https://x}\nvariants:\n  - name: a\n    cni: flannel\n    encryption: none\n    runs: 1\n    tests:\n      - test: dts\n        throughput_bps: lots\n"), 0o644)
	badEnv := filepath.Join(dir, "scen")
	os.Mkdir(badEnv, 0o755)
	os.WriteFile(filepath.Join(badEnv, "environments.yaml"), []byte("environments:\n  - name: e\n    variants: some\n    criteria: [{name: x, fact: bgp, weight: 1}]\n"), 0o644)
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"published", []string{"--published", "infrabuilder-2024", "--env", "edge"}, 0, ""},
		{"malformed dataset", []string{"--dataset", bad}, 2, bad + ":13: variants.0.tests.0.throughput_bps: cannot unmarshal"},
		{"missing dataset file", []string{"--dataset", filepath.Join(dir, "none.yaml")}, 2, "no such file"},
		{"unknown published", []string{"--published", "infrabuilder-1999"}, 2, "no published dataset"},
		{"unknown environment", []string{"--published", "infrabuilder-2024", "--env", "moon"}, 2, "unknown environment"},
		{"two inputs", []string{"--published", "infrabuilder-2024", "--dataset", bad}, 2, "one of"},
		{"bad output", []string{"-o", "xml"}, 2, "want text, json or markdown"},
		{"unknown flag", []string{"--colour"}, 2, "unknown flag"},
		{"malformed environments", []string{"--scenario-dir", badEnv}, 2, "environments.yaml:3: environments.0.variants"},
		{"missing results file", []string{"--results", filepath.Join(dir, "r.json")}, 2, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(t, tc.args...)
			if got := exitCode(err); got != tc.code {
				t.Fatalf("exit code %d (%v), want %d", got, err, tc.code)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
		})
	}
}

// The rank JSON contract of design §7.
func TestJSONContract(t *testing.T) {
	out, _, err := run(t, "--published", "infrabuilder-2024", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Environments []struct {
			Name    string `json:"name"`
			Ranking []struct {
				CNI      string            `json:"cni"`
				Score    *float64          `json:"score"`
				Evidence []json.RawMessage `json:"evidence"`
			} `json:"ranking"`
		} `json:"environments"`
		Claims []struct {
			ID       string   `json:"id"`
			Verdict  string   `json:"verdict"`
			Evidence []string `json:"evidence"`
		} `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not one JSON document: %v", err)
	}
	var names []string
	for _, e := range doc.Environments {
		names = append(names, e.Name)
		if len(e.Ranking) == 0 {
			t.Errorf("%s: empty ranking", e.Name)
		}
		for _, r := range e.Ranking {
			if r.CNI == "" || r.Score == nil || len(r.Evidence) == 0 {
				t.Errorf("%s: entry without cni, score or evidence: %+v", e.Name, r)
			}
		}
	}
	if got := strings.Join(names, ","); got != "edge,standard,high-performance,large-scale,security,dev-test,encryption" {
		t.Errorf("environments %s", got)
	}
	if len(doc.Claims) != 11 {
		t.Fatalf("%d claims, want 11", len(doc.Claims))
	}
	for _, c := range doc.Claims {
		switch c.Verdict {
		case "reproduced", "contradicted", "untestable":
		default:
			t.Errorf("%s: verdict %q", c.ID, c.Verdict)
		}
	}
}

// Golden files keep the people-facing output stable; run with -update
// after an intended change and review the diff.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"edge-2024.md", []string{"--published", "infrabuilder-2024", "--env", "edge", "-o", "markdown"}},
		{"claims-2020.txt", []string{"--published", "infrabuilder-2020", "--env", "encryption,dev-test"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, _, err := run(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(string(want), out); d != "" {
				t.Errorf("output differs from %s (go test ./pkg/cmd/rank -update to accept), -want +got:\n%s", path, d)
			}
		})
	}
}
