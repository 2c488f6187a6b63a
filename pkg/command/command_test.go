package command

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/netplan"
)

func TestRunKeepsOutputOnFailure(t *testing.T) {
	_, err := Exec{}.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "echo out; echo err >&2; exit 3"}})
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a command.Error", err)
	}
	if strings.TrimSpace(ce.Stdout) != "out" || strings.TrimSpace(ce.Stderr) != "err" {
		t.Errorf("stdout %q stderr %q", ce.Stdout, ce.Stderr)
	}
	if !strings.Contains(err.Error(), "err") {
		t.Errorf("message %q lacks stderr", err)
	}
}

func TestRunMissingProgram(t *testing.T) {
	if _, err := (Exec{}).Run(context.Background(), Cmd{Name: "cnilab-no-such-program"}); err == nil {
		t.Error("missing program ran")
	}
}

func TestStopEndsALongProgram(t *testing.T) {
	p, err := Exec{}.Start(context.Background(), Cmd{Name: "sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.Stop(time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("stop took longer than its grace")
	}
}

// TestRunInNetns proves a program started with Netns lives in that
// namespace for its whole life (it is not killed when the starting thread
// would otherwise exit) and the caller's namespace is untouched.
func TestRunInNetns(t *testing.T) {
	testenv.Kernel(t, "creates a network namespace")
	const name = "cnl-test-command"
	if err := netplan.CreateNamespace(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netplan.DeleteNamespace(name) })
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+name, &st); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	res, err := Exec{}.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "sleep 0.3; readlink /proc/self/ns/net"}, Netns: "/run/netns/" + name})
	if err != nil {
		t.Fatal(err)
	}
	child := strings.TrimSpace(string(res.Stdout))
	if child != want {
		t.Errorf("child ran in %q, want the lab namespace %q", child, want)
	}
}
