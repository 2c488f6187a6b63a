package policy

import (
	"strings"
	"testing"
)

func TestEvaluate(t *testing.T) {
	allowPeer := Check{From: "peer", Proto: "tcp", Port: 5201, Expect: Allowed}
	denyClient := Check{From: "client", Proto: "tcp", Port: 5201, Expect: Denied}
	denyUDP := Check{From: "client", Proto: "udp", Port: 5201, Expect: Denied}
	kept := Check{Name: "established connection", From: "client", Proto: "tcp", Port: 5201, Expect: Either}
	cases := []struct {
		name        string
		obs         []Observation
		verdict     string
		mismatchHas []string
	}{
		{"every check holds", []Observation{{allowPeer, Allowed}, {denyClient, Denied}}, Pass, nil},
		{"nothing denied where denies are expected: not enforced (flannel)",
			[]Observation{{allowPeer, Allowed}, {denyClient, Allowed}, {denyUDP, Allowed}}, NotEnforced,
			[]string{"client → server tcp/5201: expected denied, allowed (under-enforced)"}},
		{"one deny holds, another leaks: a failure, not 'not enforced'",
			[]Observation{{denyClient, Denied}, {denyUDP, Allowed}}, Fail,
			[]string{"client → server udp/5201: expected denied, allowed (under-enforced)"}},
		{"the CNI denies what the spec allows",
			[]Observation{{allowPeer, Denied}, {denyClient, Denied}}, Fail,
			[]string{"peer → server tcp/5201: expected allowed, denied (over-enforced)"}},
		{"a baseline that is denied is a failure", []Observation{{allowPeer, Denied}}, Fail, []string{"over-enforced"}},
		{"either outcome never fails", []Observation{{kept, Denied}, {denyClient, Denied}}, Pass, nil},
		{"either plus leaking deny", []Observation{{kept, Allowed}, {denyClient, Allowed}}, NotEnforced, []string{"under-enforced"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Evaluate(tc.obs)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s (mismatches %v)", r.Verdict, tc.verdict, r.Mismatches)
			}
			if tc.mismatchHas == nil && len(r.Mismatches) > 0 {
				t.Errorf("mismatches %v, want none", r.Mismatches)
			}
			for _, want := range tc.mismatchHas {
				if !strings.Contains(strings.Join(r.Mismatches, "\n"), want) {
					t.Errorf("mismatches %v lack %q", r.Mismatches, want)
				}
			}
		})
	}
}

func TestEvaluateRejectsNonsense(t *testing.T) {
	for _, obs := range [][]Observation{
		nil,
		{{Check{From: "a", Expect: Allowed}, Either}},
		{{Check{From: "a", Expect: "maybe"}, Allowed}},
		{{Check{From: "a", Expect: Allowed}, ""}},
	} {
		if r, err := Evaluate(obs); err == nil {
			t.Errorf("%v: verdict %+v, want an error", obs, r)
		}
	}
}
