// Package netnstopo builds the smallest topology a service proxy can be
// measured on, for tests, benchmarks and standalone services-scale runs:
// one node namespace routing between pod namespaces, each pod wired to
// the node with a veth (eth0 in the pod, /24 per pod, the node side is the
// gateway). Pod-to-service traffic is routed through the node, so the
// node's netfilter hooks see it as they see it on a real node. Everything
// is named with the caller's prefix and removed by Close; nothing touches
// the host namespace.
package netnstopo

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Pod is one pod namespace.
type Pod struct {
	Name  string // short name given by the caller
	Netns string // /run/netns/<prefix><name>
	IP    netip.Addr
}

// Star is a node namespace with pods around it.
type Star struct {
	Prefix string
	Node   string // netns path of the node
	Pods   []Pod
	names  []string
}

// ClusterCIDR holds every pod address of a Star.
var ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")

// New creates <prefix>node and one namespace per pod name. prefix must
// start with "cnl-". On error everything created so far is removed.
func New(prefix string, pods ...string) (s *Star, err error) {
	if !strings.HasPrefix(prefix, "cnl-") {
		return nil, fmt.Errorf("namespace prefix %q must start with cnl-", prefix)
	}
	if len(pods) > 250 {
		return nil, fmt.Errorf("%d pods: at most 250", len(pods))
	}
	s = &Star{Prefix: prefix}
	defer func() {
		if err != nil {
			_ = s.Close()
			s = nil
		}
	}()
	nodeName := prefix + "node"
	if err := s.create(nodeName); err != nil {
		return nil, err
	}
	s.Node = nsPath(nodeName)
	if err := inNetns(s.Node, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}); err != nil {
		return nil, fmt.Errorf("enable forwarding: %w", err)
	}
	nodeNS, err := netns.GetFromPath(s.Node)
	if err != nil {
		return nil, err
	}
	defer nodeNS.Close()
	node, err := netlink.NewHandleAt(nodeNS)
	if err != nil {
		return nil, err
	}
	defer node.Close()
	if err := up(node, "lo"); err != nil {
		return nil, err
	}
	for i, name := range pods {
		full := prefix + name
		if err := s.create(full); err != nil {
			return nil, err
		}
		pod := Pod{Name: name, Netns: nsPath(full), IP: netip.AddrFrom4([4]byte{10, 244, byte(i), 2})}
		gw := netip.AddrFrom4([4]byte{10, 244, byte(i), 1})
		if err := wire(node, pod, gw, fmt.Sprintf("veth%d", i)); err != nil {
			return nil, fmt.Errorf("wire pod %s: %w", name, err)
		}
		s.Pods = append(s.Pods, pod)
	}
	return s, nil
}

func nsPath(name string) string { return filepath.Join("/run/netns", name) }

// create makes a named namespace from a thread that is thrown away
// afterwards (it exits locked), so no goroutine keeps running inside it.
func (s *Star) create(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	s.names = append(s.names, name)
	return nil
}

// inNetns runs f on a thread inside the namespace; the thread is discarded.
func inNetns(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func up(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetUp(l)
}

func wire(node *netlink.Handle, pod Pod, gw netip.Addr, hostIf string) error {
	podNS, err := netns.GetFromPath(pod.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	ph, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return err
	}
	defer ph.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostIf}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(podNS))}
	if err := node.LinkAdd(veth); err != nil {
		return err
	}
	hl, err := node.LinkByName(hostIf)
	if err != nil {
		return err
	}
	gwAddr, _ := netlink.ParseAddr(gw.String() + "/24")
	if err := node.AddrAdd(hl, gwAddr); err != nil {
		return err
	}
	if err := node.LinkSetUp(hl); err != nil {
		return err
	}
	pl, err := ph.LinkByName("eth0")
	if err != nil {
		return err
	}
	podAddr, _ := netlink.ParseAddr(pod.IP.String() + "/24")
	if err := ph.AddrAdd(pl, podAddr); err != nil {
		return err
	}
	if err := ph.LinkSetUp(pl); err != nil {
		return err
	}
	if err := up(ph, "lo"); err != nil {
		return err
	}
	return ph.RouteAdd(&netlink.Route{LinkIndex: pl.Attrs().Index, Gw: gw.AsSlice()})
}

// Pod returns the pod called name.
func (s *Star) Pod(name string) (Pod, bool) {
	for _, p := range s.Pods {
		if p.Name == name {
			return p, true
		}
	}
	return Pod{}, false
}

// Close deletes every namespace it created (veths go with them).
// Processes started in them must have been stopped by the caller.
func (s *Star) Close() error {
	var errs []error
	for i := len(s.names) - 1; i >= 0; i-- {
		if err := netns.DeleteNamed(s.names[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("delete netns %s: %w", s.names[i], err))
		}
	}
	s.names = nil
	return errors.Join(errs...)
}
