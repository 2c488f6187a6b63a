package rank

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cnilab/cnilab/pkg/dataset"
	"github.com/cnilab/cnilab/pkg/results"
)

// policyScenario is the NetworkPolicy scenario's name in results.
const policyScenario = "policy"

// egressCases are the matrix cases about egress; every other case checks
// ingress at the server.
var egressCases = []string{"default-deny-egress"}

// measuredPolicy reads each lab's NetworkPolicy matrix from a run: a
// direction is "yes" when every required case of it passed, otherwise "no"
// with the cases that did not. Labs without a matrix (not run, or policy
// not modelled) get nothing: their facts decide alone.
func measuredPolicy(doc *results.Document) map[string]*dataset.PolicyResult {
	type dir struct {
		ran    bool
		failed []string
	}
	by := map[string]*[2]dir{}
	for _, m := range doc.Measurements {
		if m.Scenario != policyScenario || m.Params["case"] == "" || m.Params["required"] != "true" || m.Error != "" {
			continue
		}
		d := by[m.Lab]
		if d == nil {
			d = &[2]dir{}
			by[m.Lab] = d
		}
		i := 0
		if slices.Contains(egressCases, m.Test) {
			i = 1
		}
		d[i].ran = true
		if v := m.Params["verdict"]; v != "pass" {
			d[i].failed = append(d[i].failed, m.Test+" "+v)
		}
	}
	out := map[string]*dataset.PolicyResult{}
	for lab, d := range by {
		if !d[0].ran || !d[1].ran {
			continue // one direction unmeasured says nothing of both
		}
		say := func(x dir) string {
			switch {
			case !x.ran:
				return "not measured"
			case len(x.failed) == 0:
				return "yes"
			}
			return "no (measured: " + strings.Join(x.failed, ", ") + ")"
		}
		out[lab] = &dataset.PolicyResult{Ingress: say(d[0]), Egress: say(d[1])}
	}
	return out
}

// applyMeasuredPolicy sets each candidate's observed NetworkPolicy from
// the run's own matrix, so a required case that failed overrides a
// documented "yes" (see effectiveFact), and notes what was measured.
func applyMeasuredPolicy(in *Input, doc *results.Document, byLab map[string]*Candidate) {
	var seen []string
	for lab, p := range measuredPolicy(doc) {
		c, ok := byLab[lab]
		if !ok {
			continue
		}
		c.PolicyObserved = p
		seen = append(seen, fmt.Sprintf("%s: ingress %s, egress %s", lab, p.Ingress, p.Egress))
		// A documented "no" stays the fact, with the measurement beside it
		// (the candidate's own copy: facts are shared per CNI).
		if f := c.Facts.NetworkPolicy; f != nil && f.Value == "no" && !p.Enforced() {
			g := *f
			g.Note = strings.TrimPrefix(g.Note+"; measured by this run: ingress "+p.Ingress+", egress "+p.Egress, "; ")
			c.Facts.NetworkPolicy = &g
		}
	}
	if len(seen) > 0 {
		slices.Sort(seen)
		in.Notes = append(in.Notes, "NetworkPolicy as measured by this run's policy matrix (required cases; overrides a documented yes): "+strings.Join(seen, "; "))
	}
}

// annotatePolicyClaim adds the run's measured NetworkPolicy to an ordering
// claim on an environment that requires NetworkPolicy: each named CNI's
// measured matrix as evidence, and, when the claim is untestable because
// some of its CNIs cannot run, whether the claimed order holds among those
// that did.
func annotatePolicyClaim(c Claim, in *Input, env *EnvResult, r *ClaimResult) {
	if c.Kind != "ordering" || in.Kind != "results" || env == nil || !strings.Contains(strings.Join(env.Requires, " "), "network_policy") {
		return
	}
	measured := false
	for _, cni := range c.Order {
		for _, cand := range in.Candidates {
			if cand.CNI == cni && cand.PolicyObserved != nil {
				measured = true
				r.Evidence = append(r.Evidence, fmt.Sprintf("%s (%s): NetworkPolicy measured by this run: ingress %s, egress %s", cni, cand.Name, cand.PolicyObserved.Ingress, cand.PolicyObserved.Egress))
			}
		}
	}
	if !measured || r.Verdict != Untestable || c.Match != "relative" {
		return
	}
	var present, excluded []string
	for _, cni := range c.Order {
		if _, ok := env.Place(cni); ok {
			present = append(present, cni)
		} else if isExcluded(env, cni) {
			present = append(present, cni)
			excluded = append(excluded, cni)
		}
	}
	if len(present) < 2 {
		return
	}
	if got := relativeOrder(env, present, excluded); orderDiff(present, got) == "" {
		r.Reason += fmt.Sprintf("; among the CNIs that ran here the claimed order holds: %s", strings.Join(got, " > "))
	}
}
