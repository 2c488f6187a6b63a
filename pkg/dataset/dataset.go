// Package dataset is cnilab's format for published benchmark figures
// (reports/published/*.yaml, schema cnilab.dataset/v1): per CNI variant and
// test, the aggregated figures the source published or that its raw data
// supports, with the source's addresses, commit and aggregation rule, so
// every figure can be shown with its attribution. rank reads these files the
// same way it reads a cnilab results document.
package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cnilab/cnilab/pkg/config"
)

// Schema is the version tag of a dataset file.
const Schema = "cnilab.dataset/v1"

// Dataset is one published benchmark edition.
type Dataset struct {
	Schema string `yaml:"schema"`
	// Name is what --published takes (infrabuilder-2024).
	Name  string `yaml:"name"`
	Title string `yaml:"title"`
	// GeneratedBy is the command that regenerates the file.
	GeneratedBy string   `yaml:"generated_by,omitempty"`
	Sources     []Source `yaml:"sources"`
	// Setup describes the machines and network the figures come from.
	Setup string `yaml:"setup"`
	// Aggregation says, per metric, how the runs were combined, in the
	// source's own way (2024: max of 3 runs for bandwidth; 2020: mean).
	Aggregation map[string]string `yaml:"aggregation"`
	// Attribution is the short label printed next to every figure, e.g.
	// "published: infrabuilder-2024, max of 3 runs".
	Attribution string `yaml:"attribution"`
	// Notes are caveats a reader needs (CPU is user+system only, ...).
	Notes []string `yaml:"notes,omitempty"`
	// Baseline names the no-CNI variant, if any (bare metal).
	Baseline string `yaml:"baseline,omitempty"`
	// TestMap records renamed tests: dataset test id -> source test id.
	TestMap  map[string]string `yaml:"test_map,omitempty"`
	Variants []Variant         `yaml:"variants"`

	// File is where the dataset was read from (set by Parse).
	File string `yaml:"-"`
}

// Source is one address the figures come from.
type Source struct {
	ID     string `yaml:"id"`
	What   string `yaml:"what"`
	URL    string `yaml:"url"`
	Commit string `yaml:"commit,omitempty"`
}

// Variant is one CNI configuration the source measured.
type Variant struct {
	// Name is the source's id for the variant (calico-ebpf-wg).
	Name string `yaml:"name"`
	// CNI is the CNI project, matching labs/*.yaml cni (kube-router, ...).
	CNI     string `yaml:"cni"`
	Version string `yaml:"version,omitempty"`
	// Options are the settings that make the variant (eBPF, no Hubble ...).
	Options string `yaml:"options,omitempty"`
	// Encryption is none, wireguard, ipsec or another scheme's name.
	Encryption string `yaml:"encryption"`
	// Services is the service proxy the variant ran (kube-proxy iptables,
	// ebpf, ipvs, vpp) where the source says.
	Services string `yaml:"services,omitempty"`
	PodMTU   int    `yaml:"pod_mtu,omitempty"`
	// NetworkPolicy is the source's functional NetworkPolicy test result.
	NetworkPolicy *PolicyResult `yaml:"network_policy,omitempty"`
	Runs          int           `yaml:"runs"`
	Tests         []TestFigures `yaml:"tests"`
}

// PolicyResult is the outcome of a NetworkPolicy ingress/egress test.
type PolicyResult struct {
	Ingress string `yaml:"ingress"`
	Egress  string `yaml:"egress"`
}

// Enforced reports whether both directions were enforced.
func (p *PolicyResult) Enforced() bool {
	return p != nil && p.Ingress == "yes" && p.Egress == "yes"
}

// TestFigures are the aggregated figures of one test. Metric names are the
// ones of pkg/results, plus mem_overhead_bytes.
type TestFigures struct {
	Test             string `yaml:"test"`
	ThroughputBps    *Num   `yaml:"throughput_bps,omitempty"`
	Retransmits      *Num   `yaml:"retransmits,omitempty"`
	UDPLossPct       *Num   `yaml:"udp_loss_pct,omitempty"`
	UDPJitterMs      *Num   `yaml:"udp_jitter_ms,omitempty"`
	CPUCores         *Num   `yaml:"cpu_cores,omitempty"`
	MCPUPerGbit      *Num   `yaml:"mcpu_per_gbit,omitempty"`
	MemUsedBytes     *Num   `yaml:"mem_used_bytes,omitempty"`
	MemOverheadBytes *Num   `yaml:"mem_overhead_bytes,omitempty"`
	// RunsWithResult counts the runs that produced a bandwidth figure (or,
	// for idle, any figure); failed runs are left out of every aggregate.
	RunsWithResult int `yaml:"runs_with_result"`
}

// MemOverheadBytes is host used memory minus the bare-metal baseline's.
const MemOverheadBytes = "mem_overhead_bytes"

// Metrics returns the figures as metric name -> value.
func (t TestFigures) Metrics() map[string]float64 {
	m := map[string]float64{}
	put := func(name string, n *Num) {
		if n != nil {
			m[name] = float64(*n)
		}
	}
	put("throughput_bps", t.ThroughputBps)
	put("retransmits", t.Retransmits)
	put("udp_loss_pct", t.UDPLossPct)
	put("udp_jitter_ms", t.UDPJitterMs)
	put("cpu_cores", t.CPUCores)
	put("mcpu_per_gbit", t.MCPUPerGbit)
	put("mem_used_bytes", t.MemUsedBytes)
	put(MemOverheadBytes, t.MemOverheadBytes)
	return m
}

