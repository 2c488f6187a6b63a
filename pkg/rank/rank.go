package rank

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
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
	// CI95Low/CI95High bound Raw where the data has repeats (the median's
	// own interval); CILevel is that interval's actual coverage (0.75 at
	// n = 3). All absent for published figures and facts.
	CI95Low  *float64 `json:"ci95_low,omitempty"`
	CI95High *float64 `json:"ci95_high,omitempty"`
	CILevel  float64  `json:"ci_level,omitempty"`
	// Source names provider and fidelity, the published source, or the
	// fact's URL.
	Source     string   `json:"source,omitempty"`
	Normalized *float64 `json:"normalized,omitempty"`
	// NormalizedLow/High are the interval mapped the same way (clamped to
	// 0–1); they decide ties.
	NormalizedLow  *float64 `json:"normalized_low,omitempty"`
	NormalizedHigh *float64 `json:"normalized_high,omitempty"`
	Weight         float64  `json:"weight,omitempty"`
	Contribution   float64  `json:"contribution"`
	Detail         string   `json:"detail,omitempty"`
	// label and metric name the figure in a tie's explanation.
	label, metric string
}

// Entry is one place in an environment's ranking.
type Entry struct {
	// Place is shared by tied entries: 1, 1, 3 when the first two tie.
	Place int     `json:"place"`
	CNI   string  `json:"cni"`
	Score float64 `json:"score"`
	// ScoreLow/ScoreHigh is the score with every figure at the low and the
	// high end of its interval (equal to Score without intervals).
	ScoreLow  float64 `json:"score_low"`
	ScoreHigh float64 `json:"score_high"`
	// TiedWith names the other CNIs sharing this place: their score
	// intervals overlap this one's, directly or through a chain of
	// overlaps. Tie says which figures could not separate this entry from
	// the one above it.
	TiedWith []string `json:"tied_with,omitempty"`
	Tie      string   `json:"tie,omitempty"`
	// ModelScoreLow/High is the score interval once every netns figure
	// also carries its model's measured error against the real CNI (the
	// figure's real-CNI counterpart may lie anywhere the error allows);
	// equal to ScoreLow/High where no figure has a model error.
	ModelScoreLow  float64 `json:"model_score_low"`
	ModelScoreHigh float64 `json:"model_score_high"`
	// WithinModelError, on an entry placed below the one above it, says
	// that the two would overlap within the model error: the order rests
	// on differences smaller than how far the models are known to sit
	// from the real CNIs.
	WithinModelError string `json:"within_model_error,omitempty"`
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
	score, lo, hi float64
	// mlo, mhi widen lo, hi by the model errors the figures carry.
	mlo, mhi float64
	evidence []Evidence
}

// tieEpsilon absorbs floating-point noise when two scores without
// intervals are compared: equal figures must tie, not split on the 15th
// digit.
const tieEpsilon = 1e-9

// collapse keeps each CNI's best variant, ordered by score (equal scores by
// name so the output is stable), and gives tied entries one shared place.
func collapse(cands []*Candidate, scores map[*Candidate]scored) []Entry {
	best := map[string]*Candidate{}
	for _, c := range cands {
		b, ok := best[c.CNI]
		if !ok || scores[c].score > scores[b].score || (scores[c].score == scores[b].score && c.Name < b.Name) {
			best[c.CNI] = c
		}
	}
	var out []Entry
	raw := map[string]scored{}
	for cni, c := range best {
		s := scores[c]
		raw[cni] = s
		e := Entry{CNI: cni, Variant: c.Name, Options: c.Options, Score: round2(s.score), ScoreLow: round2(s.lo), ScoreHigh: round2(s.hi),
			ModelScoreLow: round2(s.mlo), ModelScoreHigh: round2(s.mhi), Evidence: s.evidence}
		for _, o := range cands {
			if o.CNI == cni && o != c {
				e.Others = append(e.Others, VariantScore{Variant: o.Name, Score: round2(scores[o].score)})
			}
		}
		sort.Slice(e.Others, func(i, j int) bool { return e.Others[i].Score > e.Others[j].Score })
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := raw[out[i].CNI].score, raw[out[j].CNI].score
		if math.Abs(a-b) > tieEpsilon {
			return a > b
		}
		return out[i].CNI < out[j].CNI
	})
	placeTies(out, raw)
	markModelError(out, raw)
	return out
}

