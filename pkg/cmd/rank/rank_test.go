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
				Place     int               `json:"place"`
				CNI       string            `json:"cni"`
				Score     *float64          `json:"score"`
				ScoreLow  *float64          `json:"score_low"`
				ScoreHigh *float64          `json:"score_high"`
				TiedWith  []string          `json:"tied_with"`
				Evidence  []json.RawMessage `json:"evidence"`
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
		places := map[int][]string{}
		for i, r := range e.Ranking {
			if r.CNI == "" || r.Score == nil || len(r.Evidence) == 0 || r.ScoreLow == nil || r.ScoreHigh == nil {
				t.Errorf("%s: entry without cni, score, score interval or evidence: %+v", e.Name, r)
			}
			// Published figures have no intervals: a tie is an equal score.
			if r.ScoreLow != nil && (*r.ScoreLow != *r.Score || *r.ScoreHigh != *r.Score) {
				t.Errorf("%s: %s has a score interval without figure intervals", e.Name, r.CNI)
			}
			if r.Place < 1 || r.Place > i+1 {
				t.Errorf("%s: %s at index %d has place %d", e.Name, r.CNI, i, r.Place)
			}
			places[r.Place] = append(places[r.Place], r.CNI)
		}
		for _, r := range e.Ranking {
			if len(places[r.Place])-1 != len(r.TiedWith) {
				t.Errorf("%s: %s shares place %d with %v but tied_with is %v", e.Name, r.CNI, r.Place, places[r.Place], r.TiedWith)
			}
		}
		if e.Name == "security" && len(places[1]) != 2 {
			t.Errorf("security: antrea and cilium score 100 each on facts alone and must share place 1: %v", places)
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
