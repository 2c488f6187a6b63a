package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
)

// ExecFunc runs argv to completion somewhere else (inside a pod, inside a
// node container), wiring its standard streams. A program that ran and
// exited non-zero is reported as *ExitStatus; any other error means the
// program could not be run or the stream broke.
type ExecFunc func(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error

// ExitStatus is a remote program's non-zero exit.
type ExitStatus struct{ Code int }

func (e *ExitStatus) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Runner is a command.Runner over an ExecFunc. Closing an exec
// stream does not stop the remote program (a pod exec or a docker exec
// outlives its client), so every program runs under a shell that first
// writes its PID to a file in /tmp and then execs it; Stop and a cancelled
// context signal that PID through a second exec. The remote side needs sh,
// cat, kill and env (Debian's bench and node images have them).
type Runner struct {
	// where names the target in errors ("pod cnilab/cross-node-client").
	where string
	exec  ExecFunc
}

// NewRunner runs programs through exec; where names the target in errors
// ("pod cnilab/cross-node-client", "node cnl-r1-flannel-worker").
func NewRunner(where string, exec ExecFunc) *Runner {
	return &Runner{where: where, exec: exec}
}

var _ command.Runner = (*Runner)(nil)

// seq numbers the programs this process starts, for unique PID files.
var seq atomic.Uint64

// argv is c as an argument vector, with its environment set through env(1).
func argv(c command.Cmd) []string {
	var a []string
	if len(c.Env) > 0 {
		a = append([]string{"env"}, c.Env...)
	}
	return append(append(a, c.Name), c.Args...)
}

func (r *Runner) desc(c command.Cmd) string {
	return c.String() + " (" + r.where + ")"
}

// Run runs c to completion. When ctx ends first the remote program is
// killed, not just abandoned.
func (r *Runner) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	p, err := r.Start(ctx, c)
	if err != nil {
		return command.Result{}, err
	}
	res, err := p.Wait()
	if cerr := ctx.Err(); cerr != nil {
		return res, &command.Error{Cmd: r.desc(c), Stdout: string(res.Stdout), Stderr: string(res.Stderr), Err: cerr}
	}
	return res, err
}

// Start starts c and returns while it runs.
func (r *Runner) Start(ctx context.Context, c command.Cmd) (command.Process, error) {
	if c.Netns != "" || c.CgroupFD > 0 {
		return nil, &command.Error{Cmd: r.desc(c), Err: errors.New("a namespace path or cgroup fd means nothing in a pod or a node reached through exec")}
	}
	p := &remoteProcess{
		r: r, desc: r.desc(c), begin: time.Now(), done: make(chan struct{}),
		pidFile: fmt.Sprintf("/tmp/cnl-%d-%d.pid", os.Getpid(), seq.Add(1)),
	}
	// The stream has its own context: cancelling the caller's must kill
	// the program first and only then drop the stream.
	streamCtx, cancelStream := context.WithCancel(context.Background())
	p.cancelStream = cancelStream
	wrapped := append([]string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, p.pidFile}, argv(c)...)
	go func() {
		err := r.exec(streamCtx, wrapped, c.Stdin, &p.stdout, &p.stderr)
		p.finish(err)
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.stopped.Store(true)
			_, _ = p.Stop(2 * time.Second)
		case <-p.done:
		}
	}()
	return p, nil
}

type remoteProcess struct {
	r            *Runner
	desc         string
	pidFile      string
	begin        time.Time
	cancelStream context.CancelFunc
	// stopped is set once Stop (or the caller's context) asked the program
	// to end: its signal exit is then not a failure.
	stopped   atomic.Bool
	stdout    lockedBuffer
	stderr    lockedBuffer
	done      chan struct{}
	res       command.Result
	err       error
	stopMu    sync.Mutex
	exitState *ExitStatus
}

func (p *remoteProcess) finish(err error) {
	p.res = command.Result{Stdout: p.stdout.Bytes(), Stderr: p.stderr.Bytes(), Duration: time.Since(p.begin)}
	if err != nil {
		errors.As(err, &p.exitState)
		p.err = &command.Error{Cmd: p.desc, Stdout: string(p.res.Stdout), Stderr: string(p.res.Stderr), Err: err}
	}
	p.cancelStream()
	close(p.done)
}

// Wait blocks until the program exits and returns its output.
func (p *remoteProcess) Wait() (command.Result, error) {
	<-p.done
	if p.stopped.Load() && p.exitState != nil {
		return p.res, nil
	}
	return p.res, p.err
}

// signal sends sig to the program through a second exec, waiting briefly
// for the PID file in case the program was stopped right after Start.
func (p *remoteProcess) signal(sig string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	script := `i=0; while [ ! -s "$0" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -` + sig + ` "$(cat "$0")"`
	var out, errb bytes.Buffer
	return p.r.exec(ctx, []string{"sh", "-c", script, p.pidFile}, nil, &out, &errb)
}

// Stop sends SIGTERM to the program in the pod, SIGKILL after grace, and
// waits for it. An exit caused by the stop is not an error.
func (p *remoteProcess) Stop(grace time.Duration) (command.Result, error) {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	select {
	case <-p.done:
		return p.Wait()
	default:
	}
	p.stopped.Store(true)
	_ = p.signal("TERM")
	select {
	case <-p.done:
		return p.Wait()
	case <-time.After(grace):
	}
	_ = p.signal("KILL")
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		// The program is gone or unreachable; stop waiting for its stream.
		p.cancelStream()
		<-p.done
	}
	return p.Wait()
}

// lockedBuffer is a bytes.Buffer safe for a stream writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// String is for tests.
func (l *lockedBuffer) String() string { return strings.TrimSpace(string(l.Bytes())) }
