package proxies

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/cgroup2"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/netnstopo"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/proxy"
	"github.com/cnilab/cnilab/pkg/proxy/ebpf"
	"github.com/cnilab/cnilab/pkg/proxy/iptables"
	"github.com/cnilab/cnilab/pkg/proxy/nftables"
	"github.com/cnilab/cnilab/pkg/proxy/proxytest"
)

func TestMain(m *testing.M) {
	probe.MaybeRunFromTest()
	os.Exit(m.Run())
}

func randomPrefix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "cnl-t" + hex.EncodeToString(b) + "-"
}

// kernelLab is a throwaway node with a client and two backend pods, each
// backend answering with its own name.
type kernelLab struct {
	star   *netnstopo.Star
	runner command.Runner
}

func newKernelLab(t *testing.T) *kernelLab {
	t.Helper()
	testenv.Kernel(t, "proxy test")
	star, err := netnstopo.New(randomPrefix(t), "client", "b1", "b2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := star.Close(); err != nil {
			t.Error(err)
		}
	})
	l := &kernelLab{star: star, runner: command.Exec{}}
	ctx := context.Background()
	for _, name := range []string{"b1", "b2"} {
		pod, _ := star.Pod(name)
		c := probe.TestLauncher().Cmd("serve", "-listen", pod.IP.String()+":8080", "-reply", name, "-duration", "2m")
		c.Netns = pod.Netns
		proc, err := l.runner.Start(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		// Registered after star.Close, so it runs first: servers stop
		// before their namespaces go.
		t.Cleanup(func() { _, _ = proc.Stop(2 * time.Second) })
	}
	for _, name := range []string{"b1", "b2"} {
		pod, _ := star.Pod(name)
		l.waitReachable(t, netip.AddrPortFrom(pod.IP, 8080))
	}
	return l
}

func (l *kernelLab) waitReachable(t *testing.T, ap netip.AddrPort) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := l.connect(ap, 1, 0)
		if err == nil && r.OK == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %v not reachable from the client: %v %+v", ap, err, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *kernelLab) connect(ap netip.AddrPort, n int, cgroupFD int) (probe.ConnectResult, error) {
	client, _ := l.star.Pod("client")
	c := probe.TestLauncher().Cmd("connect", "-target", ap.String(), "-count", fmt.Sprint(n), "-duration", "20s", "-read", "-timeout", "500ms")
	c.Netns = client.Netns
	c.CgroupFD = cgroupFD
	res, err := l.runner.Run(context.Background(), c)
	if err != nil {
		return probe.ConnectResult{}, err
	}
	return probe.ParseConnectResult(res.Stdout)
}

func (l *kernelLab) services(extra int) []proxy.Service {
	b1, _ := l.star.Pod("b1")
	b2, _ := l.star.Pod("b2")
	svcs := proxytest.Services(extra, 2) // decoys before the real one
	real := proxy.Service{Namespace: "default", Name: "web", PortName: "http",
		ClusterIP: netip.MustParseAddr("10.96.0.10"), Port: 80, Protocol: proxy.TCP,
		Endpoints: []proxy.Endpoint{{IP: b1.IP, Port: 8080}, {IP: b2.IP, Port: 8080}}}
	return append(svcs, real)
}

func requireTool(t *testing.T, name string) {
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
}

