package rank

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/facts"
	"github.com/cnilab/cnilab/pkg/results"
)

// withCI builds a candidate with one figure and its interval.
func withCI(cni, test, metric string, v, lo, hi float64) *Candidate {
	c := &Candidate{Name: cni, CNI: cni, Encryption: "none"}
	c.SetMetric(test, metric, Value{V: v, Lo: lo, Hi: hi, Level: 0.75, Source: "test run, median of 3"})
	return c
}

func normalisedOf(t *testing.T, r EnvResult, cni, criterion string) float64 {
	t.Helper()
	e, ok := r.Place(cni)
	if !ok {
		t.Fatalf("%s not ranked", cni)
	}
	for _, ev := range e.Evidence {
		if ev.Criterion == criterion {
			return *ev.Normalized
		}
	}
	t.Fatalf("%s: no %s row", cni, criterion)
	return 0
}

// Ratio to the best, worked out by hand; a weak candidate joining the pool
// leaves the others' values alone (min–max made it the new 0 and pulled
// everyone else up).
func TestRatioNormalisationByHand(t *testing.T) {
	cases := []struct {
		name   string
		cr     Criterion
		figs   map[string]float64
		metric string
		want   map[string]float64
	}{
		{"higher is better: v/best", Criterion{Name: "c", Metric: results.ThroughputBps, Test: "dts", Weight: 1}, map[string]float64{"calico": 12.45e9, "kube-router": 11.10e9}, results.ThroughputBps,
			map[string]float64{"calico": 1, "kube-router": 0.892}},
		{"higher is better, a weak one joins", Criterion{Name: "c", Metric: results.ThroughputBps, Test: "dts", Weight: 1}, map[string]float64{"calico": 12.45e9, "kube-router": 11.10e9, "weave": 1e9}, results.ThroughputBps,
			map[string]float64{"calico": 1, "kube-router": 0.892, "weave": 0.08}},
		{"lower is better: best/v", Criterion{Name: "c", Metric: results.MemUsedBytes, Test: "idle", Weight: 1}, map[string]float64{"flannel": 200e6, "calico": 500e6, "cilium": 800e6}, results.MemUsedBytes,
			map[string]float64{"flannel": 1, "calico": 0.4, "cilium": 0.25}},
		{"UDP loss: delivered share", Criterion{Name: "c", Metric: results.UDPLossPct, Test: "dum", Weight: 1}, map[string]float64{"flannel": 0, "calico": 10, "cilium": 60}, results.UDPLossPct,
			map[string]float64{"flannel": 1, "calico": 0.9, "cilium": 0.4}},
		{"UDP loss, none perfect", Criterion{Name: "c", Metric: results.UDPLossPct, Test: "dum", Weight: 1}, map[string]float64{"flannel": 0.19, "calico": 8.01}, results.UDPLossPct,
			map[string]float64{"flannel": 1, "calico": 0.922}}, // 91.99 / 99.81
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &Input{Name: "t"}
			for cni, v := range tc.figs {
				in.Candidates = append(in.Candidates, cand(cni, cni, map[string]float64{tc.cr.Test + "/" + tc.metric: v}, facts.Capabilities{}))
			}
			r := Rank(in, Environment{Name: "e", Variants: "any", Criteria: []Criterion{tc.cr}})
			for cni, want := range tc.want {
				if got := normalisedOf(t, r, cni, "c"); math.Abs(got-want) > 0.0005 {
					t.Errorf("%s normalised %.3f, want %.3f", cni, got, want)
				}
			}
		})
	}
}

