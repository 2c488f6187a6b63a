package ebpf

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/cnilab/cnilab/pkg/netplan"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/pkg/cgroup2"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/netnstopo"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/proxy"
)

func TestMain(m *testing.M) {
	probe.MaybeRunFromTest()
	os.Exit(m.Run())
}

// inNetns runs f on a thread inside the namespace at path.
func inNetns(path string, f func() error) error { return netplan.InNamespacePath(path, f) }

// setTxChecksum turns an interface's TX checksum offload on or off
// (ETHTOOL_STXCSUM; no ethtool binary here). With it off on the node's
// veths, every packet leaving the node through them gets its L4 checksum
// computed in software from what the TC programs left, and the receiving
// pod verifies it: a wrong CHECKSUM_PARTIAL seed (e.g. a missing
// BPF_F_PSEUDO_HDR) would then drop the packet instead of being trusted.
func setTxChecksum(nsPath, ifname string, on bool) error {
	return inNetns(nsPath, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		// ifreq (name + pointer) and ethtool_value in memory the Go
		// runtime never moves.
		mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			return err
		}
		defer unix.Munmap(mem)
		ev := mem[64:72]
		ioctl := func(cmd, data uint32) (uint32, error) {
			binary.NativeEndian.PutUint32(ev[0:], cmd)
			binary.NativeEndian.PutUint32(ev[4:], data)
			copy(mem[:unix.IFNAMSIZ], ifname)
			binary.NativeEndian.PutUint64(mem[unix.IFNAMSIZ:], uint64(uintptr(unsafe.Pointer(&ev[0]))))
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&mem[0]))); e != 0 {
				return 0, e
			}
			return binary.NativeEndian.Uint32(ev[4:]), nil
		}
		want := uint32(0)
		if on {
			want = 1
		}
		if _, err := ioctl(unix.ETHTOOL_STXCSUM, want); err != nil {
			return fmt.Errorf("ETHTOOL_STXCSUM %s: %w", ifname, err)
		}
		got, err := ioctl(unix.ETHTOOL_GTXCSUM, 0)
		if err != nil {
			return fmt.Errorf("ETHTOOL_GTXCSUM %s: %w", ifname, err)
		}
		if got != want {
			return fmt.Errorf("%s: tx checksum is %d after setting %d", ifname, got, want)
		}
		return nil
	})
}

// serveBackends answers TCP on <pod>:8080 and UDP on <pod>:5353 with the
// pod's name, from listeners made inside the pods' namespaces.
func serveBackends(t *testing.T, star *netnstopo.Star, names ...string) {
	t.Helper()
	for _, name := range names {
		pod, _ := star.Pod(name)
		var ln net.Listener
		var pc net.PacketConn
		err := inNetns(pod.Netns, func() error {
			var err error
			if ln, err = net.Listen("tcp4", netip.AddrPortFrom(pod.IP, 8080).String()); err != nil {
				return err
			}
			pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(pod.IP, 5353).String())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close(); pc.Close() })
		msg := []byte(name + "\n")
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write(msg)
				c.Close()
			}
		}()
		go func() {
			buf := make([]byte, 1500)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(msg, from)
			}
		}()
	}
}

// giveUp bounds a broken run: after this many failures in a row the
// remaining attempts are not made (they would only add timeouts).
const giveUp = 5

// dialTCP connects n times to ap from a thread in the client namespace
// (no cgroup, so socket-LB does not see it) and tallies the replies.
func dialTCP(clientNetns string, ap netip.AddrPort, n int, timeout time.Duration) (replies map[string]int, errs map[string]int) {
	replies, errs = map[string]int{}, map[string]int{}
	_ = inNetns(clientNetns, func() error {
		ok := 0
		for i := 0; i < n && i-ok < giveUp; i++ {
			c, err := net.DialTimeout("tcp4", ap.String(), timeout)
			if err != nil {
				errs[err.Error()]++
				continue
			}
			_ = c.SetDeadline(time.Now().Add(timeout))
			b, err := io.ReadAll(c)
			c.Close()
			if err != nil {
				errs[err.Error()]++
				continue
			}
			replies[strings.TrimSpace(string(b))]++
			ok = i + 1
		}
		return nil
	})
	return replies, errs
}

