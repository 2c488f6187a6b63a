package fidelity

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/results"
	kept "github.com/cnilab/cnilab/reports/fidelity"
)

// KeptSchema tags the kept summary.
const KeptSchema = "cnilab.fidelity-summary/v1"

// Unverified is a kept lab's verdict when its model could not be checked
// here (no image source for the real CNI, no kind recipe, not in the run).
const Unverified results.FidelityVerdict = "unverified"

// Kept is the small summary of a fidelity run kept in the repo
// (reports/fidelity/summary.json): what backs every model's label in
// README.md and labs/*.yaml. Written by `cnilab report --fidelity-summary`.
type Kept struct {
	Schema string `json:"schema"`
	// Date is the day the run started (YYYY-MM-DD); RunID its id.
	Date    string  `json:"date"`
	RunID   string  `json:"run_id"`
	Kernel  string  `json:"kernel"`
	CPUs    int     `json:"cpus"`
	Profile string  `json:"profile,omitempty"`
	Seconds float64 `json:"duration_s"`
	Repeats int     `json:"repeats"`
	// Runs lists every run the summary draws on, when more than one (a
	// lab whose real side failed in one run measured in another).
	Runs []KeptRun `json:"runs,omitempty"`
	// Versions are what ran on the real side, per lab.
	Versions []KeptVersions `json:"versions"`
	Labs     []KeptLab      `json:"labs"`
}

// KeptRun is one run a summary draws on.
type KeptRun struct {
	ID      string  `json:"id"`
	Date    string  `json:"date"`
	Kernel  string  `json:"kernel"`
	Profile string  `json:"profile,omitempty"`
	Seconds float64 `json:"duration_s"`
	Repeats int     `json:"repeats"`
}

// KeptVersions are a real lab's versions.
type KeptVersions struct {
	Lab         string `json:"lab"`
	CNIVersion  string `json:"cni_version,omitempty"`
	Kubernetes  string `json:"kubernetes,omitempty"`
	NodeImage   string `json:"node_image,omitempty"`
	CNIImage    string `json:"cni_image,omitempty"`
	ImageSource string `json:"image_source,omitempty"`
	// IPerf3 is the iperf3 of the model's and the real lab's pods.
	IPerf3Model string `json:"iperf3_model,omitempty"`
	IPerf3Real  string `json:"iperf3_real,omitempty"`
}

// KeptLab is one model's verdict.
type KeptLab struct {
	Lab string `json:"lab"`
	// Run is the id of the run the verdict comes from.
	Run string `json:"run,omitempty"`
	// Label is the model's label when the run was made.
	Label          results.Fidelity        `json:"label,omitempty"`
	Verdict        results.FidelityVerdict `json:"verdict"`
	MaxAbsErrorPct float64                 `json:"max_abs_error_pct,omitempty"`
	// Why says why an unverified model is (no image source, ...).
	Why   string     `json:"why,omitempty"`
	Tests []KeptTest `json:"tests,omitempty"`
}

// KeptTest is one row of the fidelity table, reduced.
type KeptTest struct {
	Test         string                  `json:"test"`
	Placement    string                  `json:"placement,omitempty"`
	ErrorPct     float64                 `json:"error_pct"`
	ErrorLowPct  *float64                `json:"error_low_pct,omitempty"`
	ErrorHighPct *float64                `json:"error_high_pct,omitempty"`
	Verdict      results.FidelityVerdict `json:"verdict"`
}

// modelled reports whether a lab is a netns datapath model that a
// fidelity run can check (not the host baseline, not a design cnilab does
// not model).
func modelled(l *config.Lab) bool {
	return l.Netns.Model != "" && l.Netns.Model != "none" && l.Netns.Unavailable == ""
}

