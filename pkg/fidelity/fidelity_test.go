package fidelity

import (
	"math"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

func f(v float64) *float64 { return &v }

// TestVerdictBounds walks the verdict's edges: |error| ≤ 10 % with the
// interval inside ±15 % holds; an interval wholly beyond ±10 % differs;
// everything between, and no interval at all, is undecided.
func TestVerdictBounds(t *testing.T) {
	cases := []struct {
		name          string
		err, low, hig float64
		noInterval    bool
		want          results.FidelityVerdict
	}{
		{name: "tight around zero", err: 0.02, low: -0.03, hig: 0.06, want: results.FidelityHolds},
		{name: "error exactly 10 %, interval exactly 15 %", err: 0.10, low: 0.05, hig: 0.15, want: results.FidelityHolds},
		{name: "error −10 %, interval to −15 %", err: -0.10, low: -0.15, hig: -0.05, want: results.FidelityHolds},
		{name: "error 10 % but interval reaches 15.1 %", err: 0.10, low: 0.05, hig: 0.151, want: results.FidelityUndecided},
		{name: "small error, wide interval", err: 0.01, low: -0.30, hig: 0.35, want: results.FidelityUndecided},
		{name: "interval wholly above +10 %", err: 0.25, low: 0.101, hig: 0.40, want: results.FidelityDiffers},
		{name: "interval touching +10 % is not outside", err: 0.25, low: 0.10, hig: 0.40, want: results.FidelityUndecided},
		{name: "interval wholly below −10 %", err: -0.30, low: -0.45, hig: -0.12, want: results.FidelityDiffers},
		{name: "large error, interval crossing −10 %", err: -0.20, low: -0.35, hig: -0.05, want: results.FidelityUndecided},
		{name: "error 11 %, interval inside ±15 % but crossing +10 %", err: 0.11, low: 0.07, hig: 0.14, want: results.FidelityUndecided},
		{name: "no interval", err: 0, noInterval: true, want: results.FidelityUndecided},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lo, hi *float64
			if !tc.noInterval {
				lo, hi = f(tc.low), f(tc.hig)
			}
			if got := Verdict(tc.err, lo, hi); got != tc.want {
				t.Errorf("Verdict(%v, %v, %v) = %s, want %s", tc.err, tc.low, tc.hig, got, tc.want)
			}
		})
	}
}

