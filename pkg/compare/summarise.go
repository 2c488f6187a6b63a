package compare

import (
	"sort"

	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/stats"
)

// HostLab is the baseline every figure is compared with.
const HostLab = "host"

// Summarise groups successful measurements by lab × scenario × test ×
// placement × proxy × params × metric (a lab being its name on its
// provider) and summarises each group; where the same provider's host
// baseline has the same test, metric and placement, the ratio of medians is
// attached.
func Summarise(doc *results.Document) []results.Summary {
	type key struct {
		// provider is part of a lab's identity: flannel on netns and
		// flannel on kind are two labs, each with its own host baseline.
		provider, lab, scenario, test, placement, proxy, params, metric string
	}
	groups := map[key][]float64{}
	meta := map[key]results.Measurement{}
	var order []key
	for _, m := range doc.Measurements {
		if m.Error != "" {
			continue
		}
		for metric, v := range m.Metrics {
			k := key{m.Provider, m.Lab, m.Scenario, m.Test, m.Placement, m.Proxy, paramsKey(m.Params), metric}
			if _, seen := groups[k]; !seen {
				order = append(order, k)
				meta[k] = m
			}
			groups[k] = append(groups[k], v)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.scenario != b.scenario {
			return a.scenario < b.scenario
		}
		if a.test != b.test {
			return a.test < b.test
		}
		if a.placement != b.placement {
			return a.placement < b.placement
		}
		if a.proxy != b.proxy {
			return a.proxy < b.proxy
		}
		if a.params != b.params {
			return a.params < b.params
		}
		if a.lab != b.lab {
			return a.lab < b.lab
		}
		if a.provider != b.provider {
			return a.provider < b.provider
		}
		return a.metric < b.metric
	})
	var out []results.Summary
	medians := map[key]float64{}
	for _, k := range order {
		s, err := stats.Summarise(groups[k])
		if err != nil {
			continue
		}
		medians[k] = s.Median
		// Every metric cnilab records is non-negative; a t-interval that
		// dips below zero (few, spread repeats) is cut at zero.
		if s.CI95Low < 0 {
			s.CI95Low = 0
		}
		m := meta[k]
		out = append(out, results.Summary{Lab: k.lab, Scenario: k.scenario, Test: k.test, Placement: k.placement, Params: m.Params,
			Metric: k.metric, Unit: results.Unit(k.metric), Median: s.Median, Mean: s.Mean, CI95Low: s.CI95Low, CI95High: s.CI95High,
			CoVPct: s.CoVPct, N: s.N, Provider: m.Provider, Fidelity: m.Fidelity, Proxy: m.Proxy})
	}
	for i := range out {
		s := &out[i]
		if s.Lab == HostLab {
			continue
		}
		// A service test on a CNI is compared with the host's direct test:
		// the host has no service proxy, its direct path is the limit.
		test := s.Test
		if len(test) >= 3 && test[0] == 's' {
			test = "d" + test[1:]
		}
		base, ok := medians[key{s.Provider, HostLab, s.Scenario, test, s.Placement, "", paramsKey(s.Params), s.Metric}]
		if ok && base != 0 {
			r := s.Median / base
			s.RatioToHost = &r
		}
	}
	return out
}

func paramsKey(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += k + "=" + p[k] + ";"
	}
	return s
}
