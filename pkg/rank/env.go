// Package rank turns measurements and capability facts into per-environment
// rankings of CNIs, each place backed by the evidence rows that decided it,
// and checks the seed's published claims against the same data.
//
// Everything that decides a ranking is data: environment profiles
// (scenarios/environments.yaml: requirements, criteria, weights), facts
// (labs/*.yaml) and figures (a cnilab results document or a published
// dataset). The code only normalises, weighs and sorts.
//
// # Normalisation
//
// Every numeric criterion is a ratio to the best candidate of the pool:
// value/best when higher is better, best/value when lower is better, so 1
// is the best and a 12.45 vs 11.10 Gbit/s gap reads 1.00 vs 0.89 (min–max
// made it 1 vs 0, and one weak candidate squeezed everyone else). UDP loss
// is compared as the delivered share, 100 − loss %, higher is better: a
// ratio of loss percentages explodes near zero. Numeric facts are ratios
// too; yes/partial/no facts score 1, 0.5, 0. A score is
// 100 × Σ weight·normalised / Σ weight over the criteria that count; a
// candidate without a figure or fact counts 0 on that criterion.
//
// # Ties
//
// A figure with an interval (a cnilab run's median with its CI) is
// normalised at both ends of the interval as well, the best taken at its
// point value, clamped to 0–1; facts and published figures have none. The
// score interval [score_low, score_high] is the weighted sum at the low
// ends and at the high ends: every figure at its worst, or at its best, at
// once (conservative). Two CNIs are tied when their score intervals
// overlap. An entry joins the tie group above it when it overlaps any
// member, so ties chain, and a group shares its first place (1=, 1=, 3).
// A published dataset without intervals ties only on equal scores.
//
// This rule was chosen over "tied when every criterion that separates them
// has overlapping intervals": under that rule a fact worth one point of
// 100 would break a tie the figures cannot decide, and a lead built from
// several overlapping figures would never tie. Summing the intervals
// weighs each criterion's noise by its weight, as the score does.
//
// Ordering claims respect ties: two named CNIs in one tie group are not
// ordered by the data, so a claim that needs their order is untestable
// unless another pair already contradicts it.
//
// # Service proxies and services-scale
//
// A proxy is named by its backend: iptables-legacy, iptables-nft,
// nftables, ebpf, ipvs. services-scale figures reach only the labs that
// run that backend (a kind lab's "kube-proxy iptables-nft" runs
// iptables-nft); a lab that records a bare "iptables" gets none. A
// criterion with services: max compares at the largest service count that
// every candidate with services-scale data reached (measured there, or
// tried there and failed); a candidate whose proxy failed at that count
// scores 0 on it, the failure in its evidence.
//
// # Figures above the host
//
// A results summary flagged above_host (a lab figure above its host
// baseline beyond both intervals: an artefact, since a datapath cannot
// beat the path it is built on) is kept out of every criterion; the input
// notes say so per lab and the criterion's evidence says why it counts 0.
//
// # JSON (cnilab rank -o json)
//
//	input{name, kind, title, notes[]}
//	environments[]{name, title, description, variants, requires[],
//	  weights[]{criterion, weight, rule, why, skipped},
//	  ranking[]{place, cni, score, score_low, score_high, tied_with[], tie,
//	    variant, options, other_variants[]{variant, score},
//	    evidence[]{kind, criterion, value, raw, unit, ci95_low, ci95_high,
//	      ci_level, source, normalized, normalized_low, normalized_high,
//	      weight, contribution, detail}},
//	  excluded[]{cni, reason, evidence[]}, not_eligible[], data_only_order[]}
//	claims[]{id, text, origin, verdict, reason, seed_order,
//	  computed_order, diff, evidence[]}
//
// place is shared by tied entries (1, 1, 3); tied_with lists the other CNIs
// of the same place and tie the figures that could not separate an entry
// from the one above it ("dts 12.45 [8.05–15.73] vs 11.10 [8.77–12.81]
// Gbit/s"). score_low/score_high equal score when no figure has an
// interval. ci95_low/ci95_high bound raw (the median's own interval) and
// ci_level is its actual coverage (0.75 at n = 3).
package rank

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/facts"
	"github.com/cnilab/cnilab/pkg/results"
)

// Environment is one deployment profile.
type Environment struct {
	Name        string `yaml:"name" json:"name"`
	Title       string `yaml:"title" json:"title"`
	Description string `yaml:"description" json:"description"`
	// Variants selects the configurations that compete: unencrypted,
	// encrypted or any.
	Variants string        `yaml:"variants" json:"variants"`
	Requires []Requirement `yaml:"requires,omitempty" json:"requires,omitempty"`
	Criteria []Criterion   `yaml:"criteria" json:"criteria"`
}

