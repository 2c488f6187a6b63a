package report

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/results"
)

// policyScenario is the NetworkPolicy scenario's name in results (package
// scenario/policy, which this package does not import).
const policyScenario = "policy"

// PolicyTables is the NetworkPolicy part of a run laid out once, for
// report.md and report.html alike: the functional matrix (a column per lab
// and provider, a verdict per case), the notes naming what failed, and the
// cost of K policies.
type PolicyTables struct {
	MatrixHead []string
	Matrix     [][]string
	Notes      []string
	CostHead   []string
	Cost       [][]string
}

// policyColumn is one lab of one provider: a netns,kind run has a "cilium"
// of each, and a column keyed by the name alone showed one provider's
// cases under the other's verdict.
type policyColumn struct{ lab, provider string }

func (c policyColumn) has(lab, provider string) bool { return c.lab == lab && c.provider == provider }

// Policy lays out the run's NetworkPolicy measurements; nil when it has
// none.
func Policy(doc *results.Document) *PolicyTables {
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
		return nil
	}
	var providers []string
	for _, l := range doc.Labs {
		if !contains(providers, l.Provider) {
			providers = append(providers, l.Provider)
		}
	}
	name := func(lab, provider string) string {
		if len(providers) > 1 {
			return lab + " (" + provider + ")"
		}
		return lab
	}
	var cols []policyColumn
	for _, l := range doc.Labs {
		for _, m := range append(slices.Clone(cases), notModelled...) {
			c := policyColumn{l.Name, l.Provider}
			if c.has(m.Lab, m.Provider) && !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
	}
	pt := &PolicyTables{MatrixHead: []string{"case", "required"}}
	for _, c := range cols {
		pt.MatrixHead = append(pt.MatrixHead, name(c.lab, c.provider))
	}
	byKey := map[policyColumn]map[string]results.Measurement{}
	for _, m := range cases {
		c := policyColumn{m.Lab, m.Provider}
		if byKey[c] == nil {
			byKey[c] = map[string]results.Measurement{}
		}
		byKey[c][m.Test] = m
	}
	for _, tc := range caseOrder {
		row := []string{tc, "yes"}
		for _, c := range cols {
			m, ok := byKey[c][tc]
			switch {
			case !ok:
				row = append(row, "–")
			case m.Error != "":
				row = append(row, "error")
			default:
				if m.Params["required"] == "false" {
					row[1] = "no*"
				}
				row = append(row, caseCell(m))
			}
		}
		pt.Matrix = append(pt.Matrix, row)
	}
	if len(summaries) > 0 || len(notModelled) > 0 {
		row := []string{"lab verdict", ""}
		for _, c := range cols {
			cell := "–"
			for _, s := range summaries {
				if c.has(s.Lab, s.Provider) {
					cell = fmt.Sprintf("%s (%.0f%% of cases pass)", s.Params["verdict"], s.Metrics["policy_cases_passed_pct"])
				}
			}
			for _, n := range notModelled {
				if c.has(n.Lab, n.Provider) {
					cell = "policy not modelled"
				}
			}
			row = append(row, cell)
		}
		pt.Matrix = append(pt.Matrix, row)
	}
	for _, m := range cases {
		who := name(m.Lab, m.Provider)
		switch {
		case m.Error != "":
			pt.Notes = append(pt.Notes, fmt.Sprintf("%s, %s: error: %s", who, m.Test, m.Error))
		case m.Params["verdict"] == "fail":
			pt.Notes = append(pt.Notes, fmt.Sprintf("%s fails %s: %s", who, m.Test, m.Params["mismatches"]))
		case m.Test == "established-under-deny":
			kept := "kept answering"
			if m.Metrics["established_transactions_failed"] > 0 {
				kept = "was cut"
			}
			pt.Notes = append(pt.Notes, fmt.Sprintf("%s: the connection opened before the deny %s (%.0f transactions answered, %.0f failed)", who, kept, m.Metrics["established_transactions_ok"], m.Metrics["established_transactions_failed"]))
		}
	}
	for _, n := range notModelled {
		pt.Notes = append(pt.Notes, fmt.Sprintf("%s: %s", name(n.Lab, n.Provider), n.NotReproducible))
	}
	if len(cost) > 0 {
		pt.CostHead = []string{"lab", "K", "connect p50 µs", "p99 µs", "p50 × K=0", "dts Gbit/s", "sts Gbit/s", "API create s", "programmed s", "agent lag s", "agent programmed", "n (coverage)"}
		for _, r := range cost {
			pt.Cost = append(pt.Cost, []string{name(r.lab, r.provider), strconv.Itoa(r.k),
				r.f(results.FirstPacketP50, "%.1f", 1), r.f(results.FirstPacketP99, "%.1f", 1), r.f(results.FirstPacketP50RatioK, "%.2f", 1),
				r.f("dts/"+results.ThroughputBps, "%.2f", 1e9), r.f("sts/"+results.ThroughputBps, "%.2f", 1e9),
				r.f(results.PolicyApplyS, "%.2f", 1), r.f(results.PolicyProgramS, "%.2f", 1), r.f(results.PolicyProgramAfterS, "%.2f", 1),
				r.programmed(), r.count()})
		}
	}
	return pt
}

