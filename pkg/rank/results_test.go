package rank

import (
	"strconv"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

// scaleDoc is a results document with services-scale summaries: lookup
// latency, add-one time and rules per endpoint per proxy and size.
func scaleDoc(iptLookup, ebpfLookup, iptAddOne []float64, rulesPerEP float64) *results.Document {
	doc := &results.Document{Schema: results.Schema, Run: results.Run{ID: "r1", Provider: "netns"},
		Labs: []results.Lab{
			{Name: "host", CNI: "host", Status: results.StatusOK},
			{Name: "flannel", CNI: "flannel", Status: results.StatusOK, Services: "iptables", Provider: "netns", Fidelity: results.Faithful},
			{Name: "cilium", CNI: "cilium", Status: results.StatusOK, Services: "ebpf", Provider: "netns", Fidelity: results.Approximate},
			{Name: "antrea", CNI: "antrea", Status: results.StatusUnavailable, Error: "not modelled in netns: needs CONFIG_OPENVSWITCH"},
		}}
	sizes := []int{100, 1000, 10000}
	add := func(lab, proxy, metric string, vals []float64) {
		for i, v := range vals {
			doc.Summaries = append(doc.Summaries, results.Summary{Lab: lab, Scenario: "services-scale", Test: "scale",
				Params: map[string]string{"services": strconv.Itoa(sizes[i]), "proxy": proxy}, Metric: metric, Median: v, N: 5,
				Provider: "netns", Fidelity: results.Faithful})
		}
	}
	add("flannel", "iptables", results.FirstPacketP50, iptLookup)
	add("cilium", "ebpf", results.FirstPacketP50, ebpfLookup)
	add("flannel", "iptables", results.AddOneSeconds, iptAddOne)
	add("flannel", "iptables", results.RulesPerEP, []float64{rulesPerEP})
	return doc
}

func TestStatementClaims(t *testing.T) {
	defs, _ := loadReal(t)
	cases := []struct {
		name, id string
		doc      *results.Document
		verdict  string
	}{
		{"C8 iptables grows, ebpf flat", "C8", scaleDoc([]float64{50, 120, 900}, []float64{40, 41, 43}, []float64{0.1, 0.9, 9}, 6), Reproduced},
		{"C8 ebpf grows too", "C8", scaleDoc([]float64{50, 120, 900}, []float64{40, 80, 160}, []float64{0.1, 0.9, 9}, 6), Contradicted},
		{"C8 iptables flat", "C8", scaleDoc([]float64{50, 52, 55}, []float64{40, 41, 43}, []float64{0.1, 0.9, 9}, 6), Contradicted},
		{"C9 add-one grows with the table", "C9", scaleDoc([]float64{50, 120, 900}, []float64{40, 41, 43}, []float64{0.1, 0.9, 9}, 6), Reproduced},
		{"C9 add-one constant", "C9", scaleDoc([]float64{50, 120, 900}, []float64{40, 41, 43}, []float64{0.1, 0.11, 0.12}, 6), Contradicted},
		{"C10 six rules per endpoint", "C10", scaleDoc([]float64{50, 120, 900}, []float64{40, 41, 43}, []float64{0.1, 0.9, 9}, 6), Reproduced},
		{"C10 three rules per endpoint", "C10", scaleDoc([]float64{50, 120, 900}, []float64{40, 41, 43}, []float64{0.1, 0.9, 9}, 3), Contradicted},
		{"C8 without services-scale", "C8", &results.Document{Schema: results.Schema, Run: results.Run{ID: "r2"}}, Untestable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := verdict(t, defs, FromResults(tc.doc, defs.Facts), tc.id)
			if got.Verdict != tc.verdict {
				t.Errorf("verdict %s (%s), want %s; evidence %v", got.Verdict, got.Reason, tc.verdict, got.Evidence)
			}
		})
	}
}

