// Package labfake is a lab made of plain values: pods and nodes that run
// their programs through any command.Runner (usually a command.Fake), so
// scenario engines are tested without root, namespaces or clusters, the way
// a real provider's pods would drive them.
package labfake

import (
	"context"

	"net/netip"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/results"
)

// Pod is a lab.Pod whose programs go to Runner, with Env recording the pod
// ("CNILAB_FAKE_POD=<name>") so a test can tell which pod ran what.
type Pod struct {
	PodName string
	Addr    netip.Addr
	Node    string
	PodMTU  int
	Runner  command.Runner
}

var _ lab.Pod = (*Pod)(nil)

func (p *Pod) Name() string         { return p.PodName }
func (p *Pod) IP() netip.Addr       { return p.Addr }
func (p *Pod) NodeName() string     { return p.Node }
func (p *Pod) MTU() int             { return p.PodMTU }
func (p *Pod) Exec() command.Runner { return tagged{p.Runner, p.PodName} }

// PodEnv is the environment entry naming the pod a command ran in.
const PodEnv = "CNILAB_FAKE_POD"

// PodOf returns the pod a recorded command ran in ("" if none).
func PodOf(c command.Cmd) string {
	for _, e := range c.Env {
		if len(e) > len(PodEnv)+1 && e[:len(PodEnv)+1] == PodEnv+"=" {
			return e[len(PodEnv)+1:]
		}
	}
	return ""
}

// Lab returns an instance with a client and cross-node and same-node
// servers, a ClusterIP per server and protocol when proxy is not "".
func Lab(r command.Runner, proxy string) *lab.Instance {
	client := &Pod{PodName: "client", Addr: netip.MustParseAddr("10.244.1.2"), Node: "w1", PodMTU: 1450, Runner: r}
	cross := &Pod{PodName: "server-cross", Addr: netip.MustParseAddr("10.244.2.2"), Node: "w2", PodMTU: 1450, Runner: r}
	same := &Pod{PodName: "server-same", Addr: netip.MustParseAddr("10.244.1.3"), Node: "w1", PodMTU: 1450, Runner: r}
	in := &lab.Instance{Name: "fake", CNI: "fake", Provider: "fake", Fidelity: results.Real, Proxy: proxy,
		Pods: []lab.Pod{client, cross, same},
		Pairs: map[lab.Placement]lab.PodPair{
			lab.CrossNode: {Client: client, Server: cross},
			lab.SameNode:  {Client: client, Server: same},
		},
		ServiceAddrs: map[string]netip.AddrPort{}}
	if proxy != "" {
		for i, s := range []*Pod{cross, same} {
			for _, proto := range []string{"tcp", "udp"} {
				in.ServiceAddrs[lab.ServiceKey(s.PodName, proto)] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 96, 0, byte(10 + i)}), lab.ServicePort)
			}
		}
	}
	return in
}

type tagged struct {
	inner command.Runner
	pod   string
}

func (t tagged) tag(c command.Cmd) command.Cmd {
	c.Env = append(append([]string(nil), c.Env...), PodEnv+"="+t.pod)
	return c
}

func (t tagged) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	return t.inner.Run(ctx, t.tag(c))
}

func (t tagged) Start(ctx context.Context, c command.Cmd) (command.Process, error) {
	return t.inner.Start(ctx, t.tag(c))
}
