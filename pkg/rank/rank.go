package rank

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/cnilab/cnilab/pkg/dataset"
	"github.com/cnilab/cnilab/pkg/facts"
	"github.com/cnilab/cnilab/pkg/results"
)

// Evidence is one row behind a place: a figure, a fact or a requirement.
type Evidence struct {
	Kind      string `json:"kind"` // metric, fact, requirement, note
	Criterion string `json:"criterion,omitempty"`
	// Value is the figure or fact as a person reads it (27.18 Gbit/s).
	Value string   `json:"value,omitempty"`
	Raw   *float64 `json:"raw,omitempty"`
	Unit  string   `json:"unit,omitempty"`
	// Source names provider and fidelity, the published source, or the
	// fact's URL.
	Source       string   `json:"source,omitempty"`
	Normalized   *float64 `json:"normalized,omitempty"`
	Weight       float64  `json:"weight,omitempty"`
	Contribution float64  `json:"contribution"`
	Detail       string   `json:"detail,omitempty"`
}

// Entry is one place in an environment's ranking.
type Entry struct {
	Place int     `json:"place"`
	CNI   string  `json:"cni"`
	Score float64 `json:"score"`
	// Variant is the configuration that earned the place (the CNI's best).
	Variant  string     `json:"variant"`
	Options  string     `json:"options,omitempty"`
	Evidence []Evidence `json:"evidence"`
	// Others are the CNI's other eligible variants and their scores.
	Others []VariantScore `json:"other_variants,omitempty"`
}

// VariantScore is a variant and its score.
type VariantScore struct {
	Variant string  `json:"variant"`
	Score   float64 `json:"score"`
}

// Exclusion says which requirement removed a CNI.
type Exclusion struct {
	CNI      string     `json:"cni"`
	Reason   string     `json:"reason"`
	Evidence []Evidence `json:"evidence"`
}

// Weight is one criterion as applied, for the report's weights table.
type Weight struct {
	Criterion string  `json:"criterion"`
	Weight    float64 `json:"weight"`
	Rule      string  `json:"rule"`
	Why       string  `json:"why,omitempty"`
	// Skipped says why a criterion did not count (no candidate has it).
	Skipped string `json:"skipped,omitempty"`
}

