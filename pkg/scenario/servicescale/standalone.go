package servicescale

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/cnilab/cnilab/pkg/cgroup2"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/netnstopo"
	"github.com/cnilab/cnilab/pkg/probe"
)

// Standalone builds a throwaway environment for the scenario without a
// lab: a node namespace, a client pod and a server pod running
// "probe serve" for at most lifetime, and a cgroup for the client probe.
// prefix must start with "cnl-"; empty picks "cnl-ss<random>-". The
// returned cleanup stops the server and removes namespaces and cgroup.
func Standalone(ctx context.Context, r command.Runner, l probe.Launcher, prefix string, lifetime time.Duration) (env Env, cleanup func() error, err error) {
	if prefix == "" {
		b := make([]byte, 3)
		if _, err := rand.Read(b); err != nil {
			return Env{}, nil, err
		}
		prefix = "cnl-ss" + hex.EncodeToString(b) + "-"
	}
	var undo []func() error
	cleanup = func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		undo = nil
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = cleanup()
		}
	}()
	star, err := netnstopo.New(prefix, "client", "server")
	if err != nil {
		return Env{}, nil, err
	}
	undo = append(undo, star.Close)
	server, _ := star.Pod("server")
	client, _ := star.Pod("client")
	sa := netip.AddrPortFrom(server.IP, 8080)
	c := l.Cmd("serve", "-listen", sa.String(), "-reply", "server", "-duration", lifetime.String())
	c.Netns = server.Netns
	proc, err := r.Start(ctx, c)
	if err != nil {
		return Env{}, nil, err
	}
	undo = append(undo, func() error { _, err := proc.Stop(2 * time.Second); return err })
	root, _, err := cgroup2.Root()
	if err != nil {
		return Env{}, nil, err
	}
	g, err := cgroup2.Create(root, prefix+"clients")
	if err != nil {
		return Env{}, nil, err
	}
	undo = append(undo, g.Remove)
	env = Env{Runner: r, Launcher: l, Nodes: []string{star.Node}, ClientNetns: client.Netns, Servers: []netip.AddrPort{sa},
		ClusterCIDR: netnstopo.ClusterCIDR, CgroupDir: g.Path, CgroupFD: g.FD(), Provider: "netns", Lab: "services-scale"}
	// The server is ready when a direct connect from the client works.
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, perr := runProbe(ctx, env, sa, "latency", 1, time.Second)
		if perr == nil && res.OK == 1 {
			return env, cleanup, nil
		}
		if time.Now().After(deadline) {
			return Env{}, nil, fmt.Errorf("server %v not reachable from the client: %v %s", sa, perr, strconv.Itoa(res.Failed))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
