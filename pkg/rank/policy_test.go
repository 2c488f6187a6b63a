package rank

import (
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/facts"
	"github.com/cnilab/cnilab/pkg/results"
)

func policyCase(lab, name, verdict string, required bool) results.Measurement {
	req := "false"
	if required {
		req = "true"
	}
	return results.Measurement{Lab: lab, Scenario: "policy", Test: name, Params: map[string]string{"case": name, "verdict": verdict, "required": req}}
}

func TestMeasuredPolicy(t *testing.T) {
	doc := &results.Document{Measurements: []results.Measurement{
		policyCase("kube-router", "default-deny-ingress", "pass", true),
		policyCase("kube-router", "default-deny-egress", "pass", true),
		policyCase("kube-router", "ipblock-except", "fail", false), // optional: no effect
		policyCase("flannel", "default-deny-ingress", "not-enforced", true),
		policyCase("flannel", "default-deny-egress", "not-enforced", true),
		policyCase("half", "default-deny-ingress", "pass", true), // no egress case: says nothing
		policyCase("leaky", "default-deny-ingress", "pass", true),
		policyCase("leaky", "allow-port-udp", "fail", true),
		policyCase("leaky", "default-deny-egress", "pass", true),
	}}
	got := measuredPolicy(doc)
	for lab, want := range map[string]string{
		"kube-router": "yes/yes",
		"flannel":     "no (measured: default-deny-ingress not-enforced)/no (measured: default-deny-egress not-enforced)",
		"leaky":       "no (measured: allow-port-udp fail)/yes",
	} {
		p := got[lab]
		if p == nil || p.Ingress+"/"+p.Egress != want {
			t.Errorf("%s: %+v, want %s", lab, p, want)
		}
	}
	if _, ok := got["half"]; ok {
		t.Error("a lab with one direction measured got a verdict")
	}
	if !got["kube-router"].Enforced() || got["leaky"].Enforced() {
		t.Error("Enforced() disagrees with the matrix")
	}
}

// TestMeasuredPolicyExcludes: a CNI documented "yes" that fails a required
// case is excluded from an environment that requires NetworkPolicy, with
// the measured case as the reason; a documented "no" keeps its fact and
// gains the measurement in its note.
func TestMeasuredPolicyExcludes(t *testing.T) {
	yes := facts.Capabilities{NetworkPolicy: &facts.Fact{Value: "yes", Source: "docs"}}
	no := facts.Capabilities{NetworkPolicy: &facts.Fact{Value: "no", Source: "docs"}}
	doc := &results.Document{
		Labs: []results.Lab{{Name: "leaky", CNI: "leaky", Status: results.StatusOK}, {Name: "flannel", CNI: "flannel", Status: results.StatusOK}},
		Measurements: []results.Measurement{
			policyCase("leaky", "default-deny-ingress", "fail", true), policyCase("leaky", "default-deny-egress", "pass", true),
			policyCase("flannel", "default-deny-ingress", "not-enforced", true), policyCase("flannel", "default-deny-egress", "not-enforced", true),
		}}
	in := FromResults(doc, map[string]facts.Capabilities{"leaky": yes, "flannel": no})
	env := Environment{Name: "security", Requires: []Requirement{{Fact: "network_policy", In: []string{"yes"}}},
		Criteria: []Criterion{{Name: "L7", Fact: "l7_policy", Weight: 1}}}
	res := Rank(in, env)
	x, ok := res.Exclusion("leaky")
	if !ok || !strings.Contains(x.Reason, "no") || !strings.Contains(x.Evidence[0].Detail, "default-deny-ingress fail") {
		t.Errorf("leaky not excluded on its measured case: %+v", x)
	}
	f, ok := res.Exclusion("flannel")
	if !ok || f.Evidence[0].Source != "docs" || !strings.Contains(f.Evidence[0].Detail, "measured by this run") {
		t.Errorf("flannel exclusion %+v", f)
	}
	if yes.NetworkPolicy.Note != "" || no.NetworkPolicy.Note != "" {
		t.Error("the shared facts were edited")
	}
}

// TestPolicyClaimAmongCNIsThatRan: C5-like claims stay untestable while
// some of their CNIs cannot run, but say whether the measured order holds
// among those that did, with each CNI's measured matrix as evidence.
func TestPolicyClaimAmongCNIsThatRan(t *testing.T) {
	yes := facts.Capabilities{NetworkPolicy: &facts.Fact{Value: "yes", Source: "docs"}, L7Policy: &facts.Fact{Value: "yes"}, Maintained: &facts.Fact{Value: "yes"}}
	no := facts.Capabilities{NetworkPolicy: &facts.Fact{Value: "no", Source: "docs"}, Maintained: &facts.Fact{Value: "yes"}}
	doc := &results.Document{
		Labs: []results.Lab{{Name: "cilium", CNI: "cilium", Status: results.StatusOK}, {Name: "flannel", CNI: "flannel", Status: results.StatusOK}},
		Measurements: []results.Measurement{
			policyCase("cilium", "default-deny-ingress", "pass", true), policyCase("cilium", "default-deny-egress", "pass", true),
			policyCase("flannel", "default-deny-ingress", "not-enforced", true), policyCase("flannel", "default-deny-egress", "not-enforced", true),
		}}
	in := FromResults(doc, map[string]facts.Capabilities{"cilium": yes, "flannel": no})
	env := Environment{Name: "security", Requires: []Requirement{{Fact: "network_policy", In: []string{"yes"}}},
		Criteria: []Criterion{{Name: "L7", Fact: "l7_policy", Weight: 1}}}
	res := Rank(in, env)
	claim := Claim{ID: "C5", Kind: "ordering", Environment: "security", Order: []string{"cilium", "calico", "weave", "flannel"}, Match: "relative"}
	got := Evaluate([]Claim{claim}, in, []EnvResult{res})[0]
	if got.Verdict != Untestable || !strings.Contains(got.Reason, "among the CNIs that ran here the claimed order holds: cilium > flannel") {
		t.Errorf("verdict %s: %s", got.Verdict, got.Reason)
	}
	if ev := strings.Join(got.Evidence, "\n"); !strings.Contains(ev, "flannel (flannel): NetworkPolicy measured by this run: ingress no") || !strings.Contains(ev, "cilium (cilium): NetworkPolicy measured by this run: ingress yes") {
		t.Errorf("evidence %v", got.Evidence)
	}
}
