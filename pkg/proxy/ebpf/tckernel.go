package ebpf

import (
	"errors"
	"fmt"
	"github.com/cnilab/cnilab/pkg/netplan"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
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
	var links []link.Link
	err := netplan.InNamespacePath(ifc.Netns, func() error {
		nl, err := netlink.LinkByName(ifc.Name)
		if err != nil {
			return fmt.Errorf("TC attachment %v: %w", ifc, err)
		}
		idx := nl.Attrs().Index
		in, err := link.AttachTCX(link.TCXOptions{Interface: idx, Program: from, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return fmt.Errorf("attach TCX ingress on %v: %w", ifc, err)
		}
		out, err := link.AttachTCX(link.TCXOptions{Interface: idx, Program: to, Attach: ebpf.AttachTCXEgress})
		if err != nil {
			in.Close()
			return fmt.Errorf("attach TCX egress on %v: %w", ifc, err)
		}
		links = []link.Link{in, out}
		return nil
	})
	return links, err
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