// TestVIPSpreadsOverBackends is the done-when check: under every proxy a
// connect to the VIP reaches a backend, and 200 connects spread over two
// endpoints plausibly (binomial n=200 p=0.5: 70..130 is beyond ±4 sigma).
func TestVIPSpreadsOverBackends(t *testing.T) {
	// nftables-chunked: nftables with its large-Sync path (several
	// transactions) forced on these 21 services.
	for _, sub := range []string{"iptables", "nftables", "nftables-chunked", "ebpf"} {
		t.Run(sub, func(t *testing.T) {
			name := strings.TrimSuffix(sub, "-chunked")
			switch name {
			case "iptables":
				requireTool(t, "iptables-restore")
			case "nftables":
				requireTool(t, "nft")
			}
			l := newKernelLab(t)
			ctx := context.Background()
			tgt := proxy.Target{Netns: []string{l.star.Node}, Runner: l.runner, ClusterCIDR: netnstopo.ClusterCIDR}
			cgFD := 0
			if name == "ebpf" {
				root, _, err := cgroup2.Root()
				if err != nil {
					t.Skipf("no cgroup v2: %v", err)
				}
				g, err := cgroup2.Create(root, l.star.Prefix+"clients")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := g.Remove(); err != nil {
						t.Error(err)
					}
				})
				tgt.CgroupDir, cgFD = g.Path, g.FD()
			}
			p, note, err := New(name, tgt, "")
			if err != nil {
				t.Fatal(err)
			}
			if note != "" {
				t.Fatalf("unexpected fallback: %s", note)
			}
			if sub == "nftables-chunked" {
				p.(*nftables.Proxy).Chunk = 4
			}
			t.Cleanup(func() {
				if err := p.Close(ctx); err != nil {
					t.Error(err)
				}
			})
			svcs := l.services(20)
			if err := p.Sync(ctx, svcs); err != nil {
				t.Fatal(err)
			}
			vip := netip.AddrPortFrom(svcs[len(svcs)-1].ClusterIP, 80)
			r, err := l.connect(vip, 200, cgFD)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d/%d ok, replies %v, errors %v", name, r.OK, r.Attempts, r.Replies, r.Errors)
			if r.OK != 200 {
				t.Fatalf("%d of 200 connects to the VIP failed: %v", r.Failed, r.Errors)
			}
			for _, b := range []string{"b1", "b2"} {
				if n := r.Replies[b]; n < 70 || n > 130 {
					t.Errorf("backend %s got %d of 200 connects; spread %v is implausible for 1/2 each", b, n, r.Replies)
				}
			}
			// An incremental change lands: a second VIP for b2 only.
			b2, _ := l.star.Pod("b2")
			only := proxy.Service{Namespace: "default", Name: "web2", PortName: "http", ClusterIP: netip.MustParseAddr("10.96.0.11"), Port: 80, Protocol: proxy.TCP,
				Endpoints: []proxy.Endpoint{{IP: b2.IP, Port: 8080}}}
			if err := p.Update(ctx, []proxy.Service{only}, nil); err != nil {
				t.Fatal(err)
			}
			r, err = l.connect(netip.AddrPortFrom(only.ClusterIP, 80), 20, cgFD)
			if err != nil {
				t.Fatal(err)
			}
			if r.Replies["b2"] != 20 {
				t.Errorf("after update, VIP 2 replies %v, want 20 from b2", r.Replies)
			}
			// The kernel holds what the model says it should.
			got, err := p.Counts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := fakeCounts(t, name, append(svcs, only))
			if got != want {
				t.Errorf("kernel counts %+v, fake counts %+v", got, want)
			}
			// Removing the service stops the rewrite.
			if err := p.Update(ctx, nil, []string{only.Key()}); err != nil {
				t.Fatal(err)
			}
			if r, err := l.connect(netip.AddrPortFrom(only.ClusterIP, 80), 1, cgFD); err != nil || r.OK != 0 {
				t.Errorf("removed VIP still answers: %+v %v", r, err)
			}
		})
	}
}

// fakeCounts programs the same services into the backend's fake.
func fakeCounts(t *testing.T, name string, svcs []proxy.Service) proxy.Counts {
	t.Helper()
	ctx := context.Background()
	var p proxy.Proxy
	switch name {
	case "iptables":
		ip, err := iptables.New(iptables.NewFake(), proxy.Target{Netns: []string{"n"}, ClusterCIDR: netnstopo.ClusterCIDR})
		if err != nil {
			t.Fatal(err)
		}
		p = ip
	case "nftables":
		np, err := nftables.New([]nftables.Backend{nftables.NewFakeBackend()}, proxy.Target{ClusterCIDR: netnstopo.ClusterCIDR})
		if err != nil {
			t.Fatal(err)
		}
		p = np
	case "ebpf":
		p = ebpf.New(ebpf.NewFake(1<<20, 1<<20))
	}
	if err := p.Sync(ctx, svcs); err != nil {
		t.Fatal(err)
	}
	c, err := p.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