func throughputDoc(ebpfService, iptService float64) *results.Document {
	doc := scaleDoc([]float64{1, 2}, []float64{1, 1}, []float64{1, 2}, 6)
	put := func(lab, test string, v float64) {
		doc.Summaries = append(doc.Summaries, results.Summary{Lab: lab, Scenario: "throughput", Test: test,
			Metric: results.ThroughputBps, Median: v, N: 3, Provider: "netns", Fidelity: results.Faithful})
	}
	put("cilium", "dts", 10e9)
	put("cilium", "sts", ebpfService)
	put("flannel", "dts", 10e9)
	put("flannel", "sts", iptService)
	put("host", "idle", 0)
	// Idle memory means something only where CNI agents run (kind).
	doc.Run.Provider = "kind"
	doc.Summaries = append(doc.Summaries,
		results.Summary{Lab: "host", Test: "idle", Metric: results.MemUsedBytes, Median: 1000e6, N: 3, Provider: "netns", Fidelity: results.Faithful},
		results.Summary{Lab: "flannel", Test: "idle", Metric: results.MemUsedBytes, Median: 1150e6, N: 3, Provider: "netns", Fidelity: results.Faithful})
	return doc
}

func TestServicePathClaimAndResultsInput(t *testing.T) {
	defs, _ := loadReal(t)
	if got := verdict(t, defs, FromResults(throughputDoc(9.9e9, 8e9), defs.Facts), "C11"); got.Verdict != Reproduced {
		t.Errorf("C11 with a 1%% eBPF service penalty vs 20%% iptables: %s (%s)", got.Verdict, got.Reason)
	}
	if got := verdict(t, defs, FromResults(throughputDoc(7e9, 8e9), defs.Facts), "C11"); got.Verdict != Contradicted {
		t.Errorf("C11 with a 30%% eBPF service penalty: %s (%s)", got.Verdict, got.Reason)
	}

	in := FromResults(throughputDoc(9.9e9, 8e9), defs.Facts)
	if len(in.Candidates) != 2 {
		t.Fatalf("candidates %d, want flannel and cilium (host is the baseline, antrea unavailable)", len(in.Candidates))
	}
	if !strings.Contains(strings.Join(in.Notes, "\n"), "antrea") {
		t.Errorf("the unavailable lab is not reported: %v", in.Notes)
	}
	var flannel *Candidate
	for _, c := range in.Candidates {
		if c.Name == "flannel" {
			flannel = c
		}
	}
	ov, ok := flannel.Metric("idle", "mem_overhead_bytes")
	if !ok || ov.V != 150e6 || !strings.Contains(ov.Source, "netns, faithful") {
		t.Errorf("memory overhead against the host baseline: %+v %v", ov, ok)
	}
	// In the netns model no agent runs: idle figures are the machine's and
	// are left out, with a note.
	nd := throughputDoc(9.9e9, 8e9)
	for i := range nd.Labs {
		nd.Labs[i].NoFootprint = "no CNI agent runs in the netns datapath model"
	}
	nin := FromResults(nd, defs.Facts)
	for _, c := range nin.Candidates {
		if _, ok := c.Metric("idle", results.MemUsedBytes); ok {
			t.Errorf("%s: netns idle memory used for ranking", c.Name)
		}
	}
	if !strings.Contains(strings.Join(nin.Notes, "\n"), "no CNI agent") {
		t.Errorf("no note about netns idle figures: %v", nin.Notes)
	}
	// A gap inside the runs' noise is no evidence of a per-packet cost: with
	// tight intervals that contradicts the claim, with loose ones nothing
	// can be said.
	for _, tc := range []struct {
		spread  float64
		verdict string
	}{{0.01, Contradicted}, {0.1, Untestable}} {
		noisy := throughputDoc(9.95e9, 9.9e9)
		for i := range noisy.Summaries {
			if s := &noisy.Summaries[i]; s.Metric == results.ThroughputBps {
				s.CI95Low, s.CI95High = s.Median*(1-tc.spread), s.Median*(1+tc.spread)
			}
		}
		if got := verdict(t, defs, FromResults(noisy, defs.Facts), "C11"); got.Verdict != tc.verdict || !strings.Contains(got.Reason, "noise") {
			t.Errorf("C11 with ±%.0f%% intervals and no gap: %s (%s), want %s", 100*tc.spread, got.Verdict, got.Reason, tc.verdict)
		}
	}
	// The large-scale environment reads the services-scale figures.
	r := Rank(in, env(t, defs, "large-scale"))
	for _, w := range r.Weights {
		if strings.HasPrefix(w.Criterion, "service first-packet") && w.Skipped != "" {
			t.Errorf("services-scale criterion skipped: %s", w.Skipped)
		}
	}
}