// markModelError notes each entry that its noise interval places below the
// one above it but whose model-error interval overlaps it.
func markModelError(out []Entry, raw map[string]scored) {
	for i := 1; i < len(out); i++ {
		if out[i].Place == out[i-1].Place {
			continue
		}
		a, b := raw[out[i-1].CNI], raw[out[i].CNI]
		if a.mlo <= b.mhi+tieEpsilon && (a.mlo != a.lo || b.mhi != b.hi) {
			out[i].WithinModelError = fmt.Sprintf("within model error: %s above %s by %.1f points, but with each netns figure's measured model error the scores span %.1f–%.1f and %.1f–%.1f",
				out[i-1].CNI, out[i].CNI, a.score-b.score, a.mlo, a.mhi, b.mlo, b.mhi)
		}
	}
}

// overlaps says whether two score intervals share a point.
func overlaps(a, b scored) bool {
	return a.lo <= b.hi+tieEpsilon && b.lo <= a.hi+tieEpsilon
}

// placeTies groups entries (sorted by score) whose score intervals overlap:
// an entry joins the group above it when its interval overlaps that of any
// member, so ties chain. Every member takes the group's first place.
func placeTies(out []Entry, raw map[string]scored) {
	start := 0
	for i := range out {
		if i > 0 {
			joined := false
			for j := start; j < i; j++ {
				if overlaps(raw[out[j].CNI], raw[out[i].CNI]) {
					joined = true
					break
				}
			}
			if !joined {
				start = i
			} else {
				out[i].Tie = tieReason(out[i-1], out[i])
			}
		}
		out[i].Place = start + 1
	}
	for i := range out {
		for j := range out {
			if i != j && out[i].Place == out[j].Place {
				out[i].TiedWith = append(out[i].TiedWith, out[j].CNI)
			}
		}
	}
}

// tieReason names the figures that could not separate b from a, the entry
// above it: the criteria where their contributions differ and both carry
// an interval, largest difference first.
func tieReason(a, b Entry) string {
	type gap struct {
		x, y Evidence
		d    float64
	}
	var gaps []gap
	for _, x := range a.Evidence {
		for _, y := range b.Evidence {
			if x.Criterion != y.Criterion || x.CI95Low == nil || y.CI95Low == nil {
				continue
			}
			if d := math.Abs(x.Contribution - y.Contribution); d > 0.005 {
				gaps = append(gaps, gap{x, y, d})
			}
		}
	}
	if len(gaps) == 0 {
		if a.Score == b.Score {
			return "equal scores"
		}
		return fmt.Sprintf("scores %.1f [%.1f–%.1f] vs %.1f [%.1f–%.1f]", a.Score, a.ScoreLow, a.ScoreHigh, b.Score, b.ScoreLow, b.ScoreHigh)
	}
	sort.SliceStable(gaps, func(i, j int) bool { return gaps[i].d > gaps[j].d })
	var parts []string
	for _, g := range gaps[:min(2, len(gaps))] {
		parts = append(parts, fmt.Sprintf("%s %s vs %s", g.x.label, withInterval(g.x, false), withInterval(g.y, true)))
	}
	return strings.Join(parts, "; ")
}