// Requirement is a hard condition on a fact; a CNI that fails it is
// excluded from the environment. Any holds when one of its parts holds.
type Requirement struct {
	Fact string        `yaml:"fact,omitempty" json:"fact,omitempty"`
	In   []string      `yaml:"in,omitempty" json:"in,omitempty"`
	Any  []Requirement `yaml:"any,omitempty" json:"any,omitempty"`
	Why  string        `yaml:"why,omitempty" json:"why,omitempty"`
}

// String says the requirement the way the report prints it.
func (r Requirement) String() string {
	if len(r.Any) > 0 {
		parts := make([]string, len(r.Any))
		for i, a := range r.Any {
			parts[i] = a.String()
		}
		return strings.Join(parts, " or ")
	}
	return fmt.Sprintf("%s in [%s]", r.Fact, strings.Join(r.In, ", "))
}

// Criterion is one weighted, normalised input to the score.
type Criterion struct {
	Name   string  `yaml:"name" json:"name"`
	Weight float64 `yaml:"weight" json:"weight"`
	Why    string  `yaml:"why,omitempty" json:"why,omitempty"`

	// Metric criteria.
	Metric   string `yaml:"metric,omitempty" json:"metric,omitempty"`
	Test     string `yaml:"test,omitempty" json:"test,omitempty"`
	Services string `yaml:"services,omitempty" json:"services,omitempty"`
	Better   string `yaml:"better,omitempty" json:"better,omitempty"`
	// Normalize may only say "ratio" (the one normalisation); kept so
	// existing profiles that spell it out still load.
	Normalize string `yaml:"normalize,omitempty" json:"normalize,omitempty"`

	// Fact criteria.
	Fact     string `yaml:"fact,omitempty" json:"fact,omitempty"`
	Contains string `yaml:"contains,omitempty" json:"contains,omitempty"`
	Number   string `yaml:"number,omitempty" json:"number,omitempty"`
}

// lowerIsBetter is the direction of a criterion.
func (c Criterion) lowerIsBetter() bool {
	switch c.Better {
	case "lower":
		return true
	case "higher":
		return false
	}
	if c.Fact != "" {
		return c.Number == "lower"
	}
	return results.LowerIsBetter(c.Metric)
}

// Describe is the one-line form shown with the weights.
func (c Criterion) Describe() string {
	dir := "higher is better"
	if c.lowerIsBetter() {
		dir = "lower is better"
	}
	switch {
	case c.Fact != "" && c.Contains != "":
		return fmt.Sprintf("fact %s contains %s", c.Fact, c.Contains)
	case c.Fact != "" && c.Number != "":
		return fmt.Sprintf("fact %s (number, %s, ratio to best)", c.Fact, dir)
	case c.Fact != "":
		return fmt.Sprintf("fact %s (yes 1, partial 0.5, no 0)", c.Fact)
	case c.Services != "":
		return fmt.Sprintf("%s at services=%s (%s, ratio to best)", c.Metric, c.Services, dir)
	case c.Metric == results.UDPLossPct && c.lowerIsBetter():
		return fmt.Sprintf("%s on %s (%s, delivered share 100 − loss as a ratio to best)", c.Metric, c.Test, dir)
	}
	return fmt.Sprintf("%s on %s (%s, ratio to best)", c.Metric, c.Test, dir)
}

type environmentsFile struct {
	Environments []Environment `yaml:"environments"`
}