// BuildKept reduces a run with a fidelity section to the kept summary,
// listing every modelled lab of the definitions: measured ones with their
// verdicts, the others unverified with the reason.
func BuildKept(doc *results.Document, set *config.Set) (*Kept, error) {
	// Recomputed from the summaries, so the summary follows this code's
	// rules; a document whose section has no summaries keeps its own.
	fc := Compute(doc)
	if fc == nil {
		fc = doc.Fidelity
	}
	if fc == nil {
		return nil, errors.New("the run has no fidelity section: it did not measure both netns and kind (cnilab compare --provider netns,kind)")
	}
	k := &Kept{Schema: KeptSchema, Date: doc.Run.Started.Format("2006-01-02"), RunID: doc.Run.ID, Kernel: doc.Run.Host.Kernel, CPUs: doc.Run.Host.CPUs,
		Profile: doc.Run.Profile, Seconds: doc.Run.Settings.DurationSeconds, Repeats: doc.Run.Settings.Repeats}
	seen := map[string]bool{}
	for _, l := range fc.Labs {
		kl := KeptLab{Lab: l.Lab, Run: doc.Run.ID, Label: l.Label, Verdict: l.Verdict, MaxAbsErrorPct: math.Round(10*l.MaxAbsErrorPct) / 10}
		for _, r := range fc.Rows {
			if r.Lab == l.Lab {
				kl.Tests = append(kl.Tests, KeptTest{Test: r.Test, Placement: r.Placement, ErrorPct: round1(r.ErrorPct), ErrorLowPct: round1p(r.ErrorLowPct), ErrorHighPct: round1p(r.ErrorHighPct), Verdict: r.Verdict})
			}
		}
		k.Labs = append(k.Labs, kl)
		seen[l.Lab] = true
		v := KeptVersions{Lab: l.Lab}
		if rl, ok := doc.LabOf(l.Lab, RealProvider); ok {
			if sw := rl.Software; sw != nil {
				v.CNIVersion, v.Kubernetes, v.NodeImage, v.CNIImage, v.ImageSource = sw.CNIVersion, sw.Kubernetes, sw.NodeImage, sw.CNIImage, sw.ImageSource
			}
			v.IPerf3Real = rl.IPerf3
		}
		if ml, ok := doc.LabOf(l.Lab, ModelProvider); ok {
			v.IPerf3Model = ml.IPerf3
		}
		k.Versions = append(k.Versions, v)
	}
	for _, u := range fc.Unverified {
		if seen[u.Lab] {
			continue
		}
		seen[u.Lab] = true
		kl := KeptLab{Lab: u.Lab, Run: doc.Run.ID, Verdict: Unverified, Why: u.Why}
		if d, ok := set.Labs[u.Lab]; ok {
			kl.Label = results.Fidelity(d.Netns.Fidelity)
		}
		k.Labs = append(k.Labs, kl)
	}
	for _, name := range set.LabNames() {
		d := set.Labs[name]
		if seen[name] || !modelled(d) {
			continue
		}
		why := "unverified here: not in the fidelity run"
		if d.Kind == nil {
			why = "unverified here: no kind recipe (labs/" + name + ".yaml has no kind: section)"
		}
		k.Labs = append(k.Labs, KeptLab{Lab: name, Label: results.Fidelity(d.Netns.Fidelity), Verdict: Unverified, Why: why})
	}
	sort.Slice(k.Labs, func(i, j int) bool { return k.Labs[i].Lab < k.Labs[j].Lab })
	return k, nil
}

// MergeKept combines summaries of several runs: a lab measured (not
// unverified) in a later run replaces its unverified entry from an earlier
// one; otherwise the first run's entry stays. The date, kernel and
// settings at the top are the first run's; Runs lists them all.
func MergeKept(ks []*Kept) *Kept {
	if len(ks) == 0 {
		return nil
	}
	out := *ks[0]
	out.Labs = slices.Clone(ks[0].Labs)
	out.Versions = slices.Clone(ks[0].Versions)
	if len(ks) == 1 {
		return &out
	}
	for _, k := range ks {
		out.Runs = append(out.Runs, KeptRun{ID: k.RunID, Date: k.Date, Kernel: k.Kernel, Profile: k.Profile, Seconds: k.Seconds, Repeats: k.Repeats})
	}
	for _, k := range ks[1:] {
		for _, l := range k.Labs {
			i := slices.IndexFunc(out.Labs, func(o KeptLab) bool { return o.Lab == l.Lab })
			switch {
			case i < 0:
				out.Labs = append(out.Labs, l)
			case out.Labs[i].Verdict == Unverified && l.Verdict != Unverified:
				out.Labs[i] = l
				out.Versions = slices.DeleteFunc(out.Versions, func(v KeptVersions) bool { return v.Lab == l.Lab })
				for _, v := range k.Versions {
					if v.Lab == l.Lab {
						out.Versions = append(out.Versions, v)
					}
				}
			}
		}
	}
	sort.Slice(out.Labs, func(i, j int) bool { return out.Labs[i].Lab < out.Labs[j].Lab })
	sort.Slice(out.Versions, func(i, j int) bool { return out.Versions[i].Lab < out.Versions[j].Lab })
	return &out
}

func round1(v float64) float64 { return math.Round(10*v) / 10 }

func round1p(v *float64) *float64 {
	if v == nil {
		return nil
	}
	r := round1(*v)
	return &r
}

