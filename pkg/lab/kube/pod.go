package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"

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

// Pod is a bench pod; programs run in its bench container through the API
// server's exec.
type Pod struct {
	name, namespace, nodeName string
	ip                        netip.Addr
	mtu                       int
	exec                      *Runner
}

var _ lab.Pod = (*Pod)(nil)

// Name implements lab.Pod.
func (p *Pod) Name() string { return p.name }

// IP implements lab.Pod.
func (p *Pod) IP() netip.Addr { return p.ip }

// NodeName implements lab.Pod.
func (p *Pod) NodeName() string { return p.nodeName }

// MTU implements lab.Pod.
func (p *Pod) MTU() int { return p.mtu }

// Exec implements lab.Pod.
func (p *Pod) Exec() command.Runner { return p.exec }

// Namespace is the pod's namespace.
func (p *Pod) Namespace() string { return p.namespace }

// BenchContainer is the container of charts/cnilab-bench's pods.
const BenchContainer = "bench"

// NewPod is the bench pod namespace/name, running on nodeName at ip.
func NewPod(cfg *rest.Config, cs kubernetes.Interface, namespace, name, nodeName string, ip netip.Addr) *Pod {
	return &Pod{name: name, namespace: namespace, nodeName: nodeName, ip: ip,
		exec: NewRunner("pod "+namespace+"/"+name, PodExec(cfg, cs, namespace, name, BenchContainer))}
}

// PodExec runs programs in a pod's container with client-go's exec:
// WebSocket first (Kubernetes ≥1.30 serves it), SPDY when the server or a
// proxy refuses the upgrade.
func PodExec(cfg *rest.Config, cs kubernetes.Interface, namespace, name, container string) ExecFunc {
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
			return &ExitStatus{Code: ce.Code}
		}
		return err
	}
}