// EnvResult is the ranking of one environment.
type EnvResult struct {
	Name        string      `json:"name"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Variants    string      `json:"variants"`
	Requires    []string    `json:"requires,omitempty"`
	Weights     []Weight    `json:"weights"`
	Ranking     []Entry     `json:"ranking"`
	Excluded    []Exclusion `json:"excluded,omitempty"`
	// NotEligible lists CNIs present in the data without a variant of the
	// kind this environment compares (no encrypted variant, ...).
	NotEligible []string `json:"not_eligible,omitempty"`
	// DataOnly is the CNI order with the requirements switched off: what
	// the figures and weighted facts alone say.
	DataOnly []string `json:"data_only_order,omitempty"`
}

// Order returns the ranked CNIs in place order.
func (r *EnvResult) Order() []string {
	out := make([]string, len(r.Ranking))
	for i, e := range r.Ranking {
		out[i] = e.CNI
	}
	return out
}

// Place returns the entry of a CNI.
func (r *EnvResult) Place(cni string) (Entry, bool) {
	for _, e := range r.Ranking {
		if e.CNI == cni {
			return e, true
		}
	}
	return Entry{}, false
}

// Exclusion returns why a CNI was excluded, if it was.
func (r *EnvResult) Exclusion(cni string) (Exclusion, bool) {
	for _, e := range r.Excluded {
		if e.CNI == cni {
			return e, true
		}
	}
	return Exclusion{}, false
}

func eligible(env Environment, c *Candidate) bool {
	switch env.Variants {
	case "encrypted":
		return c.Encryption != "" && c.Encryption != "none"
	case "unencrypted":
		return c.Encryption == "" || c.Encryption == "none"
	}
	return true
}

// effectiveFact is the fact a requirement checks: the lab's fact, except
// that a NetworkPolicy test the data itself failed overrides a "yes" (a
// measured failure beats documentation).
func effectiveFact(c *Candidate, name string) *facts.Fact {
	f := c.Facts.Get(name)
	if name == "network_policy" && c.PolicyObserved != nil && !c.PolicyObserved.Enforced() && (f == nil || f.Value != "no") {
		return &facts.Fact{Value: "no", Source: "the data's own NetworkPolicy test",
			Note: fmt.Sprintf("variant %s: ingress %s, egress %s", c.Name, c.PolicyObserved.Ingress, c.PolicyObserved.Egress)}
	}
	return f
}

// check evaluates a requirement; when it fails, the evidence says why.
func check(r Requirement, c *Candidate) (bool, []Evidence) {
	if len(r.Any) > 0 {
		var all []Evidence
		for _, a := range r.Any {
			ok, ev := check(a, c)
			if ok {
				return true, nil
			}
			all = append(all, ev...)
		}
		return false, all
	}
	f := effectiveFact(c, r.Fact)
	if f != nil && slices.Contains(r.In, f.Value) {
		return true, nil
	}
	ev := Evidence{Kind: "requirement", Criterion: r.String(), Value: "unknown", Detail: "no fact recorded for " + c.CNI + " (unknown is not yes)"}
	if f != nil {
		ev.Value, ev.Source, ev.Detail = f.Value, f.Source, f.Note
	}
	return false, []Evidence{ev}
}

// Rank orders the CNIs of the input for one environment.
func Rank(in *Input, env Environment) EnvResult {
	res := EnvResult{Name: env.Name, Title: env.Title, Description: env.Description, Variants: env.Variants}
	for _, r := range env.Requires {
		s := r.String()
		if r.Why != "" {
			s += " (" + r.Why + ")"
		}
		res.Requires = append(res.Requires, s)
	}
	var pool, passed []*Candidate
	failed := map[string][]Evidence{} // cni -> evidence of its variants' failures
	present := map[string]bool{}
	for _, c := range in.Candidates {
		present[c.CNI] = true
		if !eligible(env, c) {
			continue
		}
		pool = append(pool, c)
		ok := true
		for _, r := range env.Requires {
			if pass, ev := check(r, c); !pass {
				ok = false
				for _, e := range ev {
					if !slices.ContainsFunc(failed[c.CNI], func(x Evidence) bool { return x.Criterion == e.Criterion && x.Value == e.Value }) {
						failed[c.CNI] = append(failed[c.CNI], e)
					}
				}
			}
		}
		if ok {
			passed = append(passed, c)
		}
	}
	scores, weights := score(env.Criteria, passed)
	res.Weights = weights
	res.Ranking = collapse(passed, scores)
	ranked := map[string]bool{}
	for _, e := range res.Ranking {
		ranked[e.CNI] = true
	}
	for _, cni := range sortedKeys(failed) {
		if ranked[cni] {
			continue // another variant of the CNI passed
		}
		var reasons []string
		for _, e := range failed[cni] {
			reasons = append(reasons, fmt.Sprintf("%s: %s is %s", e.Criterion, cni, e.Value))
		}
		res.Excluded = append(res.Excluded, Exclusion{CNI: cni, Reason: strings.Join(reasons, "; "), Evidence: failed[cni]})
	}
	inPool := map[string]bool{}
	for _, c := range pool {
		inPool[c.CNI] = true
	}
	for _, cni := range sortedKeys(present) {
		if !inPool[cni] {
			res.NotEligible = append(res.NotEligible, fmt.Sprintf("%s: no %s variant in %s", cni, env.Variants, in.Name))
		}
	}
	if len(res.Excluded) > 0 {
		all, _ := score(env.Criteria, pool)
		for _, e := range collapse(pool, all) {
			res.DataOnly = append(res.DataOnly, e.CNI)
		}
	}
	return res
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type scored struct {
	score    float64
	evidence []Evidence
}

// collapse keeps each CNI's best variant, ordered by score (ties by name so
// the output is stable).
func collapse(cands []*Candidate, scores map[*Candidate]scored) []Entry {
	best := map[string]*Candidate{}
	for _, c := range cands {
		b, ok := best[c.CNI]
		if !ok || scores[c].score > scores[b].score || (scores[c].score == scores[b].score && c.Name < b.Name) {
			best[c.CNI] = c
		}
	}
	var out []Entry
	for cni, c := range best {
		e := Entry{CNI: cni, Variant: c.Name, Options: c.Options, Score: round2(scores[c].score), Evidence: scores[c].evidence}
		for _, o := range cands {
			if o.CNI == cni && o != c {
				e.Others = append(e.Others, VariantScore{Variant: o.Name, Score: round2(scores[o].score)})
			}
		}
		sort.Slice(e.Others, func(i, j int) bool { return e.Others[i].Score > e.Others[j].Score })
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].CNI < out[j].CNI
	})
	for i := range out {
		out[i].Place = i + 1
	}
	return out
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// raw is one candidate's input to one criterion before normalisation.
type raw struct {
	ok     bool
	num    float64 // numeric value (metric or numeric fact)
	direct *float64
	ev     Evidence
}

// score computes every candidate's weighted, normalised score over the
// criteria: 100 × Σ weight·normalised / Σ weight of the criteria that count.
func score(criteria []Criterion, cands []*Candidate) (map[*Candidate]scored, []Weight) {
	out := map[*Candidate]scored{}
	var weights []Weight
	total := 0.0
	for _, cr := range criteria {
		w := Weight{Criterion: cr.Name, Weight: cr.Weight, Rule: cr.Describe(), Why: cr.Why}
		vals := make([]raw, len(cands))
		any := false
		for i, c := range cands {
			vals[i] = gather(cr, c)
			any = any || vals[i].ok
		}
		if !any {
			w.Skipped = "no candidate has this figure or fact in the data"
			weights = append(weights, w)
			continue
		}
		weights = append(weights, w)
		total += cr.Weight
		normalise(cr, vals)
		for i, c := range cands {
			s := out[c]
			ev := vals[i].ev
			ev.Weight = cr.Weight
			if vals[i].ok {
				n := *vals[i].direct
				ev.Normalized = &n
				ev.Contribution = cr.Weight * n
				s.score += ev.Contribution
			} else {
				zero := 0.0
				ev.Normalized = &zero
				if ev.Detail == "" {
					ev.Detail = "no figure in the data: counts 0"
				}
			}
			s.evidence = append(s.evidence, ev)
			out[c] = s
		}
	}
	for c, s := range out {
		if total > 0 {
			s.score = 100 * s.score / total
			for i := range s.evidence {
				s.evidence[i].Contribution = round2(100 * s.evidence[i].Contribution / total)
			}
		}
		out[c] = s
	}
	return out, weights
}

var factScores = map[string]float64{"yes": 1, "partial": 0.5, "no": 0}

// gather reads one candidate's value for a criterion.
func gather(cr Criterion, c *Candidate) raw {
	ev := Evidence{Criterion: cr.Name}
	if cr.Fact != "" {
		ev.Kind = "fact"
		f := c.Facts.Get(cr.Fact)
		if f == nil {
			ev.Value = "unknown"
			ev.Detail = "no fact recorded for " + c.CNI + ": counts 0"
			return raw{ev: ev}
		}
		ev.Value, ev.Source, ev.Detail = f.Value, f.Source, f.Note
		switch {
		case cr.Contains != "":
			v := 0.0
			if slices.Contains(f.List(), cr.Contains) {
				v = 1
			}
			return raw{ok: true, direct: &v, ev: ev}
		case cr.Number != "":
			n, ok := f.Number()
			if !ok {
				ev.Detail = fmt.Sprintf("%q is not a number: counts 0", f.Value)
				return raw{ev: ev}
			}
			return raw{ok: true, num: n, ev: ev}
		}
		v, ok := factScores[f.Value]
		if !ok {
			ev.Detail = fmt.Sprintf("%q is not yes/partial/no: counts 0", f.Value)
			return raw{ev: ev}
		}
		return raw{ok: true, direct: &v, ev: ev}
	}
	ev.Kind = "metric"
	var v Value
	var ok bool
	if cr.Services != "" {
		var p ScalePoint
		p, ok = c.scaleMetric(cr.Metric, cr.Services)
		v = p.Value
		if ok {
			ev.Detail = fmt.Sprintf("at %d services, proxy %s", p.Services, p.Proxy)
		}
	} else {
		v, ok = c.Metric(cr.Test, cr.Metric)
	}
	if !ok {
		return raw{ev: ev}
	}
	x := v.V
	ev.Raw, ev.Unit, ev.Source = &x, v.Unit, v.Source
	ev.Value = Format(cr.Metric, v.V)
	if cr.Metric == results.MemUsedBytes {
		if o, has := c.Metric(cr.Test, dataset.MemOverheadBytes); has {
			ev.Detail = fmt.Sprintf("%s over the bare-metal/host baseline", Format(dataset.MemOverheadBytes, o.V))
		}
	}
	// A measured agent footprint shows the lab's nodes as a whole beside it.
	agent, node := "", ""
	switch cr.Metric {
	case results.MemUsedBytes:
		agent, node = results.AgentMemBytes, results.NodeMemBytes
	case results.CPUCores:
		agent, node = results.AgentCPUCores, results.NodeCPUCores
	}
	if a, ok := c.Metric(cr.Test, agent); ok && agent != "" && a.V == v.V {
		ev.Detail = "the CNI's own pods"
		if n, ok := c.Metric(cr.Test, node); ok {
			ev.Detail += "; the lab's nodes as a whole: " + Format(node, n.V)
		}
	}
	return raw{ok: true, num: v.V, ev: ev}
}

// normalise maps numeric values onto [0,1], 1 being the best candidate.
func normalise(cr Criterion, vals []raw) {
	lower := cr.lowerIsBetter()
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if v.ok && v.direct == nil {
			lo, hi = math.Min(lo, v.num), math.Max(hi, v.num)
		}
	}
	for i := range vals {
		v := &vals[i]
		if !v.ok || v.direct != nil {
			continue
		}
		var n float64
		switch {
		case cr.Normalize == "ratio" && !lower:
			n = safeDiv(v.num, hi)
		case cr.Normalize == "ratio" && lower:
			n = safeDiv(lo, v.num)
		case hi == lo:
			n = 1
		case lower:
			n = (hi - v.num) / (hi - lo)
		default:
			n = (v.num - lo) / (hi - lo)
		}
		n = math.Round(n*1000) / 1000
		v.direct = &n
	}
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return 0
	}
	return a / b
}

// Format prints a figure in the unit people read it in.
func Format(metric string, v float64) string {
	switch metric {
	case results.ThroughputBps:
		return fmt.Sprintf("%.2f Gbit/s", v/1e9)
	case results.MemUsedBytes, dataset.MemOverheadBytes:
		return fmt.Sprintf("%.0f MB", v/1e6)
	case results.AgentMemBytes, results.NodeMemBytes, results.PodsMemBytes:
		return fmt.Sprintf("%.1f MB", v/1e6)
	case results.CPUCores, results.AgentCPUCores, results.NodeCPUCores, results.PodsCPUCores:
		return fmt.Sprintf("%.3f cores", v)
	case results.MCPUPerGbit:
		return fmt.Sprintf("%.1f mCPU per Gbit/s", v)
	case results.UDPLossPct:
		return fmt.Sprintf("%.2f %% lost", v)
	case results.Retransmits:
		return fmt.Sprintf("%.0f retransmits", v)
	}
	if u := results.Unit(metric); u != "" {
		return fmt.Sprintf("%.4g %s", v, u)
	}
	return fmt.Sprintf("%.4g", v)
}
