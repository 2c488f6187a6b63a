// Package policy is the NetworkPolicy scenario: a functional matrix of
// cases, each applying networking/v1 policies in a lab whose CNI enforces
// them and probing from pods with cnilab's probe, every check with a named
// expected outcome; and the cost of K policies on first-packet latency,
// throughput and programming time.
package policy

import (
	"fmt"
	"strings"
)

// Outcome is what a probe saw, or what a check expects.
type Outcome string

// Outcomes. Either is only expected, never observed: the API leaves the
// outcome to the implementation (an established connection under a new
// deny), so the check records what happened and cannot fail.
const (
	Allowed Outcome = "allowed"
	Denied  Outcome = "denied"
	Either  Outcome = "either"
)

// Verdicts of a case.
const (
	Pass = "pass"
	Fail = "fail"
	// NotEnforced: every check that expects a deny saw traffic pass. The
	// CNI does not enforce NetworkPolicy: a finding, not a failure.
	NotEnforced = "not-enforced"
)

// Check is one probe of a case: from a source pod to the server on a
// protocol and port, expecting an outcome.
type Check struct {
	// Name says what is checked ("client → server tcp/5201 after the allow").
	Name   string
	From   string
	Proto  string // tcp, udp
	Port   int
	Expect Outcome
}

func (c Check) String() string {
	if c.Name != "" {
		return c.Name
	}
	return fmt.Sprintf("%s → server %s/%d", c.From, c.Proto, c.Port)
}

// Observation is one check's outcome.
type Observation struct {
	Check Check
	Got   Outcome
}

// Result is a case's verdict with the checks that decided it.
type Result struct {
	Verdict string
	// Mismatches name every check that did not hold: "under-enforced"
	// when the spec denies and traffic passed, "over-enforced" when the
	// spec allows and the CNI denied.
	Mismatches []string
}

// Evaluate gives a case's verdict from its observations: pass when every
// check holds; not-enforced when the case expects denies and every probe
// passed anyway; fail otherwise, naming each check that did not hold.
func Evaluate(obs []Observation) (Result, error) {
	if len(obs) == 0 {
		return Result{}, fmt.Errorf("no observations")
	}
	expectsDeny, allPassed := false, true
	var r Result
	for _, o := range obs {
		switch o.Got {
		case Allowed, Denied:
		default:
			return Result{}, fmt.Errorf("check %s: observed %q", o.Check, o.Got)
		}
		switch o.Check.Expect {
		case Allowed, Denied, Either:
		default:
			return Result{}, fmt.Errorf("check %s: expects %q", o.Check, o.Check.Expect)
		}
		if o.Check.Expect == Denied {
			expectsDeny = true
		}
		if o.Got == Denied {
			allPassed = false
		}
		if o.Check.Expect == Either || o.Got == o.Check.Expect {
			continue
		}
		kind := "under-enforced"
		if o.Check.Expect == Allowed {
			kind = "over-enforced"
		}
		r.Mismatches = append(r.Mismatches, fmt.Sprintf("%s: expected %s, %s (%s)", o.Check, o.Check.Expect, o.Got, kind))
	}
	switch {
	case len(r.Mismatches) == 0:
		r.Verdict = Pass
	case expectsDeny && allPassed:
		r.Verdict = NotEnforced
	default:
		r.Verdict = Fail
	}
	return r, nil
}

// Describe lists observations as "check: got" for the results.
func Describe(obs []Observation) string {
	parts := make([]string, len(obs))
	for i, o := range obs {
		exp := string(o.Check.Expect)
		parts[i] = fmt.Sprintf("%s: %s (expected %s)", o.Check, o.Got, exp)
	}
	return strings.Join(parts, "; ")
}
