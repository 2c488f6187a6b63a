// Package command runs external programs (iperf3, iptables-restore, nft) for
// cnilab. Every external program goes through the Runner interface so tests
// can substitute a recording fake, and so a failing command always returns
// its stdout and stderr with the error instead of losing them.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Cmd describes one program invocation.
type Cmd struct {
	Name string
	Args []string
	// Netns is the path of a network namespace file (for example
	// /run/netns/cnl-r1-flannel-n1) the program runs in; empty means the
	// caller's namespace.
	Netns string
	// CgroupFD, when > 0, is an open directory fd of a cgroup v2 the process
	// is started in (clone3 CLONE_INTO_CGROUP), so cgroup BPF hooks see it
	// from its first instruction.
	CgroupFD int
	Stdin    io.Reader
	Env      []string
}

func (c Cmd) String() string {
	s := c.Name
	if len(c.Args) > 0 {
		s += " " + strings.Join(c.Args, " ")
	}
	if c.Netns != "" {
		s += " (netns " + c.Netns + ")"
	}
	return s
}

// Result is what a finished program left behind.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	Duration time.Duration
}

// Error is returned when a program could not start or exited non-zero. It
// keeps the output so callers can show why.
type Error struct {
	Cmd    string
	Stdout string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + lastLines(s, 5)
	} else if s := strings.TrimSpace(e.Stdout); s != "" {
		msg += ": " + lastLines(s, 5)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Process is a started, still running program.
type Process interface {
	// Wait blocks until the program exits and returns its output.
	Wait() (Result, error)
	// Stop asks the program to exit (SIGTERM, then SIGKILL after grace) and
	// waits for it.
	Stop(grace time.Duration) (Result, error)
}

// Runner runs programs. Exec is the real one.
type Runner interface {
	Run(ctx context.Context, c Cmd) (Result, error)
	Start(ctx context.Context, c Cmd) (Process, error)
}

// Exec runs programs on this machine.
type Exec struct{}

var _ Runner = Exec{}

// Run runs c to completion.
func (Exec) Run(ctx context.Context, c Cmd) (Result, error) {
	p, err := start(ctx, c)
	if err != nil {
		return Result{}, err
	}
	return p.Wait()
}

// Start starts c and returns while it runs.
func (Exec) Start(ctx context.Context, c Cmd) (Process, error) {
	return start(ctx, c)
}

type execProcess struct {
	cmd    *exec.Cmd
	desc   string
	stdout *bytes.Buffer
	stderr *bytes.Buffer
	begin  time.Time
	done   chan struct{}
	res    Result
	err    error
}

func start(ctx context.Context, c Cmd) (*execProcess, error) {
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	p := &execProcess{cmd: cmd, desc: c.String(), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr, cmd.Stdin = p.stdout, p.stderr, c.Stdin
	if c.Env != nil {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	// Pdeathsig: a lab's load generators never outlive cnilab.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if c.CgroupFD > 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = c.CgroupFD
	}
	// wait collects the outcome; it runs on the goroutine that started the
	// process, because Pdeathsig is tied to the thread that forked it.
	wait := func() {
		werr := cmd.Wait()
		p.res = Result{Stdout: p.stdout.Bytes(), Stderr: p.stderr.Bytes(), Duration: time.Since(p.begin)}
		if werr != nil {
			p.err = &Error{Cmd: p.desc, Stdout: p.stdout.String(), Stderr: p.stderr.String(), Err: werr}
		}
		close(p.done)
	}
	var err error
	if c.Netns == "" {
		if err = cmd.Start(); err == nil {
			p.begin = time.Now()
			go wait()
		}
	} else {
		err = startInNetns(cmd, c.Netns, func() { p.begin = time.Now() }, wait)
	}
	if err != nil {
		return nil, &Error{Cmd: p.desc, Err: err}
	}
	return p, nil
}

// startInNetns forks the child from an OS thread that has joined the target
// network namespace, so the child is born there. That thread then waits for
// the child: Pdeathsig fires when the forking thread exits, so it must live
// as long as the child. When the child is gone the goroutine exits still
// locked, which makes the runtime discard the thread: no other goroutine can
// ever run in the lab's namespace by accident.
func startInNetns(cmd *exec.Cmd, path string, started, wait func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", path, err)
			return
		}
		err = netns.Set(target)
		target.Close()
		if err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		if err := cmd.Start(); err != nil {
			errc <- err
			return
		}
		started()
		errc <- nil
		wait()
	}()
	return <-errc
}

func (p *execProcess) Wait() (Result, error) {
	<-p.done
	return p.res, p.err
}

func (p *execProcess) Stop(grace time.Duration) (Result, error) {
	select {
	case <-p.done:
		return p.res, p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	res := p.res
	// A stop we asked for is not a failure of the program.
	var ee *exec.ExitError
	if p.err != nil && errors.As(p.err, &ee) {
		return res, nil
	}
	return res, p.err
}
