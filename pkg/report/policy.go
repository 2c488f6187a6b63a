package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/results"
)

// policyScenario is the NetworkPolicy scenario's name in results (package
// scenario/policy, which this package does not import).
const policyScenario = "policy"

// PolicySection is the NetworkPolicy part of the report: the functional
// matrix (a verdict per case and lab, the checks that did not hold) and
// the cost of K policies. "" when the run has no policy measurements.
func PolicySection(doc *results.Document) string {
	var cases, summaries, notModelled []results.Measurement
	var caseOrder []string
	for _, m := range doc.Measurements {
		if m.Scenario != policyScenario {
			continue
		}
		switch {
		case m.NotReproducible != "":
			if m.Test == "matrix" {
				notModelled = append(notModelled, m)
			}
		case m.Test == "matrix":
			summaries = append(summaries, m)
		case m.Params["case"] != "" || (m.Error != "" && !strings.HasPrefix(m.Test, "k") && m.Test != "cost"):
			cases = append(cases, m)
			if !contains(caseOrder, m.Test) {
				caseOrder = append(caseOrder, m.Test)
			}
		}
	}
	cost := costRows(doc)
	if len(cases) == 0 && len(notModelled) == 0 && len(cost) == 0 {
		return ""
	}
	var labs []string
	for _, l := range doc.Labs {
		for _, m := range append(append([]results.Measurement{}, cases...), notModelled...) {
			if m.Lab == l.Name && !contains(labs, l.Name) {
				labs = append(labs, l.Name)
			}
		}
	}
	b := &strings.Builder{}
	b.WriteString("\n## NetworkPolicy — functional matrix (policy)\n\n")
	b.WriteString("Each case applies networking/v1 policies and probes from pods with cnilab's probe (TCP request/response, UDP datagram and echo); a case passes when every check holds within the converge timeout. `not-enforced`: every check that expects a deny saw traffic pass (the CNI enforces no policy: a finding, not a failure). Optional cases (*) are left to the implementation by the API and never exclude a CNI. Times are from the policy's creation until the verdict held, to within one probe round.\n\n")
	fmt.Fprintf(b, "| case | required | %s |\n|---|---|%s\n", strings.Join(labs, " | "), strings.Repeat("---|", len(labs)))
	byKey := map[string]results.Measurement{}
	for _, m := range cases {
		byKey[m.Lab+"/"+m.Test] = m
	}
	for _, c := range caseOrder {
		req := "yes"
		var cells []string
		for _, l := range labs {
			m, ok := byKey[l+"/"+c]
			switch {
			case !ok:
				cells = append(cells, "–")
			case m.Error != "":
				cells = append(cells, "error")
			default:
				if m.Params["required"] == "false" {
					req = "no*"
				}
				cells = append(cells, caseCell(m))
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", c, req, strings.Join(cells, " | "))
	}
	if len(summaries) > 0 || len(notModelled) > 0 {
		var cells []string
		for _, l := range labs {
			cell := "–"
			for _, s := range summaries {
				if s.Lab == l {
					cell = fmt.Sprintf("**%s** (%.0f%% of cases pass)", s.Params["verdict"], s.Metrics["policy_cases_passed_pct"])
				}
			}
			for _, n := range notModelled {
				if n.Lab == l {
					cell = "policy not modelled"
				}
			}
			cells = append(cells, cell)
		}
		fmt.Fprintf(b, "| **lab verdict** | | %s |\n", strings.Join(cells, " | "))
	}
	var notes []string
	for _, m := range cases {
		switch {
		case m.Error != "":
			notes = append(notes, fmt.Sprintf("- %s, %s: error: %s", m.Lab, m.Test, escape(m.Error)))
		case m.Params["verdict"] == "fail":
			notes = append(notes, fmt.Sprintf("- %s fails %s: %s", m.Lab, m.Test, escape(m.Params["mismatches"])))
		case m.Test == "established-under-deny":
			kept := "kept answering"
			if m.Metrics["established_transactions_failed"] > 0 {
				kept = "was cut"
			}
			notes = append(notes, fmt.Sprintf("- %s: the connection opened before the deny %s (%.0f transactions answered, %.0f failed)", m.Lab, kept, m.Metrics["established_transactions_ok"], m.Metrics["established_transactions_failed"]))
		}
	}
	for _, n := range notModelled {
		notes = append(notes, fmt.Sprintf("- %s: %s", n.Lab, escape(n.NotReproducible)))
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	if len(cost) > 0 {
		b.WriteString("\n## NetworkPolicy — cost of K policies (policy)\n\n")
		b.WriteString("K policies in the server's namespace (a default deny, the allow on the measured path, and a tenant's mix of pod-selector, namespace-selector, ipBlock and matchExpressions/egress rules, a quarter of them selecting the server). First-packet latency: fresh TCP connects through the allowed path (cross-node); dts/sts: iperf3, one stream, pod IP and Service. Programmed: from the first create until an allowed/denied probe pair holds (the pair's own policies are created last). Medians over repeats; n is the repeat count.\n\n")
		b.WriteString("| lab | K | connect p50 µs | p99 µs | p50 × K=0 | dts Gbit/s | sts Gbit/s | API apply s | programmed s | agent programmed | n |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range cost {
			fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", r.lab, r.k,
				r.f(results.FirstPacketP50, "%.1f", 1), r.f(results.FirstPacketP99, "%.1f", 1), r.f("first_packet_p50_ratio_k0", "%.2f", 1),
				r.f("dts/"+results.ThroughputBps, "%.2f", 1e9), r.f("sts/"+results.ThroughputBps, "%.2f", 1e9),
				r.f("policy_apply_s", "%.2f", 1), r.f("policy_program_s", "%.2f", 1), escape(r.programmed()), r.n)
		}
	}
	b.WriteString("\n")
	return b.String()
}

func caseCell(m results.Measurement) string {
	v := m.Params["verdict"]
	var t []string
	for _, k := range []struct{ metric, label string }{{"policy_converge_s", ""}, {"policy_update_allow_s", "allow "}, {"policy_update_deny_s", "deny "}, {"policy_deny_s", "deny "}} {
		if x, ok := m.Metrics[k.metric]; ok && v != "not-enforced" {
			t = append(t, fmt.Sprintf("%s%.1f s", k.label, x))
		}
	}
	if len(t) > 0 {
		v += " (" + strings.Join(t, ", ") + ")"
	}
	return v
}

type costRow struct {
	lab  string
	k    int
	n    int
	vals map[string]float64
}

func (r costRow) f(key, format string, scale float64) string {
	v, ok := r.vals[key]
	if !ok {
		return "–"
	}
	return fmt.Sprintf(format, v/scale)
}

func (r costRow) programmed() string {
	var parts []string
	for _, k := range []struct{ metric, label string }{{results.RuleCount, "iptables rules"}, {results.ChainCount, "chains"}, {"set_count", "ipsets"}, {results.MapEntryCount, "set/map entries"}} {
		if v, ok := r.vals[k.metric]; ok {
			parts = append(parts, fmt.Sprintf("%.0f %s", v, k.label))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

// costRows gathers the cost summaries per lab and K: connect figures
// under their metric names, throughput under dts/ and sts/.
func costRows(doc *results.Document) []costRow {
	by := map[string]*costRow{}
	for _, s := range doc.Summaries {
		if s.Scenario != policyScenario || s.Params["policies"] == "" {
			continue
		}
		k, err := strconv.Atoi(s.Params["policies"])
		if err != nil {
			continue
		}
		key := fmt.Sprintf("%s/%06d", s.Lab, k)
		r := by[key]
		if r == nil {
			r = &costRow{lab: s.Lab, k: k, vals: map[string]float64{}}
			by[key] = r
		}
		name := s.Metric
		if strings.HasSuffix(s.Test, "-dts") || strings.HasSuffix(s.Test, "-sts") {
			name = s.Test[len(s.Test)-3:] + "/" + s.Metric
		}
		r.vals[name] = s.Median
		r.n = max(r.n, s.N)
	}
	order := map[string]int{}
	for i, l := range doc.Labs {
		order[l.Name] = i
	}
	out := make([]costRow, 0, len(by))
	for _, r := range by {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].lab != out[j].lab {
			return order[out[i].lab] < order[out[j].lab]
		}
		return out[i].k < out[j].k
	})
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