// askUDP sends n requests to ap, each from a fresh unconnected socket in
// the client namespace, and tallies replies by "source=payload".
func askUDP(clientNetns string, ap netip.AddrPort, n int) (replies map[string]int, errs map[string]int) {
	replies, errs = map[string]int{}, map[string]int{}
	_ = inNetns(clientNetns, func() error {
		ok := 0
		for i := 0; i < n && i-ok < giveUp; i++ {
			pc, err := net.ListenUDP("udp4", nil)
			if err != nil {
				errs[err.Error()]++
				continue
			}
			_ = pc.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 64)
			_, err = pc.WriteToUDPAddrPort([]byte("q"), ap)
			var m int
			var from netip.AddrPort
			if err == nil {
				m, from, err = pc.ReadFromUDPAddrPort(buf)
			}
			pc.Close()
			if err != nil {
				errs[err.Error()]++
				continue
			}
			replies[fmt.Sprintf("%v=%s", from, strings.TrimSpace(string(buf[:m])))]++
			ok = i + 1
		}
		return nil
	})
	return replies, errs
}

// tcxPrograms counts the programs attached with TCX at ingress and egress
// of an interface.
func tcxPrograms(nsPath, ifname string) (in, out int, err error) {
	err = inNetns(nsPath, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		for i, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			r, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: at})
			if err != nil {
				return err
			}
			if i == 0 {
				in = len(r.Programs)
			} else {
				out = len(r.Programs)
			}
		}
		return nil
	})
	return in, out, err
}

