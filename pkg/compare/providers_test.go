package compare

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/results"
)

// TestSummariseKeepsProvidersApart: flannel on netns and flannel on kind are
// two labs, each divided by its own provider's host baseline.
func TestSummariseKeepsProvidersApart(t *testing.T) {
	on := func(provider string, m results.Measurement) results.Measurement {
		m.Provider = provider
		if provider == "kind" {
			m.Fidelity = results.Real
		}
		return m
	}
	var ms []results.Measurement
	for r, v := range []float64{20e9, 21e9, 19e9} {
		ms = append(ms, on("netns", meas("host", "dts", r+1, v)), on("netns", meas("flannel", "dts", r+1, v*0.8)))
	}
	for r, v := range []float64{10e9, 11e9, 9e9} {
		ms = append(ms, on("kind", meas("host", "dts", r+1, v)), on("kind", meas("flannel", "dts", r+1, v*0.5)))
	}
	sums := Summarise(&results.Document{Measurements: ms})
	got := map[string]results.Summary{}
	for _, s := range sums {
		if s.Metric == results.ThroughputBps {
			k := s.Lab + "@" + s.Provider
			if _, dup := got[k]; dup {
				t.Fatalf("two summaries for %s", k)
			}
			got[k] = s
		}
	}
	if len(got) != 4 {
		t.Fatalf("summaries %v, want host and flannel on each provider", got)
	}
	for k, want := range map[string]struct{ median, ratio float64 }{
		"flannel@netns": {16e9, 0.8},
		"flannel@kind":  {5e9, 0.5},
	} {
		s := got[k]
		if s.N != 3 || s.Median != want.median {
			t.Errorf("%s: n=%d median %v, want n=3 median %v (providers merged?)", k, s.N, s.Median, want.median)
		}
		if s.RatioToHost == nil || *s.RatioToHost < want.ratio-1e-9 || *s.RatioToHost > want.ratio+1e-9 {
			t.Errorf("%s: ratio to host %v, want %v against its own provider's host", k, s.RatioToHost, want.ratio)
		}
	}
	// Rankings take one provider at a time.
	doc := &results.Document{Labs: []results.Lab{{Name: "flannel", Provider: "netns"}, {Name: "flannel", Provider: "kind"}}, Measurements: ms, Summaries: sums}
	split := doc.ByProvider()
	if len(split) != 2 {
		t.Fatalf("%d documents, want one per provider", len(split))
	}
	for _, d := range split {
		for _, s := range d.Summaries {
			if s.Provider != d.Run.Provider {
				t.Errorf("%s document holds a %s summary", d.Run.Provider, s.Provider)
			}
		}
		if len(d.Labs) != 1 || len(d.Summaries) == 0 {
			t.Errorf("%s document: %d labs, %d summaries", d.Run.Provider, len(d.Labs), len(d.Summaries))
		}
	}
}

// hostingProvider is a countingProvider that realises the host baseline
// inside its other labs, as kind does.
type hostingProvider struct {
	countingProvider
	sawUp []string
}

func (p *hostingProvider) HostBaseline(_ context.Context, s lab.Spec, up []*lab.Instance) (*lab.Instance, error) {
	for _, in := range up {
		p.sawUp = append(p.sawUp, in.Name)
	}
	if len(up) == 0 {
		return nil, errors.New("nothing up to carry it")
	}
	return &lab.Instance{Name: s.Def.Name}, nil
}

// TestProvisionDefersTheHostBaseline: a provider that carries the host
// inside its labs gets it only after those labs are up, never as a lab of
// its own; another provider builds it like any lab.
func TestProvisionDefersTheHostBaseline(t *testing.T) {
	specs := []lab.Spec{{Def: &config.Lab{Name: HostLab}}, {Def: &config.Lab{Name: "flannel", Kind: &config.KindLab{}}}, {Def: &config.Lab{Name: "cilium", Kind: &config.KindLab{}}}}
	hp := &hostingProvider{}
	out := provision(context.Background(), hp, specs, "/runs/r1/kind")
	if strings.Contains(strings.Join(hp.ups, ","), HostLab) {
		t.Errorf("Up was asked for the host: %v", hp.ups)
	}
	if len(hp.sawUp) != 2 || len(out) != 3 || out[0].Spec.Def.Name != HostLab || out[0].Err != nil || out[0].Spec.Dir != "/runs/r1/kind" {
		t.Errorf("host baseline saw %v; outcomes %+v", hp.sawUp, out)
	}
	// Nothing up: the host fails with the reason, the run goes on.
	failing := &hostingProvider{countingProvider: countingProvider{fail: "flannel"}}
	out = provision(context.Background(), failing, specs[:2], "/runs/r1/kind")
	if out[0].Err == nil || !strings.Contains(out[0].Err.Error(), "nothing up") {
		t.Errorf("host baseline over no lab: %v", out[0].Err)
	}
	plain := &countingProvider{}
	provision(context.Background(), plain, specs, "/runs/r1/netns")
	if len(plain.ups) != 3 {
		t.Errorf("a provider without a host baseline of its own built %v, want all three", plain.ups)
	}
}