func sum(provider, lab, test string, median float64, ratio, lo, hi *float64) results.Summary {
	scenario, metric := "throughput", results.ThroughputBps
	if test == "drr" {
		scenario, metric = "latency", results.LatencyP50
	}
	fid := results.Faithful
	if provider == RealProvider {
		fid = results.Real
	}
	return results.Summary{Provider: provider, Lab: lab, Scenario: scenario, Test: test, Placement: "cross-node", Metric: metric,
		Median: median, N: 5, RatioToHost: ratio, RatioCI95Low: lo, RatioCI95High: hi, Fidelity: fid}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestCompute works the table by hand: flannel dts model 0.80 (0.76–0.84)
// of the netns host, real 0.75 (0.72–0.78) of the kind host: error
// 0.80/0.75 − 1 = +6.67 %, interval 0.76/0.78 − 1 = −2.56 % to
// 0.84/0.72 − 1 = +16.67 %: the point holds but the interval leaves ±15 %,
// so undecided. cilium dts 0.90 (0.88–0.92) against 0.60 (0.58–0.62): +50 %,
// interval +41.9 % … +58.6 %: differs. kube-router dts 0.70 (0.69–0.71)
// against 0.68 (0.67–0.69): +2.94 %, interval +0.0 % … +6.0 %: holds.
func TestCompute(t *testing.T) {
	doc := &results.Document{
		Labs: []results.Lab{
			{Name: "host", CNI: "host", Provider: ModelProvider, Fidelity: results.Faithful, Status: results.StatusOK},
			{Name: "flannel", CNI: "flannel", Provider: ModelProvider, Fidelity: results.Faithful, Status: results.StatusOK},
			{Name: "cilium", CNI: "cilium", Provider: ModelProvider, Fidelity: results.Approximate, Status: results.StatusOK},
			{Name: "kube-router", CNI: "kube-router", Provider: ModelProvider, Fidelity: results.Faithful, Status: results.StatusOK},
			{Name: "calico", CNI: "calico", Provider: ModelProvider, Fidelity: results.Faithful, Status: results.StatusOK},
			{Name: "host", CNI: "host", Provider: RealProvider, Fidelity: results.Real, Status: results.StatusOK},
			{Name: "flannel", CNI: "flannel", Provider: RealProvider, Fidelity: results.Real, Status: results.StatusOK},
			{Name: "cilium", CNI: "cilium", Provider: RealProvider, Fidelity: results.Real, Status: results.StatusOK},
			{Name: "kube-router", CNI: "kube-router", Provider: RealProvider, Fidelity: results.Real, Status: results.StatusOK},
			{Name: "calico", CNI: "calico", Provider: RealProvider, Status: results.StatusUnavailable, Error: "not reproducible here: no image source for calico (no registry, no offline chart)"},
		},
		Summaries: []results.Summary{
			sum(ModelProvider, "host", "dts", 20e9, nil, nil, nil),
			sum(RealProvider, "host", "dts", 10e9, nil, nil, nil),
			sum(ModelProvider, "flannel", "dts", 16e9, f(0.80), f(0.76), f(0.84)),
			sum(RealProvider, "flannel", "dts", 7.5e9, f(0.75), f(0.72), f(0.78)),
			sum(ModelProvider, "cilium", "dts", 18e9, f(0.90), f(0.88), f(0.92)),
			sum(RealProvider, "cilium", "dts", 6e9, f(0.60), f(0.58), f(0.62)),
			sum(ModelProvider, "kube-router", "dts", 14e9, f(0.70), f(0.69), f(0.71)),
			sum(RealProvider, "kube-router", "dts", 6.8e9, f(0.68), f(0.67), f(0.69)),
			// calico has no kind figures: no row, listed unverified.
			sum(ModelProvider, "calico", "dts", 15e9, f(0.75), f(0.70), f(0.80)),
			// A metric that is not the test's checked one is left out.
			{Provider: ModelProvider, Lab: "flannel", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.CPUCores, Median: 1, RatioToHost: f(1)},
			{Provider: RealProvider, Lab: "flannel", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.CPUCores, Median: 2, RatioToHost: f(2)},
		},
	}
	fc := Compute(doc)
	if fc == nil {
		t.Fatal("no fidelity section for a run with both providers")
	}
	want := map[string]struct {
		err, lo, hi float64
		verdict     results.FidelityVerdict
	}{
		"flannel":     {100 * (0.80/0.75 - 1), 100 * (0.76/0.78 - 1), 100 * (0.84/0.72 - 1), results.FidelityUndecided},
		"cilium":      {50, 100 * (0.88/0.62 - 1), 100 * (0.92/0.58 - 1), results.FidelityDiffers},
		"kube-router": {100 * (0.70/0.68 - 1), 0, 100 * (0.71/0.67 - 1), results.FidelityHolds}, // low: 0.69/0.69 − 1
	}
	if len(fc.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(fc.Rows), len(want), fc.Rows)
	}
	for _, r := range fc.Rows {
		w, ok := want[r.Lab]
		if !ok {
			t.Errorf("unexpected row %+v", r)
			continue
		}
		if !near(r.ErrorPct, w.err) || r.ErrorLowPct == nil || !near(*r.ErrorLowPct, w.lo) || !near(*r.ErrorHighPct, w.hi) || r.Verdict != w.verdict {
			t.Errorf("%s: error %.2f %% [%v, %v] %s, want %.2f %% [%.2f, %.2f] %s", r.Lab, r.ErrorPct, deref(r.ErrorLowPct), deref(r.ErrorHighPct), r.Verdict, w.err, w.lo, w.hi, w.verdict)
		}
		if r.IntervalFrom != "ratio interval" {
			t.Errorf("%s: interval from %q", r.Lab, r.IntervalFrom)
		}
	}
	labs := map[string]results.FidelityLab{}
	for _, l := range fc.Labs {
		labs[l.Lab] = l
	}
	if l := labs["cilium"]; l.Verdict != results.FidelityDiffers || l.Label != results.Approximate || !near(l.MaxAbsErrorPct, 50) {
		t.Errorf("cilium lab verdict %+v", l)
	}
	if l := labs["kube-router"]; l.Verdict != results.FidelityHolds || l.Holds != 1 {
		t.Errorf("kube-router lab verdict %+v", l)
	}
	if len(fc.Unverified) != 1 || fc.Unverified[0].Lab != "calico" || fc.Unverified[0].Why != "unverified here: not reproducible here: no image source for calico (no registry, no offline chart)" {
		t.Errorf("unverified %+v", fc.Unverified)
	}
	if row, ok := ErrorFor(fc, "cilium", "dts", "cross-node"); !ok || !near(row.ErrorPct, 50) {
		t.Errorf("ErrorFor(cilium dts) = %+v, %v", row, ok)
	}

	// One provider only: no section.
	netnsOnly := &results.Document{Summaries: doc.Summaries[:1]}
	if Compute(netnsOnly) != nil {
		t.Error("a run of one provider got a fidelity section")
	}
}