// Places whose deciding figures' intervals overlap are tied: a shared
// place, tied_with, and the figures named in the text and markdown.
func TestTiesFollowIntervals(t *testing.T) {
	thr := Environment{Name: "e", Variants: "any", Criteria: []Criterion{{Name: "single-stream TCP", Metric: results.ThroughputBps, Test: "dts", Weight: 1}}}
	cases := []struct {
		name   string
		cands  []*Candidate
		places map[string]int
		tied   map[string][]string
		line   string // a tie line the text output must hold
	}{
		{"overlapping intervals tie",
			[]*Candidate{withCI("calico", "dts", results.ThroughputBps, 12.45e9, 8.05e9, 15.73e9), withCI("kube-router", "dts", results.ThroughputBps, 11.10e9, 8.77e9, 12.81e9)},
			map[string]int{"calico": 1, "kube-router": 1}, map[string][]string{"calico": {"kube-router"}, "kube-router": {"calico"}},
			"1= calico, kube-router (tied: dts 12.45 [8.05–15.73] vs 11.10 [8.77–12.81] Gbit/s)"},
		{"separated intervals do not",
			[]*Candidate{withCI("calico", "dts", results.ThroughputBps, 12.45e9, 12.2e9, 12.6e9), withCI("kube-router", "dts", results.ThroughputBps, 11.10e9, 10.9e9, 11.3e9)},
			map[string]int{"calico": 1, "kube-router": 2}, nil, ""},
		{"ties chain: a~b, b~c, a and c apart",
			[]*Candidate{withCI("a", "dts", results.ThroughputBps, 10e9, 9.5e9, 10.5e9), withCI("b", "dts", results.ThroughputBps, 9.2e9, 8.6e9, 9.6e9), withCI("c", "dts", results.ThroughputBps, 8.5e9, 8.0e9, 8.9e9), withCI("d", "dts", results.ThroughputBps, 5e9, 4.9e9, 5.1e9)},
			map[string]int{"a": 1, "b": 1, "c": 1, "d": 4}, map[string][]string{"b": {"a", "c"}},
			"1= a, b, c (tied: a vs b: dts 10.00 [9.50–10.50] vs 9.20 [8.60–9.60] Gbit/s; b vs c: dts 9.20 [8.60–9.60] vs 8.50 [8.00–8.90] Gbit/s)"},
		{"published figures without intervals: no tie unless equal",
			[]*Candidate{cand("x", "flannel", map[string]float64{"dts/throughput_bps": 10e9}, facts.Capabilities{}), cand("y", "canal", map[string]float64{"dts/throughput_bps": 9.99e9}, facts.Capabilities{})},
			map[string]int{"flannel": 1, "canal": 2}, nil, ""},
		{"published figures, equal",
			[]*Candidate{cand("x", "flannel", map[string]float64{"dts/throughput_bps": 10e9}, facts.Capabilities{}), cand("y", "canal", map[string]float64{"dts/throughput_bps": 10e9}, facts.Capabilities{})},
			map[string]int{"canal": 1, "flannel": 1}, nil, "1= canal, flannel (tied: equal scores)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Rank(&Input{Name: "t", Candidates: tc.cands}, thr)
			for cni, want := range tc.places {
				if e, _ := r.Place(cni); e.Place != want {
					t.Errorf("%s: place %d, want %d (ranking %+v)", cni, e.Place, want, r.Ranking)
				}
			}
			for cni, want := range tc.tied {
				if e, _ := r.Place(cni); !slices.Equal(e.TiedWith, want) {
					t.Errorf("%s: tied_with %v, want %v", cni, e.TiedWith, want)
				}
			}
			if len(tc.tied) == 0 && tc.line == "" {
				for _, e := range r.Ranking {
					if len(e.TiedWith) > 0 || e.Tie != "" {
						t.Errorf("%s reported tied: %v %q", e.CNI, e.TiedWith, e.Tie)
					}
				}
			}
			rep := &Report{Input: InputInfo{Name: "t", Kind: "results"}, Environments: []EnvResult{r}}
			var text, md strings.Builder
			rep.WriteText(&text)
			rep.WriteMarkdown(&md)
			if tc.line != "" {
				if !strings.Contains(text.String(), tc.line) {
					t.Errorf("text lacks %q:\n%s", tc.line, text.String())
				}
				if !strings.Contains(md.String(), "- "+tc.line) || !strings.Contains(md.String(), "| 1= |") {
					t.Errorf("markdown lacks the tie:\n%s", md.String())
				}
			} else if strings.Contains(text.String(), "tied") {
				t.Errorf("text reports a tie:\n%s", text.String())
			}
		})
	}
}

