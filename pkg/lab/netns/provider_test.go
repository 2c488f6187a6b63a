package netns

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/labs"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/internal/hostsnap"
	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/netplan"
	"github.com/cnilab/cnilab/scenarios"
)

func needRoot(t testing.TB) {
	t.Helper()
	testenv.Kernel(t, "builds network namespaces")
}

func runID(t testing.TB) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func setup(t testing.TB) (*Provider, *config.Set) {
	needRoot(t)
	caps, err := kernelcap.Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	set, err := config.Load(labs.FS, "labs", scenarios.FS, "scenarios")
	if err != nil {
		t.Fatal(err)
	}
	return New(caps, command.Exec{}), set
}

// up builds a lab and registers its teardown, checking nothing is left.
func up(t testing.TB, p *Provider, def *config.Lab, id string, podsPerNode int) *lab.Instance {
	t.Helper()
	in, err := p.Up(context.Background(), lab.Spec{Def: def, RunID: id, Nodes: 2, PodsPerNode: podsPerNode})
	if err != nil {
		t.Fatalf("up %s: %v", def.Name, err)
	}
	t.Cleanup(func() {
		if err := p.Down(context.Background(), in); err != nil {
			t.Errorf("down %s: %v", def.Name, err)
		}
		if left, _ := netplan.ListNamespaces(datapathPrefix(id, def.Name)); len(left) > 0 {
			t.Errorf("namespaces left behind: %v", left)
		}
	})
	return in
}

func datapathPrefix(id, name string) string { return "cnl-" + id + "-" + name }

// dial connects from one namespace to addr:port in another and exchanges a
// line, proving the path works end to end.
func exchange(t testing.TB, from, to string, addr net.IP) error {
	t.Helper()
	return exchangeVia(t, from, to, addr, 7777, 7777)
}

// exchangeVia listens on listenPort in to and dials addr:dialPort from from
// (they differ when a Service translates the port).
func exchangeVia(t testing.TB, from, to string, addr net.IP, listenPort, dialPort int) error {
	t.Helper()
	var ln net.Listener
	if err := netplan.InNamespace(to, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", listenPort))
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, io.LimitReader(c, 5))
	}()
	return netplan.InNamespace(from, func() error {
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.Dial("tcp4", net.JoinHostPort(addr.String(), fmt.Sprint(dialPort)))
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil {
			return err
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "hello" {
			return fmt.Errorf("echo %q", buf)
		}
		return nil
	})
}

// captureUDP counts frames on a fabric port whose UDP destination port is
// port, while fn runs.
func captureUDP(t testing.TB, fabricNS, iface string, port int, fn func()) int {
	t.Helper()
	var fd int
	err := netplan.InNamespace(fabricNS, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	var count atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || n < 14+20+8 {
				continue
			}
			if binary.BigEndian.Uint16(buf[12:]) != 0x0800 || buf[23] != unix.IPPROTO_UDP {
				continue
			}
			ihl := int(buf[14]&0x0f) * 4
			if n >= 14+ihl+4 && int(binary.BigEndian.Uint16(buf[14+ihl+2:])) == port {
				count.Add(1)
			}
		}
	}()
	fn()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	<-done
	return int(count.Load())
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func ip(p lab.Pod) net.IP { return net.IP(p.IP().AsSlice()) }

// nsName is the namespace name of a netns lab's pod.
func nsName(p lab.Pod) string {
	return strings.TrimPrefix(p.(*Pod).Namespace(), netplan.NetnsDir+"/")
}

