package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/schedule"
)

func m(scenario, lab, test string, repeat int, params map[string]string) results.Measurement {
	return results.Measurement{Provider: "netns", Lab: lab, Scenario: scenario, Test: test, Placement: "cross-node", Repeat: repeat, Params: params}
}

// TestKeyOf: identity is what was measured where, never what came out;
// params count whatever their order, results and times do not.
func TestKeyOf(t *testing.T) {
	a := m("throughput", "flannel", "dts", 1, map[string]string{"services": "100", "placement": "cross"})
	b := a
	b.Params = map[string]string{"placement": "cross", "services": "100"}
	b.Metrics, b.Started, b.Error = map[string]float64{results.ThroughputBps: 1}, time.Now(), "boom"
	if KeyOf(a) != KeyOf(b) {
		t.Errorf("%v and %v differ", KeyOf(a), KeyOf(b))
	}
	for _, other := range []func(*results.Measurement){
		func(x *results.Measurement) { x.Provider = "kind" },
		func(x *results.Measurement) { x.Lab = "cilium" },
		func(x *results.Measurement) { x.Scenario = "latency" },
		func(x *results.Measurement) { x.Test = "dus" },
		func(x *results.Measurement) { x.Placement = "same-node" },
		func(x *results.Measurement) { x.Repeat = 2 },
		func(x *results.Measurement) { x.Params = map[string]string{"services": "1000"} },
	} {
		c := a
		other(&c)
		if KeyOf(c) == KeyOf(a) {
			t.Errorf("%v has the identity of %v", KeyOf(c), KeyOf(a))
		}
	}
	// services-scale has no lab: its proxies are told apart by Proxy.
	x, y := m("services-scale", "", "first-packet", 1, nil), m("services-scale", "", "first-packet", 1, nil)
	x.Proxy, y.Proxy = "iptables", "ipvs"
	if KeyOf(x) == KeyOf(y) {
		t.Error("two proxies' measurements share an identity")
	}
}

func TestKeepComplete(t *testing.T) {
	kinds := map[string]string{"throughput": "throughput", "latency": "latency", "services-scale": "services-scale", "policy": "policy"}
	kindOf := func(n string) string { return kinds[n] }
	tp := func(r int) results.Measurement { return m("throughput", "flannel", "dts", r, nil) }
	ss := func(r int, n string) results.Measurement {
		x := m("services-scale", "", "first-packet", r, map[string]string{"services": n})
		x.Proxy = "iptables"
		return x
	}
	pol := func(r int) results.Measurement { return m("policy", "cilium", "deny", r, nil) }
	for _, tc := range []struct {
		name    string
		order   []string
		logged  []results.Measurement
		kept    int
		dropped int
		note    string
	}{
		{"windows are kept one by one", []string{"throughput", "latency"}, []results.Measurement{tp(1), tp(2)}, 2, 0, ""},
		{"a duplicate identity is dropped", []string{"throughput"}, []results.Measurement{tp(1), tp(1), tp(2)}, 2, 1, "repeated an identity"},
		{"services-scale's last repeat may be partial", []string{"services-scale"}, []results.Measurement{ss(1, "10"), ss(1, "100"), ss(2, "10")}, 2, 1, "repeat 2 may be partial"},
		{"services-scale finished when a later scenario started", []string{"services-scale", "throughput"}, []results.Measurement{ss(1, "10"), ss(2, "10"), tp(1)}, 3, 0, ""},
		{"unfinished policy is measured again whole", []string{"throughput", "policy"}, []results.Measurement{tp(1), pol(1), pol(2)}, 1, 2, "policy had not finished"},
		{"finished policy is kept", []string{"policy", "throughput"}, []results.Measurement{pol(1), tp(1)}, 2, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, dropped, notes := keepComplete(tc.logged, tc.order, kindOf)
			if len(kept) != tc.kept || dropped != tc.dropped {
				t.Errorf("kept %d dropped %d, want %d and %d (notes %v)", len(kept), dropped, tc.kept, tc.dropped, notes)
			}
			if all := strings.Join(notes, "; "); (tc.note == "") != (all == "") || !strings.Contains(all, tc.note) {
				t.Errorf("notes %q, want %q", all, tc.note)
			}
		})
	}
}

// fakeMeasurer records the windows it was asked to measure.
type fakeMeasurer struct{ calls []string }

func (f *fakeMeasurer) Measure(_ context.Context, in *lab.Instance, scenario, test, placement string, repeat int) results.Measurement {
	f.calls = append(f.calls, fmt.Sprintf("%s %s r%d", in.Name, test, repeat))
	return results.Measurement{Provider: in.Provider, Lab: in.Name, Scenario: scenario, Test: test, Placement: placement, Repeat: repeat, Metrics: map[string]float64{}}
}

