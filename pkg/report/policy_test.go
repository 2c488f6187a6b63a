package report

import (
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

func TestPolicySection(t *testing.T) {
	doc := &results.Document{
		Labs: []results.Lab{{Name: "flannel"}, {Name: "kube-router"}, {Name: "calico"}},
		Measurements: []results.Measurement{
			{Lab: "flannel", Scenario: "policy", Test: "default-deny-ingress", Params: map[string]string{"case": "default-deny-ingress", "required": "true", "verdict": "not-enforced"}, Metrics: map[string]float64{"policy_converge_s": 20}},
			{Lab: "kube-router", Scenario: "policy", Test: "default-deny-ingress", Params: map[string]string{"case": "default-deny-ingress", "required": "true", "verdict": "pass"}, Metrics: map[string]float64{"policy_converge_s": 1.5}},
			{Lab: "kube-router", Scenario: "policy", Test: "ipblock-except", Params: map[string]string{"case": "ipblock-except", "required": "false", "verdict": "fail", "mismatches": "peer → server tcp/5201: expected allowed, denied (over-enforced)"}, Metrics: map[string]float64{}},
			{Lab: "kube-router", Scenario: "policy", Test: "matrix", Params: map[string]string{"verdict": "enforced"}, Metrics: map[string]float64{"policy_cases_passed_pct": 50}},
			{Lab: "calico", Scenario: "policy", Test: "matrix", NotReproducible: "policy not modelled: calico (netns provider, faithful)"},
		},
		Summaries: []results.Summary{
			{Lab: "kube-router", Scenario: "policy", Test: "k0-connect", Params: map[string]string{"policies": "0"}, Metric: results.FirstPacketP50, Median: 100, N: 1},
			{Lab: "kube-router", Scenario: "policy", Test: "k1000-connect", Params: map[string]string{"policies": "1000"}, Metric: results.FirstPacketP50, Median: 150, N: 1},
			{Lab: "kube-router", Scenario: "policy", Test: "k1000-connect", Params: map[string]string{"policies": "1000"}, Metric: results.RuleCount, Median: 4200, N: 1},
			{Lab: "kube-router", Scenario: "policy", Test: "k1000-dts", Params: map[string]string{"policies": "1000"}, Metric: results.ThroughputBps, Median: 9.5e9, N: 1},
		},
	}
	s := PolicySection(doc)
	for _, want := range []string{
		"| default-deny-ingress | yes | not-enforced | pass (1.5 s) | – |",
		"| ipblock-except | no* | – | fail |",
		"| lab verdict |  | – | enforced (50% of cases pass) | policy not modelled |",
		"- kube-router fails ipblock-except: peer → server tcp/5201: expected allowed, denied (over-enforced)",
		"| kube-router | 0 | 100.0 |", "| kube-router | 1000 | 150.0 | – | – | 9.50 | – | – | – | – | 4200 iptables rules | 1 (no interval) |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if PolicySection(&results.Document{}) != "" {
		t.Error("a run without the policy scenario got a section")
	}
}

// A netns,kind run has a cilium of each provider: each gets its own column,
// its own verdict and its own cost rows (the columns were keyed by the lab
// name, so the kind cases sat under the netns lab's "policy not modelled").
func TestPolicySectionTwoProviders(t *testing.T) {
	doc := &results.Document{
		Labs: []results.Lab{{Name: "cilium", Provider: "netns"}, {Name: "cilium", Provider: "kind"}},
		Measurements: []results.Measurement{
			{Lab: "cilium", Provider: "netns", Scenario: "policy", Test: "matrix", NotReproducible: "policy not modelled: per-endpoint eBPF policy map"},
			{Lab: "cilium", Provider: "kind", Scenario: "policy", Test: "default-deny-ingress", Params: map[string]string{"case": "default-deny-ingress", "required": "true", "verdict": "pass"}, Metrics: map[string]float64{"policy_converge_s": 5.6}},
			{Lab: "cilium", Provider: "kind", Scenario: "policy", Test: "matrix", Params: map[string]string{"verdict": "enforced"}, Metrics: map[string]float64{"policy_cases_passed_pct": 90}},
		},
		Summaries: []results.Summary{
			{Lab: "cilium", Provider: "kind", Scenario: "policy", Test: "k1000-connect", Params: map[string]string{"policies": "1000"}, Metric: results.FirstPacketP50,
				Median: 196.5, CI95Low: 133.5, CI95High: 256.8, CILevel: 0.75, CIMethod: "order-statistic", N: 3},
			{Lab: "cilium", Provider: "kind", Scenario: "policy", Test: "k1000-connect", Params: map[string]string{"policies": "1000"}, Metric: results.PolicyProgramAfterS,
				Median: 1.8, CI95Low: 1.8, CI95High: 1.8, CILevel: 0.75, CIMethod: "order-statistic", N: 3},
		},
	}
	s := PolicySection(doc)
	for _, want := range []string{
		"| case | required | cilium (netns) | cilium (kind) |",
		"| default-deny-ingress | yes | – | pass (5.6 s) |",
		"| lab verdict |  | policy not modelled | enforced (90% of cases pass) |",
		"- cilium (netns): policy not modelled: per-endpoint eBPF policy map",
		// The interval belongs to the median shown; one with no spread is
		// printed as the figure alone.
		"| cilium (kind) | 1000 | 196.5 [133.5–256.8] | – | – | – | – | – | – | 1.80 | – | 3 (75 %) |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
}