// PolicyCostIntro says what the cost table holds.
const PolicyCostIntro = "K policies in the server's namespace (a default deny, the allow on the measured path, and a tenant's mix of pod-selector, namespace-selector, ipBlock and matchExpressions/egress rules, a quarter of them selecting the server). First-packet latency: fresh TCP connects through the allowed path (cross-node); dts/sts: iperf3, one stream, pod IP and Service. API create: the client creating the K objects; programmed: from the first create until an allowed/denied probe pair holds (the pair's own policies are created last); agent lag: from the last create until then. Each cell is the median over the repeats with its order-statistic interval in brackets, whose coverage is in the last column; the agent's programmed state is the median count."

// PolicyMatrixIntro says what the matrix holds.
const PolicyMatrixIntro = "Each case applies networking/v1 policies and probes from pods with cnilab's probe (TCP request/response, UDP datagram and echo); a case passes when every check holds within the converge timeout. `not-enforced`: every check that expects a deny saw traffic pass (the CNI enforces no policy: a finding, not a failure). Optional cases (*) are left to the implementation by the API and never exclude a CNI. Times are from the policy's creation until the verdict held, to within one probe round."

// PolicySection is the NetworkPolicy part of report.md; "" when the run
// has no policy measurements.
func PolicySection(doc *results.Document) string {
	pt := Policy(doc)
	if pt == nil {
		return ""
	}
	b := &strings.Builder{}
	table := func(head []string, rows [][]string) {
		fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
		for _, r := range rows {
			cells := make([]string, len(r))
			for i, c := range r {
				cells[i] = escape(c)
			}
			fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	if len(pt.Matrix) > 0 {
		b.WriteString("\n## NetworkPolicy — functional matrix (policy)\n\n" + PolicyMatrixIntro + "\n\n")
		table(pt.MatrixHead, pt.Matrix)
	}
	if len(pt.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range pt.Notes {
			b.WriteString("- " + escape(n) + "\n")
		}
	}
	if len(pt.Cost) > 0 {
		b.WriteString("\n## NetworkPolicy — cost of K policies (policy)\n\n" + PolicyCostIntro + "\n\n")
		table(pt.CostHead, pt.Cost)
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
	lab, provider string
	k             int
	vals          map[string]results.Summary
}

// f is the median over repeats with its interval when there is one.
func (r costRow) f(key, format string, scale float64) string {
	s, ok := r.vals[key]
	if !ok {
		return "–"
	}
	out := fmt.Sprintf(format, s.Median/scale)
	if s.N >= 2 && s.CIMethod != "" && (s.CI95Low != s.Median || s.CI95High != s.Median) {
		out += fmt.Sprintf(" ["+format+"–"+format+"]", s.CI95Low/scale, s.CI95High/scale)
	}
	return out
}

// count is the repeats behind the row and the coverage of its intervals.
func (r costRow) count() string {
	n, lvl := 0, 0.0
	for _, s := range r.vals {
		if s.N > n {
			n, lvl = s.N, s.CILevel
		}
	}
	if n < 2 || lvl == 0 {
		return fmt.Sprintf("%d (no interval)", n)
	}
	return fmt.Sprintf("%d (%s)", n, level(lvl))
}

func (r costRow) programmed() string {
	var parts []string
	for _, k := range []struct{ metric, label string }{{results.RuleCount, "iptables rules"}, {results.ChainCount, "chains"}, {"set_count", "ipsets"}, {results.MapEntryCount, "set/map entries"}} {
		if s, ok := r.vals[k.metric]; ok {
			parts = append(parts, fmt.Sprintf("%.0f %s", s.Median, k.label))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

// costRows gathers the cost summaries per lab, provider and K: connect
// figures under their metric names, throughput under dts/ and sts/.
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
		key := fmt.Sprintf("%s/%s/%06d", s.Lab, s.Provider, k)
		r := by[key]
		if r == nil {
			r = &costRow{lab: s.Lab, provider: s.Provider, k: k, vals: map[string]results.Summary{}}
			by[key] = r
		}
		name := s.Metric
		if strings.HasSuffix(s.Test, "-dts") || strings.HasSuffix(s.Test, "-sts") {
			name = s.Test[len(s.Test)-3:] + "/" + s.Metric
		}
		r.vals[name] = s
	}
	order := map[policyColumn]int{}
	for i, l := range doc.Labs {
		order[policyColumn{l.Name, l.Provider}] = i
	}
	out := make([]costRow, 0, len(by))
	for _, r := range by {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := policyColumn{out[i].lab, out[i].provider}, policyColumn{out[j].lab, out[j].provider}
		if a != b {
			return order[a] < order[b]
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
