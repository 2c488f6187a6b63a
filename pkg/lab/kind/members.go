package kind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
)

// node is a kind node: a container on the host's Docker engine.
type node struct {
	name string
	ip   netip.Addr
	role lab.Role
	exec *remoteRunner
}

var _ lab.Node = (*node)(nil)

func (n *node) Name() string         { return n.name }
func (n *node) IP() netip.Addr       { return n.ip }
func (n *node) Role() lab.Role       { return n.role }
func (n *node) Exec() command.Runner { return n.exec }
func (n *node) String() string       { return n.name }
func newNode(r command.Runner, name string, ip netip.Addr, role lab.Role) *node {
	return &node{name: name, ip: ip, role: role, exec: &remoteRunner{where: "node " + name, exec: dockerExec(r, name)}}
}

// dockerExec runs programs in a node container with `docker exec`, as kind
// does, through r (so tests can record the calls).
func dockerExec(r command.Runner, container string) execFunc {
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
			return &exitStatus{code: ee.ExitCode()}
		}
		return err
	}
}

// pod is a bench pod; programs run in its bench container through the API
// server's exec.
type pod struct {
	name, namespace, nodeName string
	ip                        netip.Addr
	mtu                       int
	exec                      *remoteRunner
}

var _ lab.Pod = (*pod)(nil)

func (p *pod) Name() string         { return p.name }
func (p *pod) IP() netip.Addr       { return p.ip }
func (p *pod) NodeName() string     { return p.nodeName }
func (p *pod) MTU() int             { return p.mtu }
func (p *pod) Exec() command.Runner { return p.exec }

// benchContainer is the container of charts/cnilab-bench's pods.
const benchContainer = "bench"

func newPod(cfg *rest.Config, cs kubernetes.Interface, namespace, name, nodeName string, ip netip.Addr) *pod {
	return &pod{name: name, namespace: namespace, nodeName: nodeName, ip: ip,
		exec: &remoteRunner{where: "pod " + namespace + "/" + name, exec: podExec(cfg, cs, namespace, name, benchContainer)}}
}

// podExec runs programs in a pod's container with client-go's exec:
// WebSocket first (Kubernetes ≥1.30 serves it), SPDY when the server or a
// proxy refuses the upgrade.
func podExec(cfg *rest.Config, cs kubernetes.Interface, namespace, name, container string) execFunc {
	return func(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
		req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(name).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: container, Command: argv, Stdin: stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
		if err != nil {
			return fmt.Errorf("exec in pod %s/%s: %w", namespace, name, err)
		}
		ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
		if err != nil {
			return fmt.Errorf("exec in pod %s/%s: %w", namespace, name, err)
		}
		ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
		if err != nil {
			return err
		}
		err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
		var ce utilexec.CodeExitError
		if errors.As(err, &ce) && ce.Code > 0 {
			return &exitStatus{code: ce.Code}
		}
		return err
	}
}
