// Package schedule provisions labs concurrently but runs measurement windows
// one at a time machine-wide (labs share CPUs), interleaving labs within
// each repeat (A B C D, A B C D, ...) so drift hits every lab alike.
package schedule

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/cnilab/cnilab/pkg/lab"
)

// Outcome of provisioning one lab.
type Outcome struct {
	Spec     lab.Spec
	Instance *lab.Instance
	Err      error
	Took     time.Duration
}

// Provision brings labs up in parallel. One lab failing never stops the
// others; each outcome carries its own error.
func Provision(ctx context.Context, p lab.Provider, specs []lab.Spec) []Outcome {
	out := make([]Outcome, len(specs))
	pl := pool.New().WithMaxGoroutines(8)
	for i, s := range specs {
		pl.Go(func() {
			start := time.Now()
			in, err := p.Up(ctx, s)
			out[i] = Outcome{Spec: s, Instance: in, Err: err, Took: time.Since(start)}
		})
	}
	pl.Wait()
	return out
}

// Teardown removes labs in parallel and returns the errors per lab name.
func Teardown(ctx context.Context, p lab.Provider, ins []*lab.Instance) map[string]error {
	errs := map[string]error{}
	var mu sync.Mutex
	pl := pool.New().WithMaxGoroutines(8)
	for _, in := range ins {
		pl.Go(func() {
			if err := p.Down(ctx, in); err != nil {
				mu.Lock()
				errs[in.Name] = err
				mu.Unlock()
			}
		})
	}
	pl.Wait()
	return errs
}

// Window is one measurement window to run.
type Window struct {
	Lab       *lab.Instance
	Scenario  string
	Test      string
	Placement string
	Repeat    int
}

// Order lays out windows: for each repeat, for each test and placement,
// every lab in turn, the labs in an order shuffled per repeat from seed (so
// no lab always runs first, on a machine still warm or cold from the one
// before; the run records the seed, so the order can be replayed). Seed 0
// keeps the labs' own order.
func Order(labs []*lab.Instance, scenario string, tests, placements []string, repeats int, seed uint64) []Window {
	var ws []Window
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for r := 1; r <= repeats; r++ {
		order := slices.Clone(labs)
		if seed != 0 {
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		for _, t := range tests {
			for _, p := range placements {
				for _, l := range order {
					ws = append(ws, Window{Lab: l, Scenario: scenario, Test: t, Placement: p, Repeat: r})
				}
			}
		}
	}
	return ws
}

// Serial runs windows strictly one after another and stops early only when
// ctx is cancelled. measure must not return before its window has ended.
func Serial(ctx context.Context, ws []Window, measure func(context.Context, Window)) {
	for _, w := range ws {
		if ctx.Err() != nil {
			return
		}
		measure(ctx, w)
	}
}
