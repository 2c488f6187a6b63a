package command

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Fake is a Runner that records every command and answers from a table of
// canned responses keyed by program name. It exists so parsers and rule
// writers can be tested without root; it never pretends a command succeeded
// unless a response was registered for it.
type Fake struct {
	mu        sync.Mutex
	Calls     []Cmd
	Responses map[string]FakeResponse
}

// FakeResponse is the canned outcome of one program.
type FakeResponse struct {
	Stdout, Stderr string
	Err            error
	// Func, when set, computes the response from the command (for example
	// to check stdin).
	Func func(Cmd) (Result, error)
}

var _ Runner = (*Fake)(nil)

func (f *Fake) respond(c Cmd) (Result, error) {
	f.mu.Lock()
	f.Calls = append(f.Calls, c)
	r, ok := f.Responses[c.Name]
	f.mu.Unlock()
	if !ok {
		return Result{}, &Error{Cmd: c.String(), Err: fmt.Errorf("fake runner: no response registered for %q", c.Name)}
	}
	if r.Func != nil {
		return r.Func(c)
	}
	res := Result{Stdout: []byte(r.Stdout), Stderr: []byte(r.Stderr)}
	if r.Err != nil {
		return res, &Error{Cmd: c.String(), Stdout: r.Stdout, Stderr: r.Stderr, Err: r.Err}
	}
	return res, nil
}

// Run implements Runner.
func (f *Fake) Run(_ context.Context, c Cmd) (Result, error) { return f.respond(c) }

// Start implements Runner; the fake process has already finished.
func (f *Fake) Start(_ context.Context, c Cmd) (Process, error) {
	res, err := f.respond(c)
	return fakeProcess{res: res, err: err}, nil
}

type fakeProcess struct {
	res Result
	err error
}

func (p fakeProcess) Wait() (Result, error)              { return p.res, p.err }
func (p fakeProcess) Stop(time.Duration) (Result, error) { return p.res, p.err }
