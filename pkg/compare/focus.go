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

func (f focused) Measure(ctx context.Context, in *lab.Instance, scenario, test, placement string, repeat int) results.Measurement {
	var keep []string
	if in.Provider == "kind" {
		keep = lab.WorkerNames(in.Nodes)
	}
	what, restore, err := f.focus.Enter(ctx, keep)
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