func leftoverNamespaces(prefix string) []string {
	var out []string
	es, _ := os.ReadDir("/run/netns")
	for _, e := range es {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestTCServicePathKernel is the real-kernel check of the per-packet TC
// path: a client that socket-LB does not cover (not in the cgroup the
// connect4 program is attached to) reaches a TCP and a UDP VIP through
// the TC programs on the node's pod veths, replies come back from the VIP,
// connect4-translated flows pass untouched, and Close detaches.
// "node-tx-csum-off" repeats it with the node's veths computing checksums
// in software, so the receiving pods verify what the programs wrote.
func TestTCServicePathKernel(t *testing.T) {
	testenv.Kernel(t, "TC test")
	root, _, err := cgroup2.Root()
	if err != nil {
		t.Skipf("no cgroup v2: %v", err)
	}
	for _, mode := range []string{"offload", "node-tx-csum-off"} {
		t.Run(mode, func(t *testing.T) {
			b := make([]byte, 3)
			_, _ = rand.Read(b)
			prefix := "cnl-t" + hex.EncodeToString(b) + "-"
			t.Cleanup(func() { // runs last
				if left := leftoverNamespaces(prefix); len(left) > 0 {
					t.Errorf("namespaces left behind: %v", left)
				}
			})
			star, err := netnstopo.New(prefix, "client", "b1", "b2")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := star.Close(); err != nil {
					t.Error(err)
				}
			})
			g, err := cgroup2.Create(root, prefix+"clients")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := g.Remove(); err != nil {
					t.Error(err)
				}
			})
			serveBackends(t, star, "b1", "b2")
			client, _ := star.Pod("client")
			b1, _ := star.Pod("b1")
			b2, _ := star.Pod("b2")
			var ifaces []TCAttachment
			for i := range star.Pods {
				ifaces = append(ifaces, TCAttachment{Netns: star.Node, Name: fmt.Sprintf("veth%d", i)})
				if mode == "node-tx-csum-off" {
					if err := setTxChecksum(star.Node, fmt.Sprintf("veth%d", i), false); err != nil {
						t.Fatal(err)
					}
				}
			}
			p, err := NewKernel(proxy.Target{CgroupDir: g.Path, PodHostIfaces: ifaces})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			t.Cleanup(func() { _ = p.Close(ctx) })
			vip := netip.MustParseAddr("10.96.0.10")
			svcs := []proxy.Service{
				{Namespace: "default", Name: "web", PortName: "http", ClusterIP: vip, Port: 80, Protocol: proxy.TCP,
					Endpoints: []proxy.Endpoint{{IP: b1.IP, Port: 8080}, {IP: b2.IP, Port: 8080}}},
				{Namespace: "default", Name: "dns", PortName: "dns", ClusterIP: vip, Port: 53, Protocol: proxy.UDP,
					Endpoints: []proxy.Endpoint{{IP: b1.IP, Port: 5353}, {IP: b2.IP, Port: 5353}}},
			}
			if err := p.Sync(ctx, svcs); err != nil {
				t.Fatal(err)
			}
			for _, ifc := range ifaces {
				if in, out, err := tcxPrograms(ifc.Netns, ifc.Name); err != nil || in != 1 || out != 1 {
					t.Fatalf("%v: %d ingress and %d egress TCX programs (%v), want 1 and 1", ifc, in, out, err)
				}
			}
			if n := p.Notes(); len(n) != 1 || n[0] != TCNote {
				t.Errorf("notes %v, want TCNote", n)
			}

			// TCP: 200 connects, spread like connect4's (binomial n=200
			// p=0.5: 70..130 is beyond ±4 sigma).
			replies, errs := dialTCP(client.Netns, netip.AddrPortFrom(vip, 80), 200, 2*time.Second)
			t.Logf("%s: TCP via TC: replies %v, errors %v", mode, replies, errs)
			if replies["b1"]+replies["b2"] != 200 {
				t.Fatalf("%d of 200 TCP connects to the VIP succeeded (the rest failed or, after %d failures in a row, were not tried): %v", replies["b1"]+replies["b2"], giveUp, errs)
			}
			for _, name := range []string{"b1", "b2"} {
				if n := replies[name]; n < 70 || n > 130 {
					t.Errorf("backend %s got %d of 200 connects; spread %v is implausible for 1/2 each", name, n, replies)
				}
			}
			// UDP: the reply's source is the VIP, so the reverse path works.
			ur, uerrs := askUDP(client.Netns, netip.AddrPortFrom(vip, 53), 40)
			t.Logf("%s: UDP via TC: replies %v, errors %v", mode, ur, uerrs)
			from := netip.AddrPortFrom(vip, 53).String()
			if ur[from+"=b1"]+ur[from+"=b2"] != 40 {
				t.Errorf("UDP: replies %v, errors %v; want 40 replies from %s", ur, uerrs, from)
			}
			if ur[from+"=b1"] == 0 || ur[from+"=b2"] == 0 {
				t.Errorf("UDP: 40 new flows all went to one backend: %v", ur)
			}
			k := p.maps.(*KernelMaps)
			flows, err := k.TCFlows()
			if err != nil {
				t.Fatal(err)
			}
			// Two entries per flow, except that the kernel may hand a later
			// flow the source port of an earlier one to the same backend
			// (RST-closed sockets free their port at once); that flow then
			// rewrites the earlier flow's two entries. A handful of such
			// reuses is normal, a table far short of 2 per flow is not.
			if want := 2 * (200 + 40); flows > want || flows < want-20 {
				t.Errorf("flow table holds %d entries, want %d (2 per flow) less a few port reuses", flows, want)
			}

			// A socket-LB client: connect4 sends it straight to a backend,
			// and the TC programs leave it alone.
			c := probe.TestLauncher().Cmd("connect", "-target", netip.AddrPortFrom(vip, 80).String(), "-count", "50", "-duration", "20s", "-read", "-timeout", "1s")
			c.Netns, c.CgroupFD = client.Netns, g.FD()
			res, err := command.Exec{}.Run(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			r, err := probe.ParseConnectResult(res.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: TCP via connect4: %d/%d ok, replies %v", mode, r.OK, r.Attempts, r.Replies)
			if r.OK != 50 {
				t.Errorf("socket-LB client: %d of 50 connects failed: %v", r.Failed, r.Errors)
			}
			// They add no flow entries. Their SYNs may remove some: a client
			// port reused from a TC flow to the same backend drops that
			// flow's stale reverse entry (which would otherwise rewrite the
			// direct connection's SYN-ACK to the VIP).
			after, _ := k.TCFlows()
			t.Logf("%s: flow table %d -> %d entries after the connect4 client", mode, flows, after)
			if after > flows {
				t.Errorf("connect4-translated flows went through the TC NAT: flow table %d -> %d entries", flows, after)
			}

			// Close detaches: no TCX programs left, the VIP stops answering.
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for _, ifc := range ifaces {
				if in, out, err := tcxPrograms(ifc.Netns, ifc.Name); err != nil || in != 0 || out != 0 {
					t.Errorf("after Close %v: %d ingress and %d egress TCX programs (%v)", ifc, in, out, err)
				}
			}
			if replies, _ := dialTCP(client.Netns, netip.AddrPortFrom(vip, 80), 1, 300*time.Millisecond); len(replies) != 0 {
				t.Errorf("VIP still answers after Close: %v", replies)
			}
		})
	}
}
