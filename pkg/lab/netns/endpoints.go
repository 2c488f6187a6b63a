package netns

import (
	"context"
	"net/netip"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
)

// nsRunner runs every program in one network namespace and, when the lab
// has a socket-level service proxy, in its client cgroup: every pod's
// sockets pass Cilium's cgroup hooks, so every pod process starts there.
type nsRunner struct {
	inner    command.Runner
	netns    string
	cgroupFD func() int
}

func (r nsRunner) prepare(c command.Cmd) command.Cmd {
	c.Netns = r.netns
	if r.cgroupFD != nil {
		c.CgroupFD = r.cgroupFD()
	}
	return c
}

func (r nsRunner) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	return r.inner.Run(ctx, r.prepare(c))
}

func (r nsRunner) Start(ctx context.Context, c command.Cmd) (command.Process, error) {
	return r.inner.Start(ctx, r.prepare(c))
}

// Node is a node namespace of a netns lab.
type Node struct {
	name  string
	ip    netip.Addr
	netns string
	exec  nsRunner
}

var _ lab.Node = (*Node)(nil)

func (n *Node) Name() string   { return n.name }
func (n *Node) IP() netip.Addr { return n.ip }

// Role: a netns lab has no control plane; every node carries pods.
func (n *Node) Role() lab.Role       { return lab.RoleWorker }
func (n *Node) Exec() command.Runner { return n.exec }
func (n *Node) Namespace() string    { return n.netns }

// Pod is a pod namespace of a netns lab (in the host baseline, a node
// namespace standing in for the pod).
type Pod struct {
	name  string
	ip    netip.Addr
	node  string
	index int // node index
	mtu   int
	netns string
	exec  nsRunner
}

var _ lab.Pod = (*Pod)(nil)

func (p *Pod) Name() string         { return p.name }
func (p *Pod) IP() netip.Addr       { return p.ip }
func (p *Pod) NodeName() string     { return p.node }
func (p *Pod) MTU() int             { return p.mtu }
func (p *Pod) Exec() command.Runner { return p.exec }

// Namespace is the pod's network namespace path, for this package's
// real-kernel tests; scenarios never see it.
func (p *Pod) Namespace() string { return p.netns }