// With several criteria the score interval decides: a fact worth a few
// points does not split two CNIs whose figures cannot be told apart, and
// a lead the intervals cannot reach is a place of its own.
func TestTiesOverWeightedCriteria(t *testing.T) {
	env := Environment{Name: "e", Variants: "any", Criteria: []Criterion{
		{Name: "thr", Metric: results.ThroughputBps, Test: "dts", Weight: 3},
		{Name: "bgp", Fact: "bgp", Weight: 1},
	}}
	mk := func(cni string, v, lo, hi float64, bgp string) *Candidate {
		c := withCI(cni, "dts", results.ThroughputBps, v, lo, hi)
		c.Facts = facts.Capabilities{BGP: &facts.Fact{Value: bgp, Source: "https://x"}}
		return c
	}
	cases := []struct {
		name string
		a, b *Candidate
		tied bool
	}{
		// a: 3·1 + 0 = 75, interval 3·[0.8,1] → [60, 75]; b: 3·0.9+1 → 92.5, [3·0.72+1, 3·0.99+1]/4 → [79, 99.3]
		{"fact lead, figures apart", mk("a", 10e9, 8e9, 10.5e9, "no"), mk("b", 9e9, 7.2e9, 9.9e9, "yes"), false},
		// a: 75 [3·0.8/4=60, 75]; b: 3·0.7+1 = 77.5 [3·0.5+1=62.5, 3·0.9+1 = 92.5]
		{"fact lead within the figures' noise", mk("a", 10e9, 8e9, 11e9, "no"), mk("b", 7e9, 5e9, 9e9, "yes"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Rank(&Input{Name: "t", Candidates: []*Candidate{tc.a, tc.b}}, env)
			if got := len(r.Ranking[0].TiedWith) > 0; got != tc.tied {
				t.Errorf("tied %v, want %v: %+v", got, tc.tied, r.Ranking)
			}
			for _, e := range r.Ranking {
				if e.ScoreLow > e.Score || e.Score > e.ScoreHigh {
					t.Errorf("%s: score %.2f outside its interval [%.2f, %.2f]", e.CNI, e.Score, e.ScoreLow, e.ScoreHigh)
				}
			}
		})
	}
}

// An ordering claim over two tied CNIs is not decided by the data.
func TestOrderingClaimOnTies(t *testing.T) {
	env := Environment{Name: "e", Variants: "any", Criteria: []Criterion{{Name: "thr", Metric: results.ThroughputBps, Test: "dts", Weight: 1}}}
	in := &Input{Name: "t", Candidates: []*Candidate{
		withCI("calico", "dts", results.ThroughputBps, 12.45e9, 8.05e9, 15.73e9),
		withCI("kube-router", "dts", results.ThroughputBps, 11.10e9, 8.77e9, 12.81e9),
		withCI("flannel", "dts", results.ThroughputBps, 5e9, 4.9e9, 5.1e9),
	}}
	envs := []EnvResult{Rank(in, env)}
	cases := []struct {
		claim   Claim
		verdict string
	}{
		{Claim{Kind: "ordering", Environment: "e", Match: "relative", Order: []string{"kube-router", "calico"}}, Untestable},
		{Claim{Kind: "ordering", Environment: "e", Match: "relative", Order: []string{"calico", "kube-router", "flannel"}}, Untestable},
		{Claim{Kind: "ordering", Environment: "e", Match: "relative", Order: []string{"flannel", "calico"}}, Contradicted},
		{Claim{Kind: "ordering", Environment: "e", Match: "relative", Order: []string{"calico", "flannel"}}, Reproduced},
		{Claim{Kind: "ordering", Environment: "e", Match: "leader", Order: []string{"kube-router", "calico"}}, Untestable},
		{Claim{Kind: "ordering", Environment: "e", Match: "leader", Order: []string{"flannel", "calico"}}, Contradicted},
	}
	for _, tc := range cases {
		got := Evaluate([]Claim{tc.claim}, in, envs)[0]
		if got.Verdict != tc.verdict {
			t.Errorf("%s %v: %s (%s), want %s", tc.claim.Match, tc.claim.Order, got.Verdict, got.Reason, tc.verdict)
		}
	}
}