// TestDatapaths builds every modelled lab, proves pods reach each other
// across nodes and on the same node, that the encapsulation the design calls
// for is really on the wire (and absent where the design has none), that
// MTUs are the design's, that teardown leaves nothing, and that the host's
// network configuration is byte-identical before and after.
func TestDatapaths(t *testing.T) {
	p, set := setup(t)
	before := hostsnap.Take(t)
	cases := []struct {
		lab      string
		mtu      int
		udpPort  int // encapsulation port expected on the fabric; 0 = none
		noEncaps []int
	}{
		{"host", 1500, 0, []int{8472, 4789}},
		{"flannel", 1450, 8472, nil},
		{"flannel-host-gw", 1500, 0, []int{8472, 4789}},
		{"calico", 1500, 0, []int{8472, 4789}},
		{"calico-vxlan", 1450, 4789, []int{8472}},
		{"kube-router", 1500, 0, []int{8472, 4789}},
		{"cilium", 1500, 8472, nil},
		{"cilium-native", 1500, 0, []int{8472, 4789}},
		{"canal", 1450, 8472, nil},
	}
	id := runID(t)
	for _, tc := range cases {
		t.Run(tc.lab, func(t *testing.T) {
			def := set.Labs[tc.lab]
			pods := 2
			if def.Netns.Model == "none" {
				pods = 0
			}
			in := up(t, p, def, id, pods)
			if in.PodMTU != tc.mtu {
				t.Errorf("pod MTU %d, want %d", in.PodMTU, tc.mtu)
			}
			client, cross, err := in.Pair(lab.CrossNode)
			if err != nil {
				t.Fatal(err)
			}
			// Every lab, the host baseline included, has a same-node
			// server in a namespace of its own on the client's node.
			_, same, err := in.Pair(lab.SameNode)
			if err != nil {
				t.Fatal(err)
			}
			if nsName(same) == nsName(client) || same.NodeName() != client.NodeName() {
				t.Fatalf("same-node server %s (%s on %s) is not another namespace on the client's node %s", same.Name(), nsName(same), same.NodeName(), client.NodeName())
			}
			// The pod's eth0 MTU, read from the kernel.
			var mtu int
			if err := netplan.InNamespace(nsName(client), func() error {
				ifi, err := net.InterfaceByName("eth0")
				if err == nil {
					mtu = ifi.MTU
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if mtu != tc.mtu {
				t.Errorf("kernel says eth0 MTU %d, want %d", mtu, tc.mtu)
			}
			fabric := datapathPrefix(id, tc.lab) + "-fab"
			clientNS := nsName(client)
			crossNS := nsName(cross)
			var xerr error
			ports := append([]int{tc.udpPort}, tc.noEncaps...)
			for _, port := range ports {
				if port == 0 {
					continue
				}
				n := captureUDP(t, fabric, "p-n1", port, func() { xerr = exchange(t, clientNS, crossNS, ip(cross)) })
				if xerr != nil {
					t.Fatalf("cross-node %s -> %s (%s): %v", client.Name(), cross.Name(), cross.IP(), xerr)
				}
				if port == tc.udpPort && n == 0 {
					t.Errorf("no UDP/%d frames on the fabric: the encapsulation is not in use", port)
				}
				if port != tc.udpPort && n != 0 {
					t.Errorf("%d UDP/%d frames on the fabric, want none", n, port)
				}
			}
			if tc.udpPort == 0 {
				if err := exchange(t, clientNS, crossNS, ip(cross)); err != nil {
					t.Fatalf("cross-node: %v", err)
				}
			}
			if err := exchange(t, clientNS, nsName(same), ip(same)); err != nil {
				t.Errorf("same-node %s -> %s: %v", client.Name(), same.Name(), err)
			}
			// The server's own interface has the pod MTU (the host
			// baseline's: the underlay's, not loopback's 65536).
			if err := netplan.InNamespace(nsName(same), func() error {
				ifi, err := net.InterfaceByName("eth0")
				if err == nil && ifi.MTU != tc.mtu {
					t.Errorf("same-node server eth0 MTU %d, want %d", ifi.MTU, tc.mtu)
				}
				return err
			}); err != nil {
				t.Error(err)
			}
		})
	}
	hostsnap.Check(t, before)
}

// TestServiceVIPs: a connect to the lab's ClusterIP from a pod reaches the
// server pod behind it. This test process is not in Cilium's client cgroup,
// so for cilium the connect takes the per-packet TC path, not socket-LB.
func TestServiceVIPs(t *testing.T) {
	p, set := setup(t)
	id := runID(t)
	for _, name := range []string{"flannel", "calico", "cilium", "kube-router"} {
		t.Run(name, func(t *testing.T) {
			in := up(t, p, set.Labs[name], id, 2)
			client := in.Pods[0]
			served := 0
			for _, srv := range in.Pods[1:] {
				vip, ok := in.ServiceAddrs[lab.ServiceKey(srv.Name(), "tcp")]
				if !ok {
					continue // only the iperf3 server pods have Services
				}
				served++
				err := exchangeVia(t, nsName(client), nsName(srv),
					net.IP(vip.Addr().AsSlice()), lab.ServicePort, int(vip.Port()))
				if err != nil {
					t.Errorf("%s → %s via %s (%s): %v", client.Name(), srv.Name(), vip, in.Proxy, err)
				}
			}
			if served != 2 {
				t.Errorf("%d pods have a Service, want the cross-node and the same-node server", served)
			}
			if name == "cilium" && !strings.Contains(strings.Join(in.Notes, " "), "TC DNAT is approximate") {
				t.Errorf("cilium lab does not say its TC path is approximate: %v", in.Notes)
			}
		})
	}
}

func TestUnavailableLabsSayWhy(t *testing.T) {
	p, set := setup(t)
	for _, name := range []string{"antrea", "weave", "calico-vpp"} {
		_, err := p.Up(context.Background(), lab.Spec{Def: set.Labs[name], RunID: "tx", Nodes: 2, PodsPerNode: 1})
		if !lab.IsUnavailable(err) || !strings.Contains(err.Error(), "not modelled in netns") {
			t.Errorf("%s: %v, want unavailable with the reason", name, err)
		}
	}
	if !p.Caps.Has("ipip") {
		_, err := p.Up(context.Background(), lab.Spec{Def: set.Labs["calico-ipip"], RunID: "tx", Nodes: 2, PodsPerNode: 1})
		if !lab.IsUnavailable(err) || !strings.Contains(err.Error(), "CONFIG_NET_IPIP missing") {
			t.Errorf("calico-ipip on a kernel without IPIP: %v", err)
		}
	}
}

func TestDownAllIsIdempotent(t *testing.T) {
	p, set := setup(t)
	id := runID(t)
	in, err := p.Up(context.Background(), lab.Spec{Def: set.Labs["flannel"], RunID: id, Nodes: 2, PodsPerNode: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = in
	// Narrowed to this test's run so tests running in parallel (other
	// packages build their own cnl- namespaces) are not swept away.
	p.Prefix = "cnl-" + id + "-"
	removed, err := p.DownAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) < 5 {
		t.Errorf("DownAll removed %v, want the lab's 5 namespaces", removed)
	}
	if left, _ := p.List(context.Background()); len(left) > 0 {
		t.Errorf("left after DownAll: %v", left)
	}
	if again, err := p.DownAll(context.Background()); err != nil || len(again) != 0 {
		t.Errorf("second DownAll: %v %v", again, err)
	}
}
