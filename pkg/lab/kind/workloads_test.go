package kind

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
)

var (
	testAddr = netip.MustParseAddr("172.18.0.3")
	errExit1 = errors.New("exit status 1")
)

func TestNodeExecThroughDocker(t *testing.T) {
	f := &command.Fake{Responses: map[string]command.FakeResponse{"docker": {Stdout: "5: flannel.1: <UP> mtu 1450\n"}}}
	n := newNode(f, "cnl-r1-flannel-worker", testAddr, lab.RoleWorker)
	res, err := n.Exec().Run(context.Background(), command.Cmd{Name: "ip", Args: []string{"-d", "link", "show", "flannel.1"}})
	if err != nil || !strings.Contains(string(res.Stdout), "flannel.1") {
		t.Fatalf("Run = %q, %v", res.Stdout, err)
	}
	args := f.Calls[0].Args
	if args[0] != "exec" || args[1] != "cnl-r1-flannel-worker" || args[2] != "sh" || args[3] != "-c" || !strings.HasPrefix(args[5], "/tmp/cnl-") {
		t.Errorf("docker args %q", args)
	}
	if tail := strings.Join(args[6:], " "); tail != "ip -d link show flannel.1" {
		t.Errorf("program %q", tail)
	}
	f.Responses["docker"] = command.FakeResponse{Stderr: "Device \"flannel.1\" does not exist.", Err: errExit1}
	_, err = n.Exec().Run(context.Background(), command.Cmd{Name: "ip", Args: []string{"link", "show", "flannel.1"}})
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "node cnl-r1-flannel-worker") {
		t.Errorf("error %v", err)
	}
}