// scaleRun is a results document with three labs on three backends and
// services-scale figures per backend; failAt10k makes iptables-nft fail
// its programming step at 10000 services, reached says how far each
// backend got.
func scaleRun(reached map[string][]int, failAt10k bool) *results.Document {
	doc := &results.Document{Schema: results.Schema, Run: results.Run{ID: "s", Provider: "netns"},
		Labs: []results.Lab{
			{Name: "flannel", CNI: "flannel", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK, Services: "iptables-nft"},
			{Name: "cilium", CNI: "cilium", Provider: "netns", Fidelity: results.Approximate, Status: results.StatusOK, Services: "ebpf"},
			{Name: "calico", CNI: "calico", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK, Services: "nftables"},
		}}
	lat := map[string]float64{"iptables-nft": 100, "ebpf": 20, "nftables": 30}
	for proxy, sizes := range reached {
		for _, n := range sizes {
			v := lat[proxy] * (1 + float64(n)/1000)
			if proxy != "iptables-nft" {
				v = lat[proxy]
			}
			doc.Summaries = append(doc.Summaries, results.Summary{Lab: "services-scale", Scenario: "services-scale", Test: "first-packet", Placement: "middle",
				Proxy: proxy, Params: map[string]string{"services": strconv.Itoa(n)}, Metric: results.FirstPacketP50, Median: v, N: 2, Provider: "netns", Fidelity: results.Faithful})
		}
	}
	if failAt10k {
		doc.Measurements = append(doc.Measurements, results.Measurement{Lab: "services-scale", Scenario: "services-scale", Test: "program", Proxy: "iptables-nft",
			Params: map[string]string{"services": "10000"}, Error: "iptables-restore: context deadline exceeded"})
	}
	return doc
}

// Scale criteria compare at the largest N every candidate reached; one
// that failed there scores 0 with the reason.
func TestScaleComparesAtLargestCommonN(t *testing.T) {
	defs, _ := loadReal(t)
	env := Environment{Name: "e", Variants: "any", Criteria: []Criterion{{Name: "first packet", Metric: results.FirstPacketP50, Services: "max", Weight: 1}}}
	all := []int{100, 1000, 5000, 10000}
	cases := []struct {
		name    string
		doc     *results.Document
		at      string
		scores  map[string]float64
		flannel string // what flannel's evidence must say
	}{
		{"iptables-nft fails at 10k: compared at 10k, it scores 0",
			scaleRun(map[string][]int{"iptables-nft": {100, 1000, 5000}, "ebpf": all, "nftables": all}, true),
			"compared at 10000 services", map[string]float64{"cilium": 100, "calico": 66.7, "flannel": 0},
			"failed at 10000 services (proxy iptables-nft): iptables-restore: context deadline exceeded: counts 0"},
		{"iptables-nft stopped at 5k without a failure: everyone at 5k",
			scaleRun(map[string][]int{"iptables-nft": {100, 1000, 5000}, "ebpf": all, "nftables": all}, false),
			"compared at 5000 services", map[string]float64{"cilium": 100, "calico": 66.7, "flannel": 3.3}, // 20 / (100·6) = 0.033
			"at 5000 services, proxy iptables-nft"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Rank(FromResults(tc.doc, defs.Facts), env)
			if !strings.Contains(r.Weights[0].Rule, tc.at) {
				t.Errorf("rule %q lacks %q", r.Weights[0].Rule, tc.at)
			}
			for cni, want := range tc.scores {
				e, ok := r.Place(cni)
				if !ok || math.Abs(e.Score-want) > 0.01 {
					t.Errorf("%s: score %.2f (%v), want %.2f", cni, e.Score, ok, want)
				}
			}
			f, _ := r.Place("flannel")
			if !strings.Contains(f.Evidence[0].Detail, tc.flannel) {
				t.Errorf("flannel evidence %q lacks %q", f.Evidence[0].Detail, tc.flannel)
			}
		})
	}
}