// TestComputeFallsBackToMedianIntervals: without a ratio interval on the
// summaries, the interval is built from the lab's and the host's median
// intervals at their widest. Model 8 (7.6–8.4) over host 10 (9.5–10.5):
// 0.8, 0.7238–0.8842; real 4 (3.9–4.1) over 5 (4.9–5.1): 0.8,
// 0.7647–0.8367. Error 0, interval 0.7238/0.8367 − 1 = −13.5 % to
// 0.8842/0.7647 − 1 = +15.6 %: undecided for want of a tighter interval.
func TestComputeFallsBackToMedianIntervals(t *testing.T) {
	mk := func(provider, lab string, med, lo, hi float64, ratio *float64) results.Summary {
		s := sum(provider, lab, "dts", med, ratio, nil, nil)
		s.CI95Low, s.CI95High = lo, hi
		return s
	}
	doc := &results.Document{Summaries: []results.Summary{
		mk(ModelProvider, "host", 10, 9.5, 10.5, nil),
		mk(RealProvider, "host", 5, 4.9, 5.1, nil),
		mk(ModelProvider, "flannel", 8, 7.6, 8.4, f(0.8)),
		mk(RealProvider, "flannel", 4, 3.9, 4.1, f(0.8)),
	}}
	fc := Compute(doc)
	if fc == nil || len(fc.Rows) != 1 {
		t.Fatalf("rows %+v", fc)
	}
	r := fc.Rows[0]
	lo := 100 * ((7.6/10.5)/(4.1/4.9) - 1)
	hi := 100 * ((8.4/9.5)/(3.9/5.1) - 1)
	if r.ErrorLowPct == nil || !near(*r.ErrorLowPct, lo) || !near(*r.ErrorHighPct, hi) || r.Verdict != results.FidelityUndecided || r.IntervalFrom != "median intervals" {
		t.Errorf("row %+v [%v, %v], want [%.2f, %.2f] undecided from median intervals", r, deref(r.ErrorLowPct), deref(r.ErrorHighPct), lo, hi)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestComputePairsByRepeat: six repeats where the whole machine slows down
// and speeds up from one repeat to the next (a drift d_r shared by the four
// windows of a repeat, as when something else wakes up) and the model
// tracks the real CNI to within 1 %. Summaries' intervals span the drift,
// so stacking them could not decide; the per-repeat errors cancel it and
// the row holds. Then a model 30 % above the real CNI differs, and three
// repeats (75 % coverage) decide nothing however tight they are.
func TestComputePairsByRepeat(t *testing.T) {
	drift := []float64{1.0, 0.7, 1.2, 0.85, 1.1, 0.95}
	wobble := []float64{1.00, 1.01, 0.99, 1.005, 0.995, 1.0}
	build := func(modelOverReal float64, repeats int) *results.Document {
		doc := &results.Document{}
		add := func(provider, lab string, base float64, per func(r int) float64) {
			for r := 1; r <= repeats; r++ {
				doc.Measurements = append(doc.Measurements, results.Measurement{Provider: provider, Lab: lab, Scenario: "throughput", Test: "dts",
					Placement: "cross-node", Repeat: r, Metrics: map[string]float64{results.ThroughputBps: base * drift[r-1] * per(r)}})
			}
		}
		one := func(int) float64 { return 1 }
		add(ModelProvider, "host", 20e9, one)
		add(RealProvider, "host", 10e9, one)
		add(ModelProvider, "flannel", 16e9*modelOverReal, func(r int) float64 { return wobble[r-1] })
		add(RealProvider, "flannel", 8e9, one)
		// A failed window is left out of the pairs.
		doc.Measurements = append(doc.Measurements, results.Measurement{Provider: RealProvider, Lab: "flannel", Scenario: "throughput", Test: "dts",
			Placement: "cross-node", Repeat: repeats + 1, Error: "iperf3: connection refused"})
		// Summaries as the drift leaves them: wide ratio intervals.
		doc.Summaries = []results.Summary{
			sum(ModelProvider, "host", "dts", 20e9, nil, nil, nil),
			sum(RealProvider, "host", "dts", 10e9, nil, nil, nil),
			sum(ModelProvider, "flannel", "dts", 16e9*modelOverReal, f(0.8*modelOverReal), f(0.5*modelOverReal), f(1.1*modelOverReal)),
			sum(RealProvider, "flannel", "dts", 8e9, f(0.8), f(0.5), f(1.1)),
		}
		return doc
	}
	cases := []struct {
		name          string
		modelOverReal float64
		repeats       int
		want          results.FidelityVerdict
		errPct        float64
		why           string
	}{
		{name: "tracks the real CNI under drift", modelOverReal: 1, repeats: 6, want: results.FidelityHolds, errPct: 0},
		{name: "30 % above the real CNI", modelOverReal: 1.3, repeats: 6, want: results.FidelityDiffers, errPct: 30},
		{name: "three repeats decide nothing", modelOverReal: 1, repeats: 3, want: results.FidelityUndecided, errPct: 0, why: "3 pairs: the interval covers 75.0 %, below 95 %"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := Compute(build(tc.modelOverReal, tc.repeats))
			if fc == nil || len(fc.Rows) != 1 {
				t.Fatalf("rows %+v", fc)
			}
			r := fc.Rows[0]
			if r.Verdict != tc.want || math.Abs(r.ErrorPct-tc.errPct) > 1.01 || r.Pairs != tc.repeats || r.Why != tc.why {
				t.Errorf("row: %s, error %.2f %% [%v, %v], %d pairs, why %q; want %s, ≈%.0f %%, %d pairs, why %q",
					r.Verdict, r.ErrorPct, deref(r.ErrorLowPct), deref(r.ErrorHighPct), r.Pairs, r.Why, tc.want, tc.errPct, tc.repeats, tc.why)
			}
			if !strings.HasPrefix(r.IntervalFrom, "paired by repeat") {
				t.Errorf("interval from %q", r.IntervalFrom)
			}
		})
	}
}

// TestSameNodeUsesCrossNodeHost: kind's same-node host baseline is
// loopback (3× the cross-node one here), the netns one a veth; a same-node
// row divides both labs by their provider's cross-node host, so equal
// paths read as equal.
func TestSameNodeUsesCrossNodeHost(t *testing.T) {
	doc := &results.Document{}
	add := func(provider, lab, placement string, v float64) {
		for r := 1; r <= 6; r++ {
			doc.Measurements = append(doc.Measurements, results.Measurement{Provider: provider, Lab: lab, Scenario: "throughput", Test: "dus",
				Placement: placement, Repeat: r, Metrics: map[string]float64{results.ThroughputBps: v * (1 + 0.01*float64(r%3))}})
		}
		s := sum(provider, lab, "dus", v, nil, nil, nil)
		s.Placement, s.CI95Low, s.CI95High, s.N = placement, 0.99*v, 1.03*v, 6
		if lab != HostLab {
			s.RatioToHost = f(9) // against the same-node host: must not be used
		}
		doc.Summaries = append(doc.Summaries, s)
	}
	add(ModelProvider, HostLab, "cross-node", 1.0e9)
	add(ModelProvider, HostLab, "same-node", 1.0e9)
	add(RealProvider, HostLab, "cross-node", 0.8e9)
	add(RealProvider, HostLab, "same-node", 2.4e9) // loopback
	add(ModelProvider, "flannel", "same-node", 0.5e9)
	add(RealProvider, "flannel", "same-node", 0.4e9)
	fc := Compute(doc)
	if fc == nil || len(fc.Rows) != 1 {
		t.Fatalf("rows %+v", fc)
	}
	r := fc.Rows[0]
	if !near(r.ModelRatio, 0.5) || !near(r.RealRatio, 0.5) || math.Abs(r.ErrorPct) > 2 || r.Verdict != results.FidelityHolds {
		t.Errorf("same-node row: model %.3f real %.3f error %.1f %% %s; want 0.5, 0.5, ≈0, holds", r.ModelRatio, r.RealRatio, r.ErrorPct, r.Verdict)
	}
}

// TestAddedLatency: a cross-node latency row carries what the pod path adds
// over each provider's own host (run 4c6d17's flannel dcrr: netns 287.9 −
// 131.8 µs, kind 382.2 − 278.4 µs); throughput rows carry none.
func TestAddedLatency(t *testing.T) {
	doc := &results.Document{
		Labs: []results.Lab{
			{Name: "host", Provider: ModelProvider, Status: results.StatusOK}, {Name: "flannel", Provider: ModelProvider, Status: results.StatusOK},
			{Name: "host", Provider: RealProvider, Status: results.StatusOK}, {Name: "flannel", Provider: RealProvider, Status: results.StatusOK},
		},
		Summaries: []results.Summary{
			sum(ModelProvider, "host", "drr", 131.8, nil, nil, nil),
			sum(RealProvider, "host", "drr", 278.4, nil, nil, nil),
			sum(ModelProvider, "flannel", "drr", 287.9, f(287.9/131.8), nil, nil),
			sum(RealProvider, "flannel", "drr", 382.2, f(382.2/278.4), nil, nil),
			sum(ModelProvider, "host", "dts", 20e9, nil, nil, nil),
			sum(RealProvider, "host", "dts", 10e9, nil, nil, nil),
			sum(ModelProvider, "flannel", "dts", 16e9, f(0.8), f(0.76), f(0.84)),
			sum(RealProvider, "flannel", "dts", 7.5e9, f(0.75), f(0.72), f(0.78)),
		},
	}
	fc := Compute(doc)
	if fc == nil || len(fc.Rows) != 2 {
		t.Fatalf("rows: %+v", fc)
	}
	for _, r := range fc.Rows {
		switch r.Test {
		case "drr":
			if r.ModelAdded == nil || r.RealAdded == nil || !near(*r.ModelAdded, 287.9-131.8) || !near(*r.RealAdded, 382.2-278.4) {
				t.Errorf("drr added %v / %v, want %.1f / %.1f", deref(r.ModelAdded), deref(r.RealAdded), 287.9-131.8, 382.2-278.4)
			}
		case "dts":
			if r.ModelAdded != nil || r.RealAdded != nil {
				t.Errorf("a throughput row carries added figures: %v / %v", deref(r.ModelAdded), deref(r.RealAdded))
			}
		}
	}
}