func TestAppendRunReport(t *testing.T) {
	var b strings.Builder
	if err := AppendRunReport(&b, throughputDoc(9.9e9, 8e9)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"## CNI ranking: cnilab run r1",
		"### edge",
		"## Published claims",
		"| claim | this run | infrabuilder-2020 | infrabuilder-2024 |",
		"| C1 edge: kube-router, then Flannel, Canal | **untestable**",
		"| C11 eBPF avoids the per-packet stack traversal cost | **reproduced**",
		"netns, faithful, median of 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// services-scale measures proxies, not CNI labs: each lab takes the figures
// of the proxy backend it runs, the median over the real service's
// placements. An iptables-nft lab gets only iptables-nft figures, whether
// it is a netns lab or a kind lab running kube-proxy on iptables-nft; a
// lab that records a bare "iptables" (or an older kind lab's "kube-proxy
// iptables") gets none.
func TestScaleFiguresFollowTheLabsBackend(t *testing.T) {
	defs, _ := loadReal(t)
	doc := &results.Document{Schema: results.Schema, Run: results.Run{ID: "r", Provider: "netns"},
		Labs: []results.Lab{
			{Name: "flannel", CNI: "flannel", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK, Services: "iptables-nft"},
			{Name: "calico", CNI: "calico", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK, Services: "iptables-legacy"},
			{Name: "cilium", CNI: "cilium", Provider: "netns", Fidelity: results.Approximate, Status: results.StatusOK, Services: "ebpf"},
			{Name: "canal", CNI: "canal", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK, Services: "iptables"},
			// kind labs record kube-proxy with its backend.
			{Name: "flannel-kind", CNI: "flannel", Provider: "kind", Fidelity: results.Real, Status: results.StatusOK, Services: "kube-proxy iptables-nft"},
			{Name: "kube-router-kind", CNI: "kube-router", Provider: "kind", Fidelity: results.Real, Status: results.StatusOK, Services: "kube-proxy iptables-legacy"},
			{Name: "weave-kind", CNI: "weave", Provider: "kind", Fidelity: results.Real, Status: results.StatusOK, Services: "kube-proxy iptables"},
		}}
	put := func(proxy string, params map[string]string, vals []float64) {
		for i, v := range vals {
			p := map[string]string{"services": "10000"}
			for k, x := range params {
				p[k] = x
			}
			doc.Summaries = append(doc.Summaries, results.Summary{Lab: "services-scale", Scenario: "services-scale", Test: "first-packet",
				Placement: []string{"first", "middle", "last"}[i], Proxy: proxy, Params: p,
				Metric: results.FirstPacketP50, Median: v, N: 2, Provider: "netns", Fidelity: results.Faithful})
		}
	}
	put("iptables-nft", nil, []float64{70, 80, 90})
	// An older result: the proxy is "iptables", the binaries a parameter.
	put("iptables", map[string]string{"iptables": "iptables-legacy"}, []float64{7, 8, 9})
	put("ebpf", nil, []float64{19, 20, 21})
	in := FromResults(doc, defs.Facts)
	want := map[string]float64{"flannel": 80, "calico": 8, "cilium": 20, "flannel-kind": 80, "kube-router-kind": 8}
	for _, c := range in.Candidates {
		p, ok := c.scaleMetric(results.FirstPacketP50, "max")
		w, wantOK := want[c.Name]
		if ok != wantOK || p.Value.V != w || (ok && !strings.Contains(p.Value.Source, "measured by services-scale")) {
			t.Errorf("%s (%s): %+v %v, want %v from its own backend", c.Name, c.Services, p, ok, w)
		}
		for _, q := range c.scale {
			if q.Proxy != strings.TrimPrefix(c.Services, "kube-proxy ") {
				t.Errorf("%s runs %s but got a %s figure", c.Name, c.Services, q.Proxy)
			}
		}
	}
	if !strings.Contains(strings.Join(in.Notes, "\n"), `lab canal records its service proxy as "iptables" without the backend`) {
		t.Errorf("no note about canal's bare iptables: %v", in.Notes)
	}
	if !strings.Contains(strings.Join(in.Notes, "\n"), `lab weave-kind records its service proxy as "kube-proxy iptables" without the backend`) {
		t.Errorf("no note about an older kind lab's bare kube-proxy iptables: %v", in.Notes)
	}
}