// A figure above its host baseline beyond both intervals ranks no one; the
// input says so per lab and the evidence says why it counts 0. Evidence
// prints the median with its interval and level.
func TestAboveHostFigureLeftOut(t *testing.T) {
	defs, _ := loadReal(t)
	doc := &results.Document{Schema: results.Schema, Run: results.Run{ID: "h", Provider: "netns"},
		Labs: []results.Lab{
			{Name: "host", CNI: "host", Status: results.StatusOK},
			{Name: "calico", CNI: "calico", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK, Services: "iptables-nft"},
			{Name: "flannel", CNI: "flannel", Provider: "netns", Fidelity: results.Faithful, Status: results.StatusOK, Services: "iptables-nft"},
		}}
	put := func(lab, test string, v, lo, hi float64, above *results.AboveHost) {
		doc.Summaries = append(doc.Summaries, results.Summary{Lab: lab, Scenario: "throughput", Test: test, Placement: "cross-node", Metric: results.ThroughputBps,
			Median: v, CI95Low: lo, CI95High: hi, CILevel: 0.75, N: 3, Provider: "netns", Fidelity: results.Faithful, AboveHost: above})
	}
	put("host", "dtm", 13.7e9, 13.1e9, 14.0e9, nil)
	put("calico", "dtm", 30.44e9, 13.4e9, 30.9e9, &results.AboveHost{HostMedian: 13.7e9, HostCI95Low: 13.1e9, HostCI95High: 14.0e9, Evidence: "client and server shared cpu1"})
	put("flannel", "dtm", 11.2e9, 10.8e9, 11.5e9, nil)
	put("calico", "dts", 9.1e9, 8.9e9, 9.3e9, nil)
	put("flannel", "dts", 8.7e9, 8.5e9, 8.8e9, nil)
	in := FromResults(doc, defs.Facts)
	notes := strings.Join(in.Notes, "\n")
	if !strings.Contains(notes, "lab calico: dtm throughput_bps left out: above its host baseline beyond both intervals — see report") {
		t.Errorf("notes lack the per-lab exclusion: %v", in.Notes)
	}
	r := Rank(in, env(t, defs, "high-performance"))
	c, _ := r.Place("calico")
	f, _ := r.Place("flannel")
	for _, ev := range c.Evidence {
		if ev.Criterion == "8-stream TCP pod-to-pod" && (ev.Raw != nil || !strings.Contains(ev.Detail, "left out: above its host baseline")) {
			t.Errorf("calico's dtm row uses the flagged figure: %+v", ev)
		}
	}
	for _, ev := range f.Evidence {
		if ev.Criterion == "8-stream TCP pod-to-pod" && (ev.Normalized == nil || *ev.Normalized != 1) {
			t.Errorf("flannel is not the best dtm once calico's artefact is out: %+v", ev)
		}
		if ev.Criterion == "single-stream TCP pod-to-pod" {
			if got := evidenceLine(ev); !strings.Contains(got, "8.70 Gbit/s [8.50–8.80 Gbit/s, 75 % CI]") {
				t.Errorf("evidence %q lacks the median with its interval and level", got)
			}
		}
	}
}

// A score lies inside its own interval, even when an interval end sits
// past the best or at or below 0 (a t-interval of three noisy windows):
// for lower-is-better figures that end is the best possible, not the
// worst.
func TestScoreInsideItsInterval(t *testing.T) {
	env := Environment{Name: "e", Variants: "any", Criteria: []Criterion{
		{Name: "eff", Metric: results.MCPUPerGbit, Test: "dts", Weight: 1},
		{Name: "thr", Metric: results.ThroughputBps, Test: "dtm", Weight: 1},
	}}
	a := withCI("a", "dts", results.MCPUPerGbit, 10, 8, 12)
	a.SetMetric("dtm", results.ThroughputBps, Value{V: 0.95e9, Lo: -0.1e9, Hi: 1.84e9})
	b := withCI("b", "dts", results.MCPUPerGbit, 12, -5, 30)
	b.SetMetric("dtm", results.ThroughputBps, Value{V: 0.59e9, Lo: 0, Hi: 1.52e9})
	r := Rank(&Input{Name: "t", Candidates: []*Candidate{a, b}}, env)
	for _, e := range r.Ranking {
		if e.ScoreLow > e.Score || e.Score > e.ScoreHigh {
			t.Errorf("%s: score %.2f outside [%.2f, %.2f]", e.CNI, e.Score, e.ScoreLow, e.ScoreHigh)
		}
	}
	if eb, _ := r.Place("b"); eb.ScoreHigh != 100 {
		t.Errorf("b at the good ends of its intervals (−5 mCPU per Gbit/s, 1.52 Gbit/s) scores %.2f, want 100", eb.ScoreHigh)
	}
}