// ParseEnvironments decodes and validates environments.yaml.
func ParseEnvironments(file string, data []byte) ([]Environment, error) {
	var f environmentsFile
	doc, err := config.DecodeStrict(file, data, &f)
	if err != nil {
		return nil, err
	}
	var errs config.Errors
	bad := func(msg string, keys ...string) {
		errs = append(errs, config.Error{File: file, Line: doc.Line(keys...), Field: strings.Join(keys, "."), Msg: msg})
	}
	if len(f.Environments) == 0 {
		bad("no environments", "environments")
	}
	seen := map[string]bool{}
	for i, e := range f.Environments {
		at := func(keys ...string) []string {
			return append([]string{"environments", strconv.Itoa(i)}, keys...)
		}
		if e.Name == "" {
			bad("missing", at("name")...)
		}
		if seen[e.Name] {
			bad(fmt.Sprintf("environment %q defined twice", e.Name), at("name")...)
		}
		seen[e.Name] = true
		if !slices.Contains([]string{"unencrypted", "encrypted", "any"}, e.Variants) {
			bad(fmt.Sprintf("%q, want unencrypted, encrypted or any", e.Variants), at("variants")...)
		}
		for j, r := range e.Requires {
			checkRequirement(r, bad, at("requires", strconv.Itoa(j)))
		}
		if len(e.Criteria) == 0 {
			bad("no criteria", at("criteria")...)
		}
		for j, c := range e.Criteria {
			cat := func(keys ...string) []string { return append(at("criteria", strconv.Itoa(j)), keys...) }
			if c.Name == "" {
				bad("missing", cat("name")...)
			}
			if c.Weight <= 0 {
				bad(fmt.Sprintf("%v: weights are positive", c.Weight), cat("weight")...)
			}
			switch {
			case c.Fact != "" && c.Metric != "":
				bad("a criterion is a metric or a fact, not both", cat("fact")...)
			case c.Fact != "":
				if !facts.Known(c.Fact) {
					bad(fmt.Sprintf("unknown fact %q (known: %s)", c.Fact, strings.Join(facts.Names, ", ")), cat("fact")...)
				}
				if c.Number != "" && c.Number != "lower" && c.Number != "higher" {
					bad(fmt.Sprintf("%q, want lower or higher", c.Number), cat("number")...)
				}
			case c.Metric != "":
				if results.Unit(c.Metric) == "" && c.Metric != "mem_overhead_bytes" {
					bad(fmt.Sprintf("unknown metric %q", c.Metric), cat("metric")...)
				}
				if c.Services == "" && !slices.Contains(config.Tests, c.Test) && !config.IsPolicyTest(c.Test) {
					bad(fmt.Sprintf("unknown test %q (known: %s)", c.Test, strings.Join(config.Tests, ", ")), cat("test")...)
				}
				if c.Services != "" && c.Services != "max" {
					if _, err := strconv.Atoi(c.Services); err != nil {
						bad(fmt.Sprintf("%q, want max or a service count", c.Services), cat("services")...)
					}
				}
				if c.Better != "" && c.Better != "lower" && c.Better != "higher" {
					bad(fmt.Sprintf("%q, want lower or higher", c.Better), cat("better")...)
				}
				switch c.Normalize {
				case "", "ratio":
				case "minmax":
					bad("minmax is no longer offered: it turns any gap into 1 vs 0 and lets the pool squeeze the others; every figure is a ratio to the best (drop the field or say ratio)", cat("normalize")...)
				default:
					bad(fmt.Sprintf("%q, want ratio", c.Normalize), cat("normalize")...)
				}
			default:
				bad("a criterion needs a metric or a fact", cat("name")...)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return f.Environments, nil
}

func checkRequirement(r Requirement, bad func(string, ...string), at []string) {
	switch {
	case len(r.Any) > 0:
		if r.Fact != "" {
			bad("a requirement is a fact or an any-list, not both", append(at, "fact")...)
		}
		for k, a := range r.Any {
			checkRequirement(a, bad, append(slices.Clone(at), "any", strconv.Itoa(k)))
		}
	case !facts.Known(r.Fact):
		bad(fmt.Sprintf("unknown fact %q (known: %s)", r.Fact, strings.Join(facts.Names, ", ")), append(at, "fact")...)
	case len(r.In) == 0:
		bad("list the accepted values", append(at, "in")...)
	}
}

// LoadEnvironments reads environments.yaml from fsys (the embedded
// scenarios or a --scenarios DIR); prefix is only used in messages.
func LoadEnvironments(fsys fs.FS, prefix string) ([]Environment, error) {
	data, err := fs.ReadFile(fsys, config.EnvironmentsFile)
	if err != nil {
		return nil, err
	}
	return ParseEnvironments(path.Join(prefix, config.EnvironmentsFile), data)
}

// FactsByCNI reads the facts of every lab in fsys and merges them per CNI:
// variants of one CNI share facts, so two labs that state the same fact
// differently are an error.
func FactsByCNI(fsys fs.FS, prefix string) (map[string]facts.Capabilities, error) {
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	out := map[string]facts.Capabilities{}
	from := map[string]string{} // cni/fact -> file that stated it
	var errs config.Errors
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		l, err := config.ParseLab(path.Join(prefix, f), data)
		if err != nil {
			return nil, err
		}
		caps := out[l.CNI]
		for _, name := range facts.Names {
			fact := l.Facts.Get(name)
			if fact == nil {
				continue
			}
			if prev := caps.Get(name); prev != nil && prev.Value != fact.Value {
				errs = append(errs, config.Error{File: l.File, Field: "facts." + name,
					Msg: fmt.Sprintf("%q contradicts %q in %s (variants of one CNI share facts)", fact.Value, prev.Value, from[l.CNI+"/"+name])})
				continue
			}
			caps.Set(name, fact)
			from[l.CNI+"/"+name] = l.File
		}
		out[l.CNI] = caps
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}
