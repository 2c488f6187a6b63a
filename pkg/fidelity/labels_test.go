package fidelity

import (
	"os"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/scenarios"
)

// KeptPath is the kept fidelity summary, from this package's directory.
const keptPath = "../../reports/fidelity/summary.json"

// TestLabelsAgreeWithTheKeptRun is the gate on the labels: README's
// fidelity column and labs/*.yaml's netns fidelity must say what the kept
// fidelity run measured (reports/fidelity/summary.json). Re-run
// `cnilab compare --provider netns,kind ...` and
// `cnilab report --fidelity-summary reports/fidelity/summary.json RESULTS`
// to renew it.
func TestLabelsAgreeWithTheKeptRun(t *testing.T) {
	k, err := ReadKept(keptPath)
	if err != nil {
		t.Fatal(err)
	}
	set, err := config.Load(labs.FS, ".", scenarios.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range CheckLabels(k, Labels(set), ReadmeFidelity(string(readme))) {
		t.Error(err)
	}
	if k.Date == "" || k.Kernel == "" || len(k.Versions) == 0 {
		t.Errorf("kept summary lacks its date, kernel or versions: %+v", k)
	}
}

const readmeTable = `
| lab | how it is built | fidelity here |
|---|---|---|
| host | baseline | faithful |
| flannel | vxlan | faithful (holds: dts +3 %) |
| cilium / cilium-native | lxc | approximate (differs: up to 23 %) |
| calico | cali | faithful (unverified here: no image source for calico) |

after the table
`

func TestReadmeFidelity(t *testing.T) {
	got := ReadmeFidelity(readmeTable)
	want := map[string]string{"host": "faithful", "flannel": "faithful (holds: dts +3 %)", "cilium": "approximate (differs: up to 23 %)",
		"cilium-native": "approximate (differs: up to 23 %)", "calico": "faithful (unverified here: no image source for calico)"}
	if len(got) != len(want) {
		t.Errorf("cells %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}

func TestCheckLabels(t *testing.T) {
	kept := func(labs ...KeptLab) *Kept { return &Kept{Labs: labs} }
	cases := []struct {
		name   string
		k      *Kept
		labels map[string]string
		readme map[string]string
		errs   []string // substrings, one per expected error
	}{
		{name: "all agree",
			k:      kept(KeptLab{Lab: "flannel", Verdict: results.FidelityHolds}, KeptLab{Lab: "cilium", Verdict: results.FidelityDiffers, MaxAbsErrorPct: 23}, KeptLab{Lab: "calico", Verdict: Unverified, Why: "unverified here: no image source for calico"}),
			labels: map[string]string{"flannel": "faithful", "cilium": "approximate", "calico": "faithful"},
			readme: map[string]string{"flannel": "faithful (holds)", "cilium": "approximate (differs: up to 23 %)", "calico": "faithful (unverified here: no image source)"}},
		{name: "differs but still faithful",
			k:      kept(KeptLab{Lab: "flannel", Verdict: results.FidelityDiffers, MaxAbsErrorPct: 18}),
			labels: map[string]string{"flannel": "faithful"},
			readme: map[string]string{"flannel": "faithful (differs: 18 %)"},
			errs:   []string{"label it approximate"}},
		{name: "differs without the number",
			k:      kept(KeptLab{Lab: "flannel", Verdict: results.FidelityDiffers, MaxAbsErrorPct: 18}),
			labels: map[string]string{"flannel": "approximate"},
			readme: map[string]string{"flannel": "approximate (differs)"},
			errs:   []string{"up to 18 %"}},
		{name: "README and yaml disagree",
			k:      kept(KeptLab{Lab: "flannel", Verdict: results.FidelityHolds}),
			labels: map[string]string{"flannel": "approximate"},
			readme: map[string]string{"flannel": "faithful (holds)"},
			errs:   []string{`labs/flannel.yaml says approximate`}},
		{name: "README claims holds over a noisy run",
			k:      kept(KeptLab{Lab: "flannel", Verdict: results.FidelityUndecided}),
			labels: map[string]string{"flannel": "faithful"},
			readme: map[string]string{"flannel": "faithful (holds)"},
			errs:   []string{"could not decide"}},
		{name: "unverified not said",
			k:      kept(KeptLab{Lab: "calico", Verdict: Unverified, Why: "unverified here: no image source for calico"}),
			labels: map[string]string{"calico": "faithful"},
			readme: map[string]string{"calico": "faithful"},
			errs:   []string{"no image source for calico"}},
		{name: "a label no kept run covers",
			k:      kept(),
			labels: map[string]string{"canal": "faithful"},
			readme: map[string]string{"canal": "faithful"},
			errs:   []string{"no kept fidelity run covers it"}},
		{name: "no README row",
			k:      kept(KeptLab{Lab: "flannel", Verdict: results.FidelityHolds}),
			labels: map[string]string{"flannel": "faithful"},
			readme: map[string]string{},
			errs:   []string{"no row"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := CheckLabels(tc.k, tc.labels, tc.readme)
			if len(errs) != len(tc.errs) {
				t.Fatalf("errors %v, want %d saying %q", errs, len(tc.errs), tc.errs)
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tc.errs[i]) {
					t.Errorf("error %q, want one saying %q", e, tc.errs[i])
				}
			}
		})
	}
}

func TestMergeKept(t *testing.T) {
	first := &Kept{RunID: "r1", Date: "2026-12-01", Kernel: "6.18", Labs: []KeptLab{
		{Lab: "flannel", Run: "r1", Verdict: results.FidelityHolds},
		{Lab: "cilium", Run: "r1", Verdict: Unverified, Why: "unverified here: the kind lab failed"},
	}, Versions: []KeptVersions{{Lab: "flannel", CNIVersion: "v0.28.10"}}}
	second := &Kept{RunID: "r2", Date: "2026-12-01", Kernel: "6.18", Labs: []KeptLab{
		{Lab: "flannel", Run: "r2", Verdict: results.FidelityDiffers},
		{Lab: "cilium", Run: "r2", Verdict: results.FidelityUndecided},
	}, Versions: []KeptVersions{{Lab: "flannel"}, {Lab: "cilium", CNIVersion: "1.18.3"}}}
	m := MergeKept([]*Kept{first, second})
	got := map[string]KeptLab{}
	for _, l := range m.Labs {
		got[l.Lab] = l
	}
	if got["flannel"].Run != "r1" || got["cilium"].Run != "r2" || got["cilium"].Verdict != results.FidelityUndecided {
		t.Errorf("merged labs %+v: want flannel from r1 (measured first), cilium from r2 (unverified in r1)", m.Labs)
	}
	if len(m.Runs) != 2 || m.RunID != "r1" || len(m.Versions) != 2 {
		t.Errorf("runs %+v, run id %s, versions %+v", m.Runs, m.RunID, m.Versions)
	}
}
