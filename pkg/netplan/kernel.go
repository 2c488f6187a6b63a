package netplan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/sourcegraph/conc/pool"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted (the same
// place iproute2 uses, so `ip netns list` shows cnilab's labs).
const NetnsDir = "/run/netns"

// NetnsPath returns the file of a named namespace.
func NetnsPath(name string) string { return filepath.Join(NetnsDir, name) }

// Kernel applies plans to the running kernel with netlink. It only ever
// touches namespaces it creates; the caller's namespace is never modified.
type Kernel struct {
	// Log, when set, gets progress notes: why /run/netns was left as it
	// is (EnsureNetnsDir).
	Log func(format string, args ...any)
}

var _ Applier = Kernel{}

// workers bounds the goroutines (and OS threads) used per step.
const workers = 8

// Apply implements Applier.
func (k Kernel) Apply(ctx context.Context, p *Plan) (err error) {
	// Before the first namespace: CreateNamespace would do it too, but
	// here the note reaches the log.
	note, err := EnsureNetnsDir()
	if err != nil {
		return err
	}
	if note != "" && k.Log != nil {
		k.Log("netns: %s", note)
	}
	created := make([]string, 0, len(p.Namespaces))
	var mu sync.Mutex
	defer func() {
		if err != nil {
			for _, n := range created {
				_ = DeleteNamespace(n)
			}
		}
	}()
	pl := pool.New().WithErrors().WithMaxGoroutines(workers)
	for _, n := range p.Namespaces {
		pl.Go(func() error {
			if err := CreateNamespace(n); err != nil {
				return err
			}
			mu.Lock()
			created = append(created, n)
			mu.Unlock()
			return nil
		})
	}
	if err := pl.Wait(); err != nil {
		return err
	}
	hs, err := openHandles(p.Namespaces)
	if err != nil {
		return err
	}
	defer hs.close()
	for _, n := range p.Namespaces {
		if err := setUp(hs.nl[n], "lo"); err != nil {
			return fmt.Errorf("%s: lo up: %w", n, err)
		}
	}
	for _, l := range p.Links {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := hs.addLink(l); err != nil {
			return fmt.Errorf("link %s/%s: %w", l.NS, l.Name, err)
		}
	}
	// Sysctls and everything after them are per namespace; do namespaces in
	// parallel.
	byNS := map[string]*Plan{}
	part := func(ns string) *Plan {
		if byNS[ns] == nil {
			byNS[ns] = &Plan{}
		}
		return byNS[ns]
	}
	for _, s := range p.Sysctls {
		part(s.NS).Sysctls = append(part(s.NS).Sysctls, s)
	}
	for _, a := range p.Addrs {
		part(a.NS).Addrs = append(part(a.NS).Addrs, a)
	}
	for _, r := range p.Routes {
		part(r.NS).Routes = append(part(r.NS).Routes, r)
	}
	for _, e := range p.Neighs {
		part(e.NS).Neighs = append(part(e.NS).Neighs, e)
	}
	for _, e := range p.FDBs {
		part(e.NS).FDBs = append(part(e.NS).FDBs, e)
	}
	pl = pool.New().WithErrors().WithMaxGoroutines(workers)
	for ns, sub := range byNS {
		pl.Go(func() error { return hs.applyNS(ns, sub) })
	}
	return pl.Wait()
}

