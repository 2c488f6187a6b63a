package schedule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab"
)

func TestOrderInterleavesLabsWithinEachRepeat(t *testing.T) {
	labs := []*lab.Instance{{Name: "A"}, {Name: "B"}, {Name: "C"}}
	ws := Order(labs, "throughput", []string{"dts", "dus"}, []string{"cross-node"}, 2, 0)
	var got []string
	for _, w := range ws {
		got = append(got, fmt.Sprintf("%d%s%s", w.Repeat, w.Test, w.Lab.Name))
	}
	want := "1dtsA 1dtsB 1dtsC 1dusA 1dusB 1dusC 2dtsA 2dtsB 2dtsC 2dusA 2dusB 2dusC"
	if strings.Join(got, " ") != want {
		t.Errorf("order\n %s\nwant\n %s", strings.Join(got, " "), want)
	}
}

// TestOrderShufflesLabsPerRepeat: with a seed, every repeat still runs
// every lab once per test, in the same order for each test of the repeat,
// the first lab is not always the same, and the seed replays the order.
func TestOrderShufflesLabsPerRepeat(t *testing.T) {
	labs := []*lab.Instance{{Name: "A"}, {Name: "B"}, {Name: "C"}, {Name: "D"}}
	const repeats = 12
	ws := Order(labs, "s", []string{"dts", "dus"}, []string{"cross-node"}, repeats, 42)
	if len(ws) != repeats*2*len(labs) {
		t.Fatalf("%d windows", len(ws))
	}
	firsts := map[string]bool{}
	for r := 0; r < repeats; r++ {
		group := ws[r*8 : r*8+8]
		var dts, dus []string
		for _, w := range group {
			if w.Repeat != r+1 {
				t.Fatalf("window %+v in repeat %d", w, r+1)
			}
			if w.Test == "dts" {
				dts = append(dts, w.Lab.Name)
			} else {
				dus = append(dus, w.Lab.Name)
			}
		}
		if strings.Join(dts, "") != strings.Join(dus, "") {
			t.Errorf("repeat %d: dts order %v, dus order %v", r+1, dts, dus)
		}
		sorted := append([]string(nil), dts...)
		slices.Sort(sorted)
		if strings.Join(sorted, "") != "ABCD" {
			t.Errorf("repeat %d runs %v, want each lab once", r+1, dts)
		}
		firsts[dts[0]] = true
	}
	if len(firsts) < 2 {
		t.Errorf("the same lab ran first in all %d repeats: %v", repeats, firsts)
	}
	again := Order(labs, "s", []string{"dts", "dus"}, []string{"cross-node"}, repeats, 42)
	for i := range ws {
		if ws[i].Lab != again[i].Lab {
			t.Fatalf("seed 42 gave another order at window %d", i)
		}
	}
}

func TestSerialNeverOverlapsWindows(t *testing.T) {
	var running, maxRunning atomic.Int32
	ws := Order([]*lab.Instance{{Name: "A"}, {Name: "B"}}, "s", []string{"x"}, []string{"p"}, 5, 7)
	Serial(context.Background(), ws, func(context.Context, Window) {
		n := running.Add(1)
		if n > maxRunning.Load() {
			maxRunning.Store(n)
		}
		time.Sleep(time.Millisecond)
		running.Add(-1)
	})
	if maxRunning.Load() != 1 {
		t.Errorf("%d windows ran at once", maxRunning.Load())
	}
}

func TestSerialStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	Serial(ctx, Order([]*lab.Instance{{Name: "A"}}, "s", []string{"x"}, []string{"p"}, 10, 7), func(context.Context, Window) {
		n++
		if n == 3 {
			cancel()
		}
	})
	if n != 3 {
		t.Errorf("ran %d windows after cancel at 3", n)
	}
}

// fakeProvider fails one named lab and records concurrency.
type fakeProvider struct {
	fail          string
	inflight, max atomic.Int32
}

func (f *fakeProvider) Name() string { return "fake" }
func (f *fakeProvider) Up(_ context.Context, s lab.Spec) (*lab.Instance, error) {
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.max.Load()
		if n <= m || f.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	if s.Def.Name == f.fail {
		return nil, errors.New("boom")
	}
	return &lab.Instance{Name: s.Def.Name}, nil
}
func (f *fakeProvider) Down(context.Context, *lab.Instance) error { return nil }
func (f *fakeProvider) List(context.Context) ([]string, error)    { return nil, nil }
func (f *fakeProvider) DownAll(context.Context) ([]string, error) { return nil, nil }

func TestProvisionIsParallelAndIsolatesFailures(t *testing.T) {
	p := &fakeProvider{fail: "b"}
	var specs []lab.Spec
	for _, n := range []string{"a", "b", "c", "d"} {
		specs = append(specs, lab.Spec{Def: &config.Lab{Name: n}})
	}
	out := Provision(context.Background(), p, specs)
	for _, o := range out {
		if o.Spec.Def.Name == "b" {
			if o.Err == nil {
				t.Error("failed lab b reported ok")
			}
		} else if o.Err != nil || o.Instance == nil {
			t.Errorf("lab %s sunk by b's failure: %v", o.Spec.Def.Name, o.Err)
		}
	}
	if p.max.Load() < 2 {
		t.Errorf("labs were provisioned one at a time")
	}
}
