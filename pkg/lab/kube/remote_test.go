package kube

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
)

// localExec runs argv on this machine: the shell wrapper, the PID file and
// the kill through a second exec are then tested for real, as they run in
// a pod.
func localExec(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return &ExitStatus{Code: ee.ExitCode()}
	}
	if errors.As(err, &ee) {
		// Killed by a signal: the shell exec'd the program, so its death
		// by signal is what a pod exec reports as exit 128+n.
		return &ExitStatus{Code: 128 + 15}
	}
	return err
}

func TestRemoteRunnerRun(t *testing.T) {
	r := NewRunner("pod test/a", localExec)
	cases := []struct {
		name       string
		cmd        command.Cmd
		stdout     string
		errContain string
	}{
		{"output", command.Cmd{Name: "echo", Args: []string{"a b", "c"}}, "a b c", ""},
		{"env", command.Cmd{Name: "sh", Args: []string{"-c", `echo "$X"`}, Env: []string{"X=it's"}}, "it's", ""},
		{"stdin", command.Cmd{Name: "cat", Stdin: strings.NewReader("in")}, "in", ""},
		{"non-zero keeps output", command.Cmd{Name: "sh", Args: []string{"-c", "echo out; echo refused >&2; exit 3"}}, "out", "exit status 3: refused"},
		{"netns refused", command.Cmd{Name: "true", Netns: "/run/netns/x"}, "", "means nothing in a pod"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.Run(context.Background(), tc.cmd)
			if tc.errContain == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tc.errContain != "" {
				var ce *command.Error
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.errContain) {
					t.Fatalf("error %v, want *command.Error containing %q", err, tc.errContain)
				}
				if !strings.Contains(err.Error(), "(pod test/a)") {
					t.Errorf("error %v does not say where", err)
				}
				if tc.stdout != "" && strings.TrimSpace(ce.Stdout) != tc.stdout {
					t.Errorf("error kept stdout %q, want %q", ce.Stdout, tc.stdout)
				}
				return
			}
			if got := strings.TrimSpace(string(res.Stdout)); got != tc.stdout {
				t.Errorf("stdout %q, want %q", got, tc.stdout)
			}
		})
	}
}

func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// pidOf reads the PID file the wrapper wrote.
func pidOf(t *testing.T, p command.Process) int {
	t.Helper()
	f := p.(*remoteProcess).pidFile
	for range 100 {
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no PID file %s", f)
	return 0
}

func TestRemoteStopKillsTheProgram(t *testing.T) {
	r := NewRunner("pod test/a", localExec)
	cases := []struct {
		name string
		cmd  command.Cmd
	}{
		{"exits on TERM", command.Cmd{Name: "sleep", Args: []string{"30"}}},
		// A program that ignores TERM is killed after the grace period.
		{"ignores TERM", command.Cmd{Name: "sh", Args: []string{"-c", "trap '' TERM; echo started; while :; do sleep 0.05; done"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := r.Start(context.Background(), tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			pid := pidOf(t, p)
			start := time.Now()
			if _, err := p.Stop(300 * time.Millisecond); err != nil {
				t.Errorf("Stop: %v (a stop we asked for is not a failure)", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Stop took %v", d)
			}
			if alive(pid) {
				t.Errorf("program %d still runs after Stop", pid)
			}
		})
	}
}

func TestRemoteStopRightAfterStart(t *testing.T) {
	r := NewRunner("pod test/a", localExec)
	p, err := r.Start(context.Background(), command.Cmd{Name: "sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.Stop(time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %v", d)
	}
}

func TestRemoteCancelKills(t *testing.T) {
	r := NewRunner("pod test/a", localExec)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, command.Cmd{Name: "sleep", Args: []string{"30"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run past its deadline = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v after its deadline", d)
	}
}

func TestRemoteWaitAfterExit(t *testing.T) {
	r := NewRunner("node x", localExec)
	p, err := r.Start(context.Background(), command.Cmd{Name: "sh", Args: []string{"-c", "echo done"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Wait()
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "done" {
		t.Errorf("Wait = %q, %v", res.Stdout, err)
	}
	if res2, err := p.Stop(time.Second); err != nil || string(res2.Stdout) != string(res.Stdout) {
		t.Errorf("Stop after exit = %q, %v", res2.Stdout, err)
	}
}