// Destroy implements Applier. Deleting a namespace removes its devices; a
// veth goes with either end.
func (Kernel) Destroy(_ context.Context, p *Plan) error {
	var errs []error
	for _, n := range p.Namespaces {
		if err := DeleteNamespace(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CreateNamespace creates a named network namespace, after making
// NetnsDir the shared mount point iproute2 expects (EnsureNetnsDir). The
// thread that creates it is thrown away afterwards so no goroutine ever
// runs in it by accident.
func CreateNamespace(name string) error {
	if _, err := EnsureNetnsDir(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the goroutine ends locked, so the runtime
		// discards the thread that now lives in the new namespace.
		h, err := netns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("create netns %s: %w", name, err)
			return
		}
		h.Close()
		errc <- nil
	}()
	return <-errc
}

// DeleteNamespace removes a named namespace; a missing one is not an error.
func DeleteNamespace(name string) error {
	p := NetnsPath(name)
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return nil
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// ListNamespaces returns the named namespaces whose name has the prefix.
func ListNamespaces(prefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// InNamespace runs fn on an OS thread that has joined the named namespace.
// The thread is discarded afterwards.
func InNamespace(name string, fn func() error) error {
	return InNamespacePath(NetnsPath(name), fn)
}

// InNamespacePath is InNamespace for a namespace given by its file path.
// Sockets fn creates stay in that namespace; links and BPF attachments fn
// makes are per namespace, not per thread, so they outlive the thread.
func InNamespacePath(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine ends locked, so the runtime discards
		// the thread that joined the namespace.
		runtime.LockOSThread()
		h, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", path, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

type handles struct {
	ns map[string]netns.NsHandle
	nl map[string]*netlink.Handle
}

func openHandles(names []string) (*handles, error) {
	hs := &handles{ns: map[string]netns.NsHandle{}, nl: map[string]*netlink.Handle{}}
	for _, n := range names {
		h, err := netns.GetFromPath(NetnsPath(n))
		if err != nil {
			hs.close()
			return nil, fmt.Errorf("open netns %s: %w", n, err)
		}
		hs.ns[n] = h
		nh, err := netlink.NewHandleAt(h)
		if err != nil {
			hs.close()
			return nil, fmt.Errorf("netlink in %s: %w", n, err)
		}
		hs.nl[n] = nh
	}
	return hs, nil
}

func (hs *handles) close() {
	for _, h := range hs.nl {
		h.Close()
	}
	for _, h := range hs.ns {
		h.Close()
	}
}

func setUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetUp(l)
}

func parseMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	return net.ParseMAC(s)
}

func (hs *handles) addLink(l Link) error {
	h, ok := hs.nl[l.NS]
	if !ok {
		return fmt.Errorf("netns %s is not part of the plan", l.NS)
	}
	mac, err := parseMAC(l.MAC)
	if err != nil {
		return err
	}
	// NewLinkAttrs leaves txqueuelen unset (-1), so the kernel gives the
	// device its default (1000) as on a real node; a zero LinkAttrs would
	// ask for txqueuelen 0 on every device.
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.HardwareAddr = l.Name, l.MTU, mac
	var link netlink.Link
	switch l.Kind {
	case KindBridge:
		link = &netlink.Bridge{LinkAttrs: attrs}
	case KindVeth:
		peer, ok := hs.ns[l.PeerNS]
		if !ok {
			return fmt.Errorf("peer netns %s is not part of the plan", l.PeerNS)
		}
		pmac, err := parseMAC(l.PeerMAC)
		if err != nil {
			return err
		}
		mtu := l.PeerMTU
		if mtu == 0 {
			mtu = l.MTU
		}
		link = &netlink.Veth{LinkAttrs: attrs, PeerName: l.PeerName, PeerNamespace: netlink.NsFd(int(peer)), PeerHardwareAddr: pmac, PeerMTU: uint32(mtu), PeerTxQLen: -1}
	case KindVXLAN:
		vx := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: l.VNI, SrcAddr: l.Local.AsSlice(), Port: l.Port, Learning: l.Learning}
		if l.Parent != "" {
			parent, err := h.LinkByName(l.Parent)
			if err != nil {
				return fmt.Errorf("parent %s: %w", l.Parent, err)
			}
			vx.VtepDevIndex = parent.Attrs().Index
		}
		link = vx
	case KindIPIP:
		// tunl0 is the kernel's fallback IPIP device: it appears in every
		// namespace once the ipip module is loaded; create it otherwise.
		if existing, err := h.LinkByName(l.Name); err == nil {
			if l.MTU > 0 {
				if err := h.LinkSetMTU(existing, l.MTU); err != nil {
					return err
				}
			}
			return h.LinkSetUp(existing)
		}
		link = &netlink.Iptun{LinkAttrs: attrs}
	default:
		return fmt.Errorf("unknown kind %q", l.Kind)
	}
	if err := h.LinkAdd(link); err != nil {
		return err
	}
	created, err := h.LinkByName(l.Name)
	if err != nil {
		return err
	}
	if l.Master != "" {
		m, err := h.LinkByName(l.Master)
		if err != nil {
			return fmt.Errorf("master %s: %w", l.Master, err)
		}
		if err := h.LinkSetMasterByIndex(created, m.Attrs().Index); err != nil {
			return fmt.Errorf("master %s: %w", l.Master, err)
		}
		if l.Hairpin {
			if err := h.LinkSetHairpin(created, true); err != nil {
				return fmt.Errorf("hairpin: %w", err)
			}
		}
	}
	if err := h.LinkSetUp(created); err != nil {
		return err
	}
	if l.Kind == KindVeth {
		if err := setUp(hs.nl[l.PeerNS], l.PeerName); err != nil {
			return fmt.Errorf("peer %s/%s up: %w", l.PeerNS, l.PeerName, err)
		}
	}
	return nil
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (hs *handles) applyNS(ns string, p *Plan) error {
	h := hs.nl[ns]
	if len(p.Sysctls) > 0 {
		if err := InNamespace(ns, func() error {
			for _, s := range p.Sysctls {
				if err := os.WriteFile(filepath.Join("/proc/sys", s.Key), []byte(s.Value), 0o644); err != nil {
					return fmt.Errorf("sysctl %s=%s in %s: %w", s.Key, s.Value, ns, err)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	index := map[string]int{}
	idx := func(name string) (int, error) {
		if i, ok := index[name]; ok {
			return i, nil
		}
		l, err := h.LinkByName(name)
		if err != nil {
			return 0, fmt.Errorf("%s/%s: %w", ns, name, err)
		}
		index[name] = l.Attrs().Index
		return index[name], nil
	}
	for _, a := range p.Addrs {
		i, err := idx(a.Dev)
		if err != nil {
			return err
		}
		addr := &netlink.Addr{IPNet: ipnet(a.Prefix)}
		if err := h.AddrAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: i}}, addr); err != nil {
			return fmt.Errorf("addr %s dev %s in %s: %w", a.Prefix, a.Dev, ns, err)
		}
	}
	for _, r := range p.Routes {
		nr := &netlink.Route{Dst: ipnet(r.Dst), Protocol: netlink.RouteProtocol(r.Proto), MTU: r.MTU}
		if r.Type == RouteBlackhole {
			nr.Type = unix.RTN_BLACKHOLE
		} else {
			i, err := idx(r.Dev)
			if err != nil {
				return err
			}
			nr.LinkIndex = i
		}
		if r.Gw.IsValid() {
			nr.Gw = r.Gw.AsSlice()
		}
		if r.Src.IsValid() {
			nr.Src = r.Src.AsSlice()
		}
		if r.Onlink {
			nr.Flags = int(netlink.FLAG_ONLINK)
		}
		if r.LinkScope {
			nr.Scope = netlink.SCOPE_LINK
		}
		if err := h.RouteAdd(nr); err != nil {
			return fmt.Errorf("route %s in %s: %w", describeRoute(r), ns, err)
		}
	}
	// Neighbour and FDB entries are both permanent neighbour-table entries:
	// an IPv4 ARP entry, or a bridge-family entry naming the remote VTEP.
	set := func(dev, macText string, n netlink.Neigh, what string) error {
		i, err := idx(dev)
		if err != nil {
			return err
		}
		mac, err := net.ParseMAC(macText)
		if err != nil {
			return err
		}
		n.LinkIndex, n.HardwareAddr, n.State = i, mac, netlink.NUD_PERMANENT
		if err := h.NeighSet(&n); err != nil {
			return fmt.Errorf("%s dev %s in %s: %w", what, dev, ns, err)
		}
		return nil
	}
	for _, e := range p.Neighs {
		if err := set(e.Dev, e.MAC, netlink.Neigh{Family: netlink.FAMILY_V4, Type: unix.RTN_UNICAST, IP: e.IP.AsSlice()}, "neigh "+e.IP.String()); err != nil {
			return err
		}
	}
	for _, e := range p.FDBs {
		if err := set(e.Dev, e.MAC, netlink.Neigh{Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, IP: e.Dst.AsSlice()}, "fdb "+e.MAC); err != nil {
			return err
		}
	}
	return nil
}