// Num is a figure. It is written in plain decimal notation so the YAML
// reads like the source's tables.
type Num float64

// MarshalYAML writes the number without an exponent.
func (n Num) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatFloat(float64(n), 'f', -1, 64)}, nil
}

// Tests the dataset format accepts: the 2024 ids (design §5).
var Tests = config.Tests

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)

// Parse decodes and validates a dataset. Errors are config.Errors naming
// file, line and field, so a bad --dataset exits with code 2.
func Parse(file string, data []byte) (*Dataset, error) {
	var d Dataset
	doc, err := config.DecodeStrict(file, data, &d)
	if err != nil {
		return nil, err
	}
	d.File = file
	var errs config.Errors
	bad := func(msg string, keys ...string) {
		errs = append(errs, config.Error{File: file, Line: doc.Line(keys...), Field: strings.Join(keys, "."), Msg: msg})
	}
	if d.Schema != Schema {
		bad(fmt.Sprintf("%q, want %q", d.Schema, Schema), "schema")
	}
	if !nameRE.MatchString(d.Name) {
		bad(fmt.Sprintf("%q is not a dataset name (lower case letters, digits, '.', '-')", d.Name), "name")
	}
	if len(d.Sources) == 0 {
		bad("a dataset names at least one source (figures need attribution)", "sources")
	}
	for i, s := range d.Sources {
		if !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") {
			bad(fmt.Sprintf("%q is not a URL", s.URL), "sources", strconv.Itoa(i), "url")
		}
	}
	if strings.TrimSpace(d.Attribution) == "" {
		bad("missing: every figure is printed with it", "attribution")
	}
	if len(d.Variants) == 0 {
		bad("no variants", "variants")
	}
	seen := map[string]bool{}
	for i, v := range d.Variants {
		at := func(keys ...string) []string { return append([]string{"variants", strconv.Itoa(i)}, keys...) }
		if !nameRE.MatchString(v.Name) {
			bad(fmt.Sprintf("%q is not a variant name", v.Name), at("name")...)
		}
		if seen[v.Name] {
			bad(fmt.Sprintf("variant %q listed twice", v.Name), at("name")...)
		}
		seen[v.Name] = true
		if v.CNI == "" {
			bad("missing", at("cni")...)
		}
		if v.Encryption == "" {
			bad("missing (none, wireguard, ipsec, ...)", at("encryption")...)
		}
		if p := v.NetworkPolicy; p != nil {
			for _, dir := range []struct{ k, v string }{{"ingress", p.Ingress}, {"egress", p.Egress}} {
				if dir.v != "yes" && dir.v != "no" {
					bad(fmt.Sprintf("%q, want yes or no", dir.v), at("network_policy", dir.k)...)
				}
			}
		}
		tests := map[string]bool{}
		for j, t := range v.Tests {
			tat := func(keys ...string) []string { return append(at("tests", strconv.Itoa(j)), keys...) }
			if !slices.Contains(Tests, t.Test) {
				bad(fmt.Sprintf("unknown test %q (known: %s)", t.Test, strings.Join(Tests, ", ")), tat("test")...)
			}
			if tests[t.Test] {
				bad(fmt.Sprintf("test %q listed twice", t.Test), tat("test")...)
			}
			tests[t.Test] = true
			for name, val := range t.Metrics() {
				if math.IsNaN(val) || math.IsInf(val, 0) {
					bad("not a number", tat(name)...)
				} else if val < 0 && name != MemOverheadBytes {
					bad(fmt.Sprintf("%v is negative", val), tat(name)...)
				}
			}
			if t.UDPLossPct != nil && *t.UDPLossPct > 100 {
				bad(fmt.Sprintf("%v %% is over 100", float64(*t.UDPLossPct)), tat("udp_loss_pct")...)
			}
		}
	}
	if d.Baseline != "" && !seen[d.Baseline] {
		bad(fmt.Sprintf("baseline %q is not a variant", d.Baseline), "baseline")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &d, nil
}

// ReadFile reads and validates a dataset file.
func ReadFile(path string) (*Dataset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Load reads NAME.yaml from fsys (the embedded reports/published).
func Load(fsys fs.FS, name string) (*Dataset, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("%q is not a dataset name", name)
	}
	data, err := fs.ReadFile(fsys, name+".yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no published dataset %q (known: %s)", name, strings.Join(Names(fsys), ", "))
	}
	if err != nil {
		return nil, err
	}
	return Parse("reports/published/"+name+".yaml", data)
}

// Names lists the datasets in fsys: every *.yaml whose schema is a dataset's.
func Names(fsys fs.FS) []string {
	files, _ := fs.Glob(fsys, "*.yaml")
	var names []string
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err == nil && bytes.Contains(data, []byte("schema: "+Schema)) {
			names = append(names, strings.TrimSuffix(f, ".yaml"))
		}
	}
	return names
}

// Variant returns the variant with that name.
func (d *Dataset) Variant(name string) (*Variant, bool) {
	for i := range d.Variants {
		if d.Variants[i].Name == name {
			return &d.Variants[i], true
		}
	}
	return nil, false
}

// Figures returns the figures of one test.
func (v *Variant) Figures(test string) (TestFigures, bool) {
	for _, t := range v.Tests {
		if t.Test == test {
			return t, true
		}
	}
	return TestFigures{}, false
}
