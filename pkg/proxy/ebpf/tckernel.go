package ebpf

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// loadTC creates the flow table and the two TC programs, once.
func (k *KernelMaps) loadTC() error {
	if k.tcFrom != nil {
		return nil
	}
	flows, err := ebpf.NewMap(&ebpf.MapSpec{Name: "cnl_lb4_tcflow", Type: ebpf.LRUHash, KeySize: flowKeySize, ValueSize: flowValueSize, MaxEntries: DefaultMaxFlows})
	if err != nil {
		return fmt.Errorf("create TC flow map: %w", err)
	}
	from, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "cnl_tc_from_pod", Type: ebpf.SchedCLS,
		Instructions: tcFromPod(k.services.FD(), k.backends.FD(), flows.FD()), License: "GPL"})
	if err != nil {
		flows.Close()
		return fmt.Errorf("load TC from-pod program: %w", err)
	}
	to, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "cnl_tc_to_pod", Type: ebpf.SchedCLS,
		Instructions: tcToPod(flows.FD()), License: "GPL"})
	if err != nil {
		from.Close()
		flows.Close()
		return fmt.Errorf("load TC to-pod program: %w", err)
	}
	k.flows, k.tcFrom, k.tcTo = flows, from, to
	return nil
}

// AttachTC attaches the TC service path to each interface with TCX: the
// from-pod program at ingress, the to-pod program at egress. All or
// nothing: on an error the links made by this call are closed.
func (k *KernelMaps) AttachTC(ifaces []TCAttachment) error {
	if len(ifaces) == 0 {
		return nil
	}
	if err := k.loadTC(); err != nil {
		return err
	}
	var made []link.Link
	for _, ifc := range ifaces {
		ls, err := attachTCX(ifc, k.tcFrom, k.tcTo)
		if err != nil {
			for _, l := range made {
				l.Close()
			}
			return err
		}
		made = append(made, ls...)
	}
	k.tcLinks = append(k.tcLinks, made...)
	return nil
}

// attachTCX looks the interface up and creates the two TCX links from an
// OS thread that joined ifc.Netns; the thread is discarded afterwards (it
// exits locked), as netplan.InNamespace does. The link FDs are
// process-wide, so closing them later from any thread detaches.
func attachTCX(ifc TCAttachment, from, to *ebpf.Program) ([]link.Link, error) {
	if ifc.Netns == "" || ifc.Name == "" {
		return nil, fmt.Errorf("TC attachment %v: namespace and interface name are required", ifc)
	}
	type result struct {
		links []link.Link
		err   error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		var r result
		defer func() { done <- r }()
		h, err := netns.GetFromPath(ifc.Netns)
		if err != nil {
			r.err = fmt.Errorf("open netns %s: %w", ifc.Netns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			r.err = fmt.Errorf("enter netns %s: %w", ifc.Netns, err)
			return
		}
		nl, err := netlink.LinkByName(ifc.Name)
		if err != nil {
			r.err = fmt.Errorf("TC attachment %v: %w", ifc, err)
			return
		}
		idx := nl.Attrs().Index
		in, err := link.AttachTCX(link.TCXOptions{Interface: idx, Program: from, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			r.err = fmt.Errorf("attach TCX ingress on %v: %w", ifc, err)
			return
		}
		out, err := link.AttachTCX(link.TCXOptions{Interface: idx, Program: to, Attach: ebpf.AttachTCXEgress})
		if err != nil {
			in.Close()
			r.err = fmt.Errorf("attach TCX egress on %v: %w", ifc, err)
			return
		}
		r.links = []link.Link{in, out}
	}()
	r := <-done
	return r.links, r.err
}

// TCFlows counts the flow-table entries (two per translated flow, fewer
// once the LRU evicts); 0 when the TC path was never attached.
func (k *KernelMaps) TCFlows() (int, error) {
	if k.flows == nil {
		return 0, nil
	}
	n := 0
	it := k.flows.Iterate()
	var kb, vb []byte
	for it.Next(&kb, &vb) {
		n++
	}
	return n, it.Err()
}

// closeTC detaches the TC links and frees the programs and flow table.
func (k *KernelMaps) closeTC() error {
	var errs []error
	for _, l := range k.tcLinks {
		errs = append(errs, l.Close())
	}
	k.tcLinks = nil
	for _, p := range []*ebpf.Program{k.tcFrom, k.tcTo} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	if k.flows != nil {
		errs = append(errs, k.flows.Close())
	}
	k.tcFrom, k.tcTo, k.flows = nil, nil, nil
	return errors.Join(errs...)
}
