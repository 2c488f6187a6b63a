package ebpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// KernelMaps are the real BPF hash maps plus the connect4 program that
// reads them.
type KernelMaps struct {
	services *ebpf.Map
	backends *ebpf.Map
	prog     *ebpf.Program
	links    []link.Link
	// The per-packet TC path, made on the first AttachTC.
	flows   *ebpf.Map
	tcFrom  *ebpf.Program
	tcTo    *ebpf.Program
	tcLinks []link.Link
}

// Offsets into struct bpf_sock_addr (reference/datapaths.md §13.1).
const (
	ctxUserIP4   = 4
	ctxUserPort  = 24
	ctxProtocol  = 36
	sockProceed  = 1
	stackSvcKey  = -16 // 12-byte service key at fp-16 .. fp-5
	stackBackend = -20 // u32 backend id
)

// NewKernelMaps creates the two maps and loads the connect4 program.
func NewKernelMaps(maxServices, maxBackends int) (*KernelMaps, error) {
	k := &KernelMaps{}
	var err error
	k.services, err = ebpf.NewMap(&ebpf.MapSpec{Name: "cnl_lb4_svc", Type: ebpf.Hash, KeySize: svcKeySize, ValueSize: svcValueSize, MaxEntries: uint32(maxServices)})
	if err != nil {
		return nil, fmt.Errorf("create services map: %w", err)
	}
	k.backends, err = ebpf.NewMap(&ebpf.MapSpec{Name: "cnl_lb4_be", Type: ebpf.Hash, KeySize: beKeySize, ValueSize: beValueSize, MaxEntries: uint32(maxBackends)})
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("create backends map: %w", err)
	}
	k.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "cnl_sock4_conn", Type: ebpf.CGroupSockAddr, AttachType: ebpf.AttachCGroupInet4Connect,
		Instructions: connect4(k.services.FD(), k.backends.FD()), License: "GPL",
	})
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("load connect4 program: %w", err)
	}
	return k, nil
}

// connect4 is the socket-LB program, the shape of Cilium's
// __sock4_xlate_fwd: look up {VIP, port, slot 0, proto}; if it is a
// service with backends, pick slot = prandom % count + 1, look that slot
// up for a backend id, look the backend up, and rewrite the destination
// the socket connects to. Always proceed: a miss is not a service.
func connect4(svcFD, beFD int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // r6 = ctx
		// key = {user_ip4, user_port, slot 0, proto, scope 0}
		asm.LoadMem(asm.R1, asm.R6, ctxUserIP4, asm.Word),
		asm.StoreMem(asm.RFP, stackSvcKey, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, ctxUserPort, asm.Word),
		asm.StoreMem(asm.RFP, stackSvcKey+4, asm.R1, asm.Half), // be16 port in the low half
		asm.StoreImm(asm.RFP, stackSvcKey+6, 0, asm.Half),
		asm.LoadMem(asm.R1, asm.R6, ctxProtocol, asm.Word),
		asm.StoreMem(asm.RFP, stackSvcKey+8, asm.R1, asm.Byte),
		asm.StoreImm(asm.RFP, stackSvcKey+9, 0, asm.Byte),
		asm.StoreImm(asm.RFP, stackSvcKey+10, 0, asm.Half),
		asm.LoadMapPtr(asm.R1, svcFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, stackSvcKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R9, asm.R0, 4, asm.Half), // count
		asm.JEq.Imm(asm.R9, 0, "out"),
		asm.FnGetPrandomU32.Call(),
		asm.Mod.Reg(asm.R0, asm.R9),
		asm.Add.Imm(asm.R0, 1),
		asm.StoreMem(asm.RFP, stackSvcKey+6, asm.R0, asm.Half),
		asm.LoadMapPtr(asm.R1, svcFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, stackSvcKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word), // backend id
		asm.StoreMem(asm.RFP, stackBackend, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, beFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, stackBackend),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word), // backend address
		asm.StoreMem(asm.R6, ctxUserIP4, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Half), // backend port, be16
		asm.StoreMem(asm.R6, ctxUserPort, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R0, sockProceed).WithSymbol("out"),
		asm.Return(),
	}
}

// Attach hooks the program to a cgroup v2 directory.
func (k *KernelMaps) Attach(cgroupDir string) error {
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupDir, Attach: ebpf.AttachCGroupInet4Connect, Program: k.prog})
	if err != nil {
		return fmt.Errorf("attach connect4 to %s: %w", cgroupDir, err)
	}
	k.links = append(k.links, l)
	return nil
}

// Apply implements Maps with batch syscalls, in Batch order.
func (k *KernelMaps) Apply(b Batch) error {
	if len(b.BackendPuts) > 0 {
		keys := make([]beKey, len(b.BackendPuts))
		vals := make([]beValue, len(b.BackendPuts))
		for i, e := range b.BackendPuts {
			keys[i], vals[i] = e.Key, e.Value
		}
		if _, err := k.backends.BatchUpdate(keys, vals, nil); err != nil {
			return fmt.Errorf("backends: %w", err)
		}
	}
	if len(b.ServicePuts) > 0 {
		keys := make([]svcKey, len(b.ServicePuts))
		vals := make([]svcValue, len(b.ServicePuts))
		for i, e := range b.ServicePuts {
			keys[i], vals[i] = e.Key, e.Value
		}
		if _, err := k.services.BatchUpdate(keys, vals, nil); err != nil {
			return fmt.Errorf("services: %w", err)
		}
	}
	if len(b.ServiceDels) > 0 {
		if _, err := k.services.BatchDelete(b.ServiceDels, nil); err != nil {
			return fmt.Errorf("delete services: %w", err)
		}
	}
	if len(b.BackendDels) > 0 {
		if _, err := k.backends.BatchDelete(b.BackendDels, nil); err != nil {
			return fmt.Errorf("delete backends: %w", err)
		}
	}
	return nil
}

// Len implements Maps by iterating the kernel maps.
func (k *KernelMaps) Len() (int, int, error) {
	count := func(m *ebpf.Map) (int, error) {
		n := 0
		it := m.Iterate()
		var kb, vb []byte
		for it.Next(&kb, &vb) {
			n++
		}
		return n, it.Err()
	}
	s, err := count(k.services)
	if err != nil {
		return 0, 0, err
	}
	b, err := count(k.backends)
	return s, b, err
}

// Close detaches and frees everything.
func (k *KernelMaps) Close() error {
	errs := []error{k.closeTC()}
	for _, l := range k.links {
		errs = append(errs, l.Close())
	}
	k.links = nil
	if k.prog != nil {
		errs = append(errs, k.prog.Close())
	}
	for _, m := range []*ebpf.Map{k.services, k.backends} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	k.prog, k.services, k.backends = nil, nil, nil
	return errors.Join(errs...)
}
