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
		"**enforced** (50% of cases pass)", "policy not modelled",
		"- kube-router fails ipblock-except: peer → server tcp/5201: expected allowed, denied (over-enforced)",
		"| kube-router | 0 | 100.0 |", "| kube-router | 1000 | 150.0 | – | – | 9.50 | – | – | – | 4200 iptables rules | 1 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if PolicySection(&results.Document{}) != "" {
		t.Error("a run without the policy scenario got a section")
	}
}
