package fidelity

import (
	"testing"

	"github.com/cnilab/cnilab/pkg/results"
)

func policyCase(provider, lab, test, verdict string) results.Measurement {
	m := results.Measurement{Provider: provider, Lab: lab, Scenario: "policy", Test: test,
		Params: map[string]string{"case": test, "required": "true"}}
	if verdict != "" {
		m.Params["verdict"] = verdict
	}
	return m
}

// TestPolicyCases: each case both providers finished is one row, agreeing
// when the verdicts match (flannel's not-enforced on both agrees); a case
// only one provider finished, one that errored and a lab whose model did
// not model policy have no row; a run with no other fidelity row still
// gets the section.
func TestPolicyCases(t *testing.T) {
	errored := policyCase(ModelProvider, "kube-router", "allow-port-udp", "")
	errored.Error = "probe failed"
	doc := &results.Document{
		Labs: []results.Lab{{Name: "kube-router", CNI: "kube-router", Provider: ModelProvider}, {Name: "flannel", CNI: "flannel", Provider: ModelProvider}},
		Measurements: []results.Measurement{
			policyCase(RealProvider, "kube-router", "default-deny-ingress", "pass"),
			policyCase(ModelProvider, "kube-router", "default-deny-ingress", "pass"),
			policyCase(ModelProvider, "kube-router", "ipblock-except", "pass"),
			policyCase(RealProvider, "kube-router", "ipblock-except", "fail"),
			policyCase(ModelProvider, "kube-router", "policy-update", "pass"), // not on kind
			errored,
			policyCase(RealProvider, "kube-router", "allow-port-udp", "pass"),
			policyCase(ModelProvider, "flannel", "default-deny-ingress", "not-enforced"),
			policyCase(RealProvider, "flannel", "default-deny-ingress", "not-enforced"),
			{Provider: ModelProvider, Lab: "cilium", Scenario: "policy", Test: "matrix", NotReproducible: "policy not modelled: ..."},
			policyCase(RealProvider, "cilium", "default-deny-ingress", "pass"),
		},
	}
	fc := Compute(doc)
	if fc == nil {
		t.Fatal("no fidelity section for a run with policy cases on both providers")
	}
	want := []results.FidelityPolicyCase{
		{Lab: "kube-router", CNI: "kube-router", Case: "default-deny-ingress", Required: true, ModelVerdict: "pass", RealVerdict: "pass", Agreement: results.PolicyAgrees},
		{Lab: "kube-router", CNI: "kube-router", Case: "ipblock-except", Required: true, ModelVerdict: "pass", RealVerdict: "fail", Agreement: results.PolicyDisagrees},
		{Lab: "flannel", CNI: "flannel", Case: "default-deny-ingress", Required: true, ModelVerdict: "not-enforced", RealVerdict: "not-enforced", Agreement: results.PolicyAgrees},
	}
	if len(fc.Policy) != len(want) {
		t.Fatalf("rows %+v, want %+v", fc.Policy, want)
	}
	for i := range want {
		if fc.Policy[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, fc.Policy[i], want[i])
		}
	}
	if Compute(&results.Document{Measurements: doc.Measurements[:1]}) != nil {
		t.Error("a run with one provider's cases only got a fidelity section")
	}
}