// WriteKept writes the summary as indented JSON.
func WriteKept(path string, k *Kept) error {
	data, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// Embedded is the kept summary this binary was built with
// (reports/fidelity/summary.json).
func Embedded() (*Kept, error) {
	return parseKept(kept.Summary, "reports/fidelity/summary.json")
}

// CheckedMetric is the figure the fidelity check compares for a test:
// the p50 latency for the latency tests, the throughput for the others.
func CheckedMetric(test string) string {
	switch test {
	case "drr", "dcrr", "srr", "scrr":
		return results.LatencyP50
	}
	return results.ThroughputBps
}

// ReadKept reads a kept summary.
func ReadKept(path string) (*Kept, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseKept(data, path)
}

func parseKept(data []byte, name string) (*Kept, error) {
	var k Kept
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if k.Schema != KeptSchema {
		return nil, fmt.Errorf("%s: schema %q, want %q", name, k.Schema, KeptSchema)
	}
	return &k, nil
}

// ReadmeFidelity reads README.md's labs table (| lab | how it is built |
// fidelity here |): the fidelity cell per lab; a row naming several labs
// ("cilium / cilium-native") gives each the same cell.
func ReadmeFidelity(readme string) map[string]string {
	out := map[string]string{}
	in := false
	for _, line := range strings.Split(readme, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case len(cells) == 3 && cells[0] == "lab" && cells[2] == "fidelity here":
			in = true
			continue
		case !in:
			continue
		case !strings.HasPrefix(strings.TrimSpace(line), "|"):
			in = false
			continue
		case len(cells) != 3 || strings.HasPrefix(cells[0], "---"):
			continue
		}
		for _, name := range strings.Split(cells[0], "/") {
			out[strings.TrimSpace(name)] = cells[2]
		}
	}
	return out
}

// CheckLabels says where README's fidelity column (readme: lab → cell) and
// the labels of labs/*.yaml (labels: lab → netns fidelity) disagree with
// the kept summary:
//   - every modelled lab is in the summary, and README has a row for it
//     whose fidelity cell starts with the lab's label;
//   - a model whose verdict is differs is labelled approximate, and README
//     says "differs" with its largest error ("23 %");
//   - README says "holds", "undecided" or "unverified here" where the
//     summary does.
func CheckLabels(k *Kept, labels map[string]string, readme map[string]string) []error {
	var errs []error
	inKept := map[string]bool{}
	for _, l := range k.Labs {
		inKept[l.Lab] = true
		label, ok := labels[l.Lab]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: in the kept summary but no netns model in labs/%s.yaml", l.Lab, l.Lab))
			continue
		}
		cell, ok := readme[l.Lab]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: README's labs table has no row for it", l.Lab))
			continue
		}
		if !strings.HasPrefix(cell, label) {
			errs = append(errs, fmt.Errorf("%s: README says %q, labs/%s.yaml says %s", l.Lab, cell, l.Lab, label))
		}
		switch l.Verdict {
		case results.FidelityDiffers:
			if label != string(results.Approximate) {
				errs = append(errs, fmt.Errorf("%s: the model differs from the real CNI (largest error %.0f %%) but labs/%s.yaml calls it %s: fix the model or label it approximate", l.Lab, l.MaxAbsErrorPct, l.Lab, label))
			}
			if want := fmt.Sprintf("%.0f %%", l.MaxAbsErrorPct); !strings.Contains(cell, "differs") || !strings.Contains(cell, want) {
				errs = append(errs, fmt.Errorf("%s: README's cell %q does not say it differs by up to %s", l.Lab, cell, want))
			}
		case results.FidelityHolds:
			if !strings.Contains(cell, "holds") {
				errs = append(errs, fmt.Errorf("%s: the kept run says the model holds; README's cell %q does not", l.Lab, cell))
			}
		case Unverified:
			if !strings.Contains(cell, "unverified here") {
				errs = append(errs, fmt.Errorf("%s: %s; README's cell %q does not say so", l.Lab, l.Why, cell))
			}
		default:
			if !strings.Contains(cell, "undecided") {
				errs = append(errs, fmt.Errorf("%s: the kept run could not decide (noise); README's cell %q does not say so", l.Lab, cell))
			}
		}
	}
	var names []string
	for n := range labels {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if !inKept[n] {
			errs = append(errs, fmt.Errorf("%s: labelled %s in labs/%s.yaml, but no kept fidelity run covers it", n, labels[n], n))
		}
	}
	return errs
}

// Labels are the netns fidelity labels of the modelled labs.
func Labels(set *config.Set) map[string]string {
	out := map[string]string{}
	for name, d := range set.Labs {
		if modelled(d) {
			out[name] = d.Netns.Fidelity
		}
	}
	return out
}