// withInterval prints an evidence figure as "12.45 [8.05–15.73]", with the
// unit after it when unit is set.
func withInterval(e Evidence, unit bool) string {
	if e.Raw == nil {
		return e.Value
	}
	num, u, _ := strings.Cut(Format(e.metric, *e.Raw), " ")
	s := num
	if e.CI95Low != nil && e.CI95High != nil {
		lo, _, _ := strings.Cut(Format(e.metric, *e.CI95Low), " ")
		hi, _, _ := strings.Cut(Format(e.metric, *e.CI95High), " ")
		s += fmt.Sprintf(" [%s–%s]", lo, hi)
	}
	if unit && u != "" {
		s += " " + u
	}
	return s
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// raw is one candidate's input to one criterion before normalisation.
type raw struct {
	ok     bool
	num    float64 // numeric value (metric or numeric fact)
	lo, hi float64 // num's interval; both 0 when there is none
	// best is the pool's best value the ratio was taken against (set by
	// normalise for numeric values).
	best   float64
	direct *float64
	ev     Evidence
	// me is the model error the figure carries (netns figures with a
	// fidelity row), nil otherwise.
	me *ModelError
}

func (v raw) hasInterval() bool { return v.hi > v.lo }

// modelInterval is normInterval widened by the figure's model error.
func (v raw) modelInterval(cr Criterion) (float64, float64) {
	lo, hi := v.normInterval(cr)
	if v.me == nil || v.direct == nil {
		return lo, hi
	}
	a, b := v.num, v.num
	if v.hasInterval() {
		a, b = v.lo, v.hi
	}
	a, b = v.me.realInterval(a, b)
	x1, lower := transformed(cr, a)
	x2, _ := transformed(cr, b)
	r1, r2 := ratio(x1, v.best, lower), ratio(x2, v.best, lower)
	return math.Min(lo, math.Min(r1, r2)), math.Max(hi, math.Max(r1, r2))
}

// score computes every candidate's weighted, normalised score over the
// criteria: 100 × Σ weight·normalised / Σ weight of the criteria that
// count, and the same sum over the normalised intervals' ends.
func score(criteria []Criterion, cands []*Candidate) (map[*Candidate]scored, []Weight) {
	out := map[*Candidate]scored{}
	var weights []Weight
	total := 0.0
	for _, cr := range criteria {
		w := Weight{Criterion: cr.Name, Weight: cr.Weight, Rule: cr.Describe(), Why: cr.Why}
		at, why := scaleSize(cr, cands)
		vals := make([]raw, len(cands))
		any := false
		for i, c := range cands {
			vals[i] = gather(cr, c, at)
			any = any || vals[i].ok
		}
		if !any {
			w.Skipped = "no candidate has this figure or fact in the data"
			if why != "" {
				w.Skipped = why
			}
			weights = append(weights, w)
			continue
		}
		if at > 0 && cr.Services == "max" {
			w.Rule += fmt.Sprintf("; compared at %d services, the largest every candidate reached", at)
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
				lo, hi := vals[i].normInterval(cr)
				ev.Normalized = &n
				if vals[i].hasInterval() {
					ev.NormalizedLow, ev.NormalizedHigh = &lo, &hi
				}
				ev.Contribution = cr.Weight * n
				s.score += ev.Contribution
				s.lo += cr.Weight * lo
				s.hi += cr.Weight * hi
				mlo, mhi := vals[i].modelInterval(cr)
				s.mlo += cr.Weight * mlo
				s.mhi += cr.Weight * mhi
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
			s.lo = 100 * s.lo / total
			s.hi = 100 * s.hi / total
			s.mlo = 100 * s.mlo / total
			s.mhi = 100 * s.mhi / total
			for i := range s.evidence {
				s.evidence[i].Contribution = round2(100 * s.evidence[i].Contribution / total)
			}
		}
		out[c] = s
	}
	return out, weights
}

var factScores = map[string]float64{"yes": 1, "partial": 0.5, "no": 0}

// label is the short name of a criterion's figure in a tie ("dts",
// "idle mem_used_bytes", "first_packet_p50_us@10000").
func label(cr Criterion, at int) string {
	switch {
	case cr.Services != "":
		return fmt.Sprintf("%s@%d", cr.Metric, at)
	case cr.Metric == results.ThroughputBps:
		return cr.Test
	}
	return cr.Test + " " + cr.Metric
}

// gather reads one candidate's value for a criterion; at is the service
// count a services-scale criterion compares at.
func gather(cr Criterion, c *Candidate, at int) raw {
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
	ev.label, ev.metric = label(cr, at), cr.Metric
	var v Value
	var ok bool
	if cr.Services != "" {
		if at <= 0 {
			return raw{ev: ev}
		}
		if reason, failed := c.scaleFailure(cr.Metric, at); failed {
			zero := 0.0
			ev.Value = "failed"
			ev.Detail = fmt.Sprintf("failed at %d services (proxy %s): %s: counts 0", at, c.Services, reason)
			return raw{ok: true, direct: &zero, ev: ev}
		}
		var p ScalePoint
		p, ok = c.scaleAt(cr.Metric, at)
		v = p.Value
		if ok {
			ev.Detail = fmt.Sprintf("at %d services, proxy %s", p.Services, p.Proxy)
		}
	} else {
		v, ok = c.Metric(cr.Test, cr.Metric)
	}
	if !ok {
		if why, left := c.leftOut[cr.Test+"/"+cr.Metric]; left && cr.Services == "" {
			ev.Detail = "left out: " + why + ": counts 0"
		}
		return raw{ev: ev}
	}
	x := v.V
	ev.Raw, ev.Unit, ev.Source = &x, v.Unit, v.Source
	ev.Value = Format(cr.Metric, v.V)
	r := raw{ok: true, num: v.V, ev: ev, me: v.ModelError}
	if v.Hi > v.Lo {
		lo, hi := v.Lo, v.Hi
		r.ev.CI95Low, r.ev.CI95High, r.ev.CILevel = &lo, &hi, v.Level
		r.lo, r.hi = lo, hi
	}
	if cr.Metric == results.MemUsedBytes {
		if o, has := c.Metric(cr.Test, dataset.MemOverheadBytes); has {
			r.ev.Detail = fmt.Sprintf("%s over the bare-metal/host baseline", Format(dataset.MemOverheadBytes, o.V))
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
		r.ev.Detail = "the CNI's own pods"
		if n, ok := c.Metric(cr.Test, node); ok {
			r.ev.Detail += "; the lab's nodes as a whole: " + Format(node, n.V)
		}
	}
	return r
}

// scaleSize is the service count a services-scale criterion compares at:
// the count it names, or for "max" the largest count every candidate with
// services-scale data reached (measured, or tried and failed). Candidates
// without any such data do not hold the others down; they count 0. A
// non-empty why says why there is no such count.
func scaleSize(cr Criterion, cands []*Candidate) (int, string) {
	if cr.Services == "" {
		return 0, ""
	}
	if cr.Services != "max" {
		n, _ := strconv.Atoi(cr.Services) // validated by ParseEnvironments
		return n, ""
	}
	var common map[int]bool
	for _, c := range cands {
		reached := c.scaleSizes(cr.Metric)
		if len(reached) == 0 {
			continue
		}
		if common == nil {
			common = reached
			continue
		}
		for n := range common {
			if !reached[n] {
				delete(common, n)
			}
		}
	}
	if common == nil {
		return 0, ""
	}
	at := 0
	for n := range common {
		at = max(at, n)
	}
	if at == 0 {
		return 0, "no service count that every candidate with services-scale figures reached"
	}
	return at, ""
}

// transformed is the value a criterion compares as a ratio: UDP loss is
// turned into the delivered share (100 − loss %, higher is better), since
// a ratio of loss percentages explodes near 0 % (0.19 % vs 8 % would read
// 0.02) while what the user gets is 99.8 % vs 92 % of the datagrams.
func transformed(cr Criterion, x float64) (float64, bool) {
	lower := cr.lowerIsBetter()
	if cr.Metric == results.UDPLossPct && lower {
		return 100 - x, false
	}
	return x, lower
}

// best returns the best value among the numeric candidates (after
// transformed) and the direction it was taken in.
func best(cr Criterion, vals []raw) (float64, bool) {
	_, lower := transformed(cr, 0)
	b := math.Inf(1)
	if !lower {
		b = math.Inf(-1)
	}
	for _, v := range vals {
		if v.ok && v.direct == nil {
			x, _ := transformed(cr, v.num)
			if lower {
				b = math.Min(b, x)
			} else {
				b = math.Max(b, x)
			}
		}
	}
	return b, lower
}

// ratio maps x onto 0–1 against the best value b: x/b when higher is
// better, b/x when lower is. A value at or past the best is 1 (an
// interval's end can lie beyond the best point, or at 0 for a t-interval
// on a small sample); with a best of 0 or below no ratio exists, and
// anything worse than it is 0.
func ratio(x, b float64, lower bool) float64 {
	switch {
	case lower && x <= b, !lower && x >= b:
		return 1
	case lower && b <= 0, !lower && b <= 0:
		return 0
	case lower:
		return b / x
	}
	return math.Max(0, x/b)
}

// normalise maps numeric values onto 0–1 as a ratio to the best candidate
// (1 = the best): a 12.45 vs 11.10 Gbit/s gap reads 1.00 vs 0.89, and a
// candidate added to the pool changes the others only through the best.
func normalise(cr Criterion, vals []raw) {
	b, lower := best(cr, vals)
	for i := range vals {
		v := &vals[i]
		if !v.ok || v.direct != nil {
			continue
		}
		x, _ := transformed(cr, v.num)
		n := math.Round(ratio(x, b, lower)*1000) / 1000
		v.direct, v.best = &n, b
	}
}

// normInterval maps the value's interval like the value itself (the best
// taken at its point value, so two candidates' intervals keep their
// overlap); without an interval both ends are the normalised value.
func (v raw) normInterval(cr Criterion) (float64, float64) {
	n := *v.direct
	if !v.hasInterval() {
		return n, n
	}
	x1, lower := transformed(cr, v.lo)
	x2, _ := transformed(cr, v.hi)
	a, c := ratio(x1, v.best, lower), ratio(x2, v.best, lower)
	return math.Min(a, c), math.Max(a, c)
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