// TestMeasureWindowsSkipsKept: a resume measures exactly the windows the
// killed run did not store, in the killed run's order, and no warm-up for a
// lab with nothing left.
func TestMeasureWindowsSkipsKept(t *testing.T) {
	pair := map[lab.Placement]lab.PodPair{lab.CrossNode: {}}
	up := []*lab.Instance{{Name: "host", Provider: "netns", Pairs: pair}, {Name: "flannel", Provider: "netns", Pairs: pair}}
	sc := &config.Scenario{Name: "throughput", Tests: []string{"dts"}}
	const seed = 42
	all := schedule.Order(up, sc.Name, sc.Tests, []string{"cross-node"}, 3, seed)
	// The kill came after the first four windows; host's were among them
	// except its last.
	done := map[Key]bool{}
	for _, w := range all[:4] {
		done[windowKey(w)] = true
	}
	var want []string
	left := map[string]bool{}
	for _, w := range all[4:] {
		want = append(want, fmt.Sprintf("%s dts r%d", w.Lab.Name, w.Repeat))
		left[w.Lab.Name] = true
	}
	store, err := results.Create(t.TempDir(), results.Run{ID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f := &fakeMeasurer{}
	measureWindows(context.Background(), f, "warm", up, sc, []string{"cross-node"}, 3, seed, done, store, io.Discard)
	var warm, got []string
	for _, c := range f.calls {
		if strings.Contains(c, " warm ") {
			warm = append(warm, c)
		} else {
			got = append(got, c)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("measured %v, want the windows left %v", got, want)
	}
	if len(warm) != len(left) {
		t.Errorf("warm-ups %v, want one per lab with windows left (%v)", warm, left)
	}
	if n := len(store.Document().Measurements); n != len(want) {
		t.Errorf("stored %d measurements, want %d", n, len(want))
	}
}

// attachingProvider attaches the labs in running, builds the others.
type attachingProvider struct {
	countingProvider
	running map[string]bool
	removed []string
}

func (p *attachingProvider) Attach(_ context.Context, s lab.Spec) (*lab.Instance, error) {
	if !p.running[s.Def.Name] {
		return nil, errors.New("no running lab " + s.Def.Name)
	}
	return &lab.Instance{Name: s.Def.Name}, nil
}

func (p *attachingProvider) Remove(_ context.Context, s lab.Spec) error {
	p.removed = append(p.removed, s.Def.Name)
	return nil
}

// TestResumeLabs: labs still up are attached, the others have their
// leftovers removed and are built again, and the outcomes keep the spec
// order the window order is drawn from. Labs of `cnilab up` are never
// built.
func TestResumeLabs(t *testing.T) {
	specs := []lab.Spec{{Def: &config.Lab{Name: "host"}}, {Def: &config.Lab{Name: "flannel"}}, {Def: &config.Lab{Name: "cilium"}}}
	p := &attachingProvider{running: map[string]bool{"host": true, "cilium": true}}
	out, ra, rb := resumeLabs(context.Background(), p, specs, "/runs/r1", false, io.Discard)
	var order []string
	for _, oc := range out {
		if oc.Err != nil {
			t.Errorf("%s: %v", oc.Spec.Def.Name, oc.Err)
		}
		order = append(order, oc.Spec.Def.Name)
	}
	if strings.Join(order, ",") != "host,flannel,cilium" {
		t.Errorf("outcomes in order %v, want the specs'", order)
	}
	if strings.Join(ra, ",") != "host,cilium" || strings.Join(rb, ",") != "flannel" || strings.Join(p.removed, ",") != "flannel" || strings.Join(p.ups, ",") != "flannel" {
		t.Errorf("re-attached %v, rebuilt %v, removed %v, up %v", ra, rb, p.removed, p.ups)
	}
	q := &attachingProvider{running: map[string]bool{"host": true}}
	out, _, rb = resumeLabs(context.Background(), q, specs, "/runs/r1", true, io.Discard)
	if len(q.ups) != 0 || len(rb) != 0 || out[1].Err == nil {
		t.Errorf("attach-only resume built %v (rebuilt %v), flannel err %v", q.ups, rb, out[1].Err)
	}
}

func TestFindRun(t *testing.T) {
	out := t.TempDir()
	for _, d := range []string{"20261201-140000-a1b2c3", "20261201-150000-d4e5f6", "20261201-160000-d4e5f6"} {
		if err := os.Mkdir(filepath.Join(out, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := FindRun(out, "a1b2c3"); err != nil || filepath.Base(d) != "20261201-140000-a1b2c3" {
		t.Errorf("by id: %s, %v", d, err)
	}
	if d, err := FindRun(out, filepath.Join(out, "20261201-150000-d4e5f6")); err != nil || filepath.Base(d) != "20261201-150000-d4e5f6" {
		t.Errorf("by directory: %s, %v", d, err)
	}
	for run, msg := range map[string]string{"ffffff": "no run directory", "d4e5f6": "several run directories", "../x/*": "no such run directory"} {
		if _, err := FindRun(out, run); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", run, err, msg)
		}
	}
}

// TestLoadResumeRefuses: a finished run, or one without its request, is
// not resumed.
func TestLoadResumeRefuses(t *testing.T) {
	for name, run := range map[string]results.Run{
		"finished":   {ID: "r1", Request: &results.Request{}, Finished: ptr(time.Now())},
		"no request": {ID: "r1"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := results.Create(dir, run)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if _, err := LoadResume(dir); err == nil {
				t.Error("resumed")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
