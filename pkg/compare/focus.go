package compare

import (
	"context"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/cpufocus"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/results"
)

// focused measures each window with the run's other kind node containers
// at the lowest CPU weight (cpufocus), the measured lab's workers kept.
type focused struct {
	m     windowMeasurer
	focus *cpufocus.Focus
}

// withFocus wraps m when the run has kind labs; nil focus passes through.
func withFocus(m windowMeasurer, f *cpufocus.Focus) windowMeasurer {
	if f == nil {
		return m
	}
	return focused{m, f}
}

// focusFunc is the focus as a scenario takes it for a window it runs
// itself (the policy cost's connect probe); nil without kind labs.
func focusFunc(f *cpufocus.Focus) func(context.Context, *lab.Instance) (string, func() error, error) {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, in *lab.Instance) (string, func() error, error) {
		return f.Enter(ctx, focusKeep(in))
	}
}

// focusKeep is what stays at full weight during a lab's window: its own
// workers.
func focusKeep(in *lab.Instance) []string {
	if in.Provider == "kind" {
		return lab.WorkerNames(in.Nodes)
	}
	return nil
}

func (f focused) Measure(ctx context.Context, in *lab.Instance, scenario, test, placement string, repeat int) results.Measurement {
	what, restore, err := f.focus.Enter(ctx, focusKeep(in))
	res := f.m.Measure(ctx, in, scenario, test, placement, repeat)
	if rerr := restore(); err == nil && rerr != nil {
		err = rerr
	}
	switch {
	case err != nil:
		res.Focus = "not focused: " + err.Error()
	default:
		res.Focus = what
	}
	return res
}

// runFocus is the focus of a run with kind labs up, nil otherwise.
func runFocus(id string, up []*lab.Instance) *cpufocus.Focus {
	for _, in := range up {
		if in.Provider == "kind" {
			return cpufocus.New(command.Exec{}, id)
		}
	}
	return nil
}
