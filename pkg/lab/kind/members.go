package kind

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os/exec"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/kube"
)

// node is a kind node: a container on the host's Docker engine.
type node struct {
	name string
	ip   netip.Addr
	role lab.Role
	exec *kube.Runner
}

var _ lab.Node = (*node)(nil)

func (n *node) Name() string         { return n.name }
func (n *node) IP() netip.Addr       { return n.ip }
func (n *node) Role() lab.Role       { return n.role }
func (n *node) Exec() command.Runner { return n.exec }
func (n *node) String() string       { return n.name }
func newNode(r command.Runner, name string, ip netip.Addr, role lab.Role) *node {
	return &node{name: name, ip: ip, role: role, exec: kube.NewRunner("node "+name, dockerExec(r, name))}
}

// dockerExec runs programs in a node container with `docker exec`, as kind
// does, through r (so tests can record the calls).
func dockerExec(r command.Runner, container string) kube.ExecFunc {
	return func(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
		args := []string{"exec"}
		if stdin != nil {
			args = append(args, "-i")
		}
		args = append(append(args, container), argv...)
		res, err := r.Run(ctx, command.Cmd{Name: "docker", Args: args, Stdin: stdin})
		_, _ = stdout.Write(res.Stdout)
		_, _ = stderr.Write(res.Stderr)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return &kube.ExitStatus{Code: ee.ExitCode()}
		}
		return err
	}
}
