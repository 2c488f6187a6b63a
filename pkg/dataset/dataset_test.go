package dataset

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/config"
)

// csvDir is shared/published-benchmarks beside the repository (the layout
// of the workspace and of CI: ../shared from the repository root).
const csvDir = "../../../shared/published-benchmarks"

func needCSV(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(csvDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("raw CSV not available (%v): the generated datasets cannot be checked against it here", err)
	}
	return p
}

// The committed files are exactly what the generator makes from the CSVs:
// regenerating is one command and nobody edited the figures by hand.
func TestCommittedDatasetsAreRegenerable(t *testing.T) {
	for _, ed := range []struct {
		csv, yaml string
		gen       func(r *os.File) (*Dataset, error)
	}{
		{"infrabuilder-2024-runs.csv", "infrabuilder-2024.yaml", func(r *os.File) (*Dataset, error) { return Generate2024(r) }},
		{"infrabuilder-2020-runs.csv", "infrabuilder-2020.yaml", func(r *os.File) (*Dataset, error) { return Generate2020(r) }},
	} {
		t.Run(ed.yaml, func(t *testing.T) {
			f, err := os.Open(needCSV(t, ed.csv))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d, err := ed.gen(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("../../reports/published", ed.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("reports/published/%s differs from what %s makes of %s; regenerate it", ed.yaml, GenerateCommand, ed.csv)
			}
		})
	}
}

// readRuns loads a CSV independently of the generator's own reader.
func readRuns(t *testing.T, name string) []map[string]string {
	t.Helper()
	f, err := os.Open(needCSV(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func load(t *testing.T, name string) *Dataset {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../reports/published", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(name+".yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Every bandwidth in the YAML is the source's aggregate of the CSV's runs:
// 2024 the max of the runs, 2020 the mean.
func TestThroughputMatchesCSV(t *testing.T) {
	cases := []struct {
		csv, dataset, col string
		scale             float64
		agg               func([]float64) float64
		testName          func(string) string
	}{
		{"infrabuilder-2024-runs.csv", "infrabuilder-2024", "bw_bps", 1, func(v []float64) float64 {
			m := v[0]
			for _, x := range v {
				m = math.Max(m, x)
			}
			return m
		}, func(s string) string { return s }},
		{"infrabuilder-2020-runs.csv", "infrabuilder-2020", "bw_mbit_s", 1e6, func(v []float64) float64 {
			s := 0.0
			for _, x := range v {
				s += x
			}
			return s / float64(len(v))
		}, func(s string) string {
			return map[string]string{"idle": "idle", "p2p_tcp": "dts", "p2p_udp": "dus", "p2s_tcp": "sts", "p2s_udp": "sus"}[s]
		}},
	}
	for _, tc := range cases {
		t.Run(tc.dataset, func(t *testing.T) {
			rows := readRuns(t, tc.csv)
			d := load(t, tc.dataset)
			runs := map[[2]string][]float64{}
			for _, r := range rows {
				if r[tc.col] == "" {
					continue
				}
				v, err := strconv.ParseFloat(r[tc.col], 64)
				if err != nil {
					t.Fatal(err)
				}
				k := [2]string{r["variant"], tc.testName(r["test"])}
				runs[k] = append(runs[k], v*tc.scale)
			}
			checked := 0
			for k, vs := range runs {
				v, ok := d.Variant(k[0])
				if !ok {
					t.Errorf("variant %s missing from the dataset", k[0])
					continue
				}
				fig, ok := v.Figures(k[1])
				if !ok || fig.ThroughputBps == nil {
					t.Errorf("%s %s: no throughput in the dataset", k[0], k[1])
					continue
				}
				if want := tc.agg(vs); math.Abs(float64(*fig.ThroughputBps)-want) > 0.5 {
					t.Errorf("%s %s: throughput %v, CSV aggregate %v", k[0], k[1], float64(*fig.ThroughputBps), want)
				}
				checked++
			}
			if checked < 100 {
				t.Errorf("only %d figures checked", checked)
			}
		})
	}
}

// Spot checks against the tables of reference/published-benchmarks.md,
// which were derived separately from the same raw data.
func TestFiguresMatchReferenceTables(t *testing.T) {
	d24, d20 := load(t, "infrabuilder-2024"), load(t, "infrabuilder-2020")
	cases := []struct {
		d             *Dataset
		variant, test string
		metric        string
		scale, want   float64
		decimals      int
		from          string
	}{
		{d24, "calico-ebpf", "dts", "throughput_bps", 1e-9, 27.18, 2, "Table 2024-A"},
		{d24, "calico-vpp", "dtm", "throughput_bps", 1e-9, 12.10, 2, "Table 2024-A"},
		{d24, "cilium", "sum", "throughput_bps", 1e-9, 38.64, 2, "Table 2024-A"},
		{d24, "calico-wg", "dts", "cpu_cores", 1, 2.787, 3, "Table 2024-D"},
		{d24, "kuberouter-all", "idle", "cpu_cores", 1, 0.022, 3, "Table 2024-D"},
		{d24, "cilium", "dum", "mcpu_per_gbit", 1, 84.5, 1, "Table 2024-E"},
		{d24, "kuberouter-all", "idle", MemOverheadBytes, 1e-6, 201, 0, "Table 2024-F"},
		{d24, "flannel", "idle", MemOverheadBytes, 1e-6, 212, 0, "Table 2024-F"},
		{d24, "calico-vpp", "idle", MemOverheadBytes, 1e-6, 1333, 0, "Table 2024-F"},
		// Table 2024-H truncates: the mean of 596428, 732479 and 490475 is 606460.7.
		{d24, "kuberouter", "dtm", "retransmits", 1, 606461, 0, "Table 2024-H"},
		{d20, "doc-weavenet.u18.04-default", "dts", "throughput_bps", 1e-6, 4880, 0, "Table 2020-A"},
		{d20, "tuning-calico-3.16-mtu-encryption.u18.04-default", "dts", "throughput_bps", 1e-6, 9786, 0, "Table 2020-A"},
		{d20, "tuning-weavenet-mtu-encryption.u18.04-default", "dus", "throughput_bps", 1e-6, 432, 0, "Table 2020-A"},
	}
	for _, tc := range cases {
		v, ok := tc.d.Variant(tc.variant)
		if !ok {
			t.Errorf("%s: no variant %s", tc.d.Name, tc.variant)
			continue
		}
		fig, _ := v.Figures(tc.test)
		got, ok := fig.Metrics()[tc.metric]
		if !ok {
			t.Errorf("%s %s %s: missing", tc.variant, tc.test, tc.metric)
			continue
		}
		p := math.Pow(10, float64(tc.decimals))
		if r := math.Round(got*tc.scale*p) / p; r != tc.want {
			t.Errorf("%s %s %s = %v, %s says %v", tc.variant, tc.test, tc.metric, r, tc.from, tc.want)
		}
	}
	if v, _ := d24.Variant("flannel"); v.NetworkPolicy.Enforced() {
		t.Error("2024 flannel NetworkPolicy test recorded as enforced")
	}
	if v, _ := d20.Variant("doc-weavenet.u18.04-default"); v.CNI != "weave" || !v.NetworkPolicy.Enforced() {
		t.Errorf("2020 weave variant: cni %q, policy %+v", v.CNI, v.NetworkPolicy)
	}
	if v, _ := d20.Variant("tuning-cilium-encryption.u18.04-hwe"); v.Encryption != "ipsec" {
		t.Errorf("2020 cilium encryption variant: encryption %q", v.Encryption)
	}
	if !strings.Contains(strings.Join(d24.Notes, " "), "user+system only") {
		t.Error("the 2024 dataset does not say its CPU is user+system only")
	}
}

func TestMalformedDataset(t *testing.T) {
	const head = "schema: cnilab.dataset/v1\nname: t\nattribution: test data\nsources:\n  - {id: s, what: w, url: https://example.org}\n"
	const variant = "variants:\n  - name: a\n    cni: flannel\n    encryption: none\n    runs: 1\n    tests:\n"
	cases := []struct{ name, yaml, want string }{
		{"syntax", "schema: [x\n", "d.yaml:1: "},
		{"unknown field", head + "colour: red\n" + variant, "d.yaml:6: colour: unknown field"},
		{"wrong schema", strings.Replace(head, "v1", "v9", 1) + variant, "d.yaml:1: schema: \"cnilab.dataset/v9\""},
		{"unknown test", head + variant + "      - test: dtx\n", "d.yaml:12: variants.0.tests.0.test: unknown test \"dtx\""},
		{"negative figure", head + variant + "      - test: dts\n        throughput_bps: -3\n", "d.yaml:13: variants.0.tests.0.throughput_bps: -3 is negative"},
		{"loss over 100", head + variant + "      - test: dus\n        udp_loss_pct: 130\n", "d.yaml:13: variants.0.tests.0.udp_loss_pct: 130 % is over 100"},
		{"bad policy", head + variant + "    network_policy: {ingress: maybe, egress: yes}\n", "d.yaml:12: variants.0.network_policy.ingress: \"maybe\""},
		{"not a number", head + variant + "      - test: dts\n        throughput_bps: fast\n", "d.yaml:13: variants.0.tests.0.throughput_bps: cannot unmarshal"},
		{"no attribution", strings.Replace(head, "attribution: test data\n", "", 1) + variant, "d.yaml:1: attribution: missing"},
		{"duplicate variant", head + variant + "  - name: a\n    cni: flannel\n    encryption: none\n", "d.yaml:12: variants.1.name: variant \"a\" listed twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !config.IsInvalid(err) {
				t.Errorf("%v is not a definition error (exit 2)", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nwant prefix\n  %s", err, tc.want)
			}
		})
	}
}
