package ebpf

import (
	"github.com/cilium/ebpf/asm"
)

// The per-packet TC service path: two sched_cls programs on each pod's
// host-side interface, reading the same lb4 service/backend maps as the
// connect4 program, plus a flow table (an LRU hash) of our own.
//
//	ingress (packets leaving the pod), tcFromPod: an IPv4 TCP/UDP packet
//	  whose {daddr, dport, proto} is a service frontend gets a backend
//	  (the flow's remembered one, or a random slot for a new flow); daddr
//	  and dport are rewritten with incremental L3/L4 checksum fixes.
//	egress (packets going to the pod), tcToPod: a reply whose flow is in
//	  the table gets saddr/sport rewritten back to the VIP/port.
//
// A TCP SYN with a sequence number other than the one recorded starts a
// new flow (a new backend pick); a retransmitted SYN keeps its backend.
// A SYN that is not to a service deletes any reverse entry for its tuple,
// so a client port reused for a direct (e.g. connect4-translated)
// connection to a backend does not get the replies rewritten to a VIP by
// a stale entry. UDP flows have no such signal: their entries live until
// evicted.
//
// This is TCNote's "approximate": Cilium does this in bpf_lxc with its
// conntrack (cilium_ct4_global, TCP state, timeouts, GC) and
// cilium_lb4_reverse_nat; here the flow table is an LRU hash with no
// expiry beyond eviction, and no hairpin SNAT, ICMP error translation,
// fragments or IP options.
//
// Flow table layout (both directions in one map, told apart by dir):
//
//	key   {client addr be32, peer addr be32, client port be16, peer port be16, proto u8, dir u8, pad u16}
//	      dir 0 (forward): peer = VIP/port;     value {backend_id u32, TCP SYN seq be32 (0 for UDP)}
//	      dir 1 (reverse): peer = backend/port; value {VIP be32, VIP port be16, pad u16}
const (
	flowKeySize   = 16
	flowValueSize = 8
	flowDirFwd    = 0
	flowDirRev    = 1

	// DefaultMaxFlows is the flow table size (LRU: the least recently
	// used flows are evicted when it is full).
	DefaultMaxFlows = 1 << 17
)

// Offsets in struct __sk_buff and in an Ethernet+IPv4 (IHL=5) frame, and
// helper flags (reference/datapaths.md §13.1, linux/bpf.h).
const (
	skbData    = 76
	skbDataEnd = 80

	offEthProto = 12
	offVerIHL   = 14
	offFragOff  = 20
	offIPProto  = 23
	offIPCsum   = 24
	offSaddr    = 26
	offDaddr    = 30
	offSport    = 34
	offDport    = 36
	offTCPCsum  = 34 + 16
	offUDPCsum  = 34 + 6
	endTCPHdr   = 34 + 20
	endUDPHdr   = 34 + 8

	ethPIPLE      = 0x0008 // htons(ETH_P_IP) read as a little-endian u16
	fragMaskLE    = 0xff3f // htons(IP_MF|IP_OFFSET) read as a little-endian u16
	bpfFPseudoHdr = 0x10   // BPF_F_PSEUDO_HDR
	bpfFMangled0  = 0x20   // BPF_F_MARK_MANGLED_0 (UDP: 0 means "no checksum")
	bpfAny        = 0      // BPF_ANY

	// tcxNext (TCX_NEXT, equal to TC_ACT_UNSPEC) lets the packet go on to
	// any later TCX program or tc filter and passes it when there is none,
	// so these programs compose with whatever else the lab attaches.
	tcxNext = -1
	tcShot  = 2 // TC_ACT_SHOT: a rewrite helper failed half way
)

// parseL4 checks the frame is IPv4 (IHL=5, not a fragment) carrying TCP
// or UDP with its whole header in the linear data; anything else jumps
// to "pass". Leaves r6 = ctx, r2 = data, r5 = IP protocol, r7 = L4
// checksum offset, r8 = extra l4_csum_replace flags (mangled-0 for UDP).
func parseL4() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, skbData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2), asm.Add.Imm(asm.R4, endUDPHdr),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R2, offEthProto, asm.Half),
		asm.JNE.Imm(asm.R5, ethPIPLE, "pass"),
		asm.LoadMem(asm.R5, asm.R2, offVerIHL, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, "pass"),
		asm.LoadMem(asm.R5, asm.R2, offFragOff, asm.Half),
		asm.And.Imm(asm.R5, fragMaskLE),
		asm.JNE.Imm(asm.R5, 0, "pass"),
		asm.LoadMem(asm.R5, asm.R2, offIPProto, asm.Byte),
		asm.Mov.Imm(asm.R7, offUDPCsum),
		asm.Mov.Imm(asm.R8, bpfFMangled0),
		asm.JEq.Imm(asm.R5, 17, "l4ok"),
		asm.JNE.Imm(asm.R5, 6, "pass"),
		asm.Mov.Imm(asm.R7, offTCPCsum),
		asm.Mov.Imm(asm.R8, 0),
		asm.Mov.Reg(asm.R4, asm.R2), asm.Add.Imm(asm.R4, endTCPHdr),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.Mov.Reg(asm.R6, asm.R6).WithSymbol("l4ok"), // no-op jump target
	}
}

// rewrite replaces 4 bytes of address at addrOff and 2 bytes of port at
// portOff with the values on the stack at newAddr/newPort (old values at
// oldAddr/oldPort), fixing the IP checksum and the L4 checksum (address
// as part of the pseudo header). Expects r6 = ctx, r7/r8 from parseL4.
// Any helper failure drops the packet: it may be half rewritten.
func rewrite(addrOff, portOff int32, oldAddr, newAddr, oldPort, newPort int16) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Imm(asm.R2, addrOff),
		asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, int32(newAddr)),
		asm.Mov.Imm(asm.R4, 4), asm.Mov.Imm(asm.R5, 0),
		asm.FnSkbStoreBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),

		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Imm(asm.R2, offIPCsum),
		asm.LoadMem(asm.R3, asm.RFP, oldAddr, asm.Word),
		asm.LoadMem(asm.R4, asm.RFP, newAddr, asm.Word),
		asm.Mov.Imm(asm.R5, 4),
		asm.FnL3CsumReplace.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),

		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Reg(asm.R2, asm.R7),
		asm.LoadMem(asm.R3, asm.RFP, oldAddr, asm.Word),
		asm.LoadMem(asm.R4, asm.RFP, newAddr, asm.Word),
		asm.Mov.Reg(asm.R5, asm.R8), asm.Or.Imm(asm.R5, bpfFPseudoHdr|4),
		asm.FnL4CsumReplace.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),

		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Imm(asm.R2, portOff),
		asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, int32(newPort)),
		asm.Mov.Imm(asm.R4, 2), asm.Mov.Imm(asm.R5, 0),
		asm.FnSkbStoreBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),

		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Reg(asm.R2, asm.R7),
		asm.LoadMem(asm.R3, asm.RFP, oldPort, asm.Half),
		asm.LoadMem(asm.R4, asm.RFP, newPort, asm.Half),
		asm.Mov.Reg(asm.R5, asm.R8), asm.Or.Imm(asm.R5, 2),
		asm.FnL4CsumReplace.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),

		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("pass"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcShot).WithSymbol("drop"),
		asm.Return(),
	}
}

// Stack of tcFromPod.
const (
	fpSvcKey  = -16 // service key (12 bytes): daddr -16, dport -12, slot -10, proto -8, scope -7, pad -6
	fpFwdKey  = -32 // flow key dir 0 (16 bytes): saddr -32, daddr -28, sport -24, dport -22, proto -20, dir -19, pad -18
	fpBeID    = -40 // forward flow value: backend id -40, pad -36
	fpNewAddr = -48 // backend address
	fpNewPort = -44 // backend port, pad -42
	fpRevVal  = -56 // reverse flow value: VIP -56, VIP port -52, pad -50
	fpRevKey  = -72 // flow key dir 1: client -72, backend -68, client port -64, backend port -62, proto -60, dir -59, pad -58
	fpSeq     = -80 // TCP sequence number (raw), 0 for UDP
	fpSyn     = -76 // u8: 1 for a TCP SYN without ACK

	tcpFlagsOff = 34 + 13
	tcpSeqOff   = 34 + 4
)

// tcFromPod is the ingress program of a pod's host-side interface.
func tcFromPod(svcFD, beFD, flowFD int) asm.Instructions {
	insns := parseL4()
	insns = append(insns,
		// TCP: remember the sequence number and whether this is a SYN.
		asm.StoreImm(asm.RFP, fpSeq, 0, asm.Word),
		asm.StoreImm(asm.RFP, fpSyn, 0, asm.Byte),
		asm.JNE.Imm(asm.R5, 6, "notcp"),
		asm.LoadMem(asm.R1, asm.R2, tcpSeqOff, asm.Word),
		asm.StoreMem(asm.RFP, fpSeq, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, tcpFlagsOff, asm.Byte),
		asm.And.Imm(asm.R1, 0x12), // SYN|ACK
		asm.JNE.Imm(asm.R1, 0x02, "notcp"),
		asm.StoreImm(asm.RFP, fpSyn, 1, asm.Byte),
		// Service key {daddr, dport, slot 0, proto, 0, 0}.
		asm.LoadMem(asm.R1, asm.R2, offDaddr, asm.Word).WithSymbol("notcp"),
		asm.StoreMem(asm.RFP, fpSvcKey, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, offDport, asm.Half),
		asm.StoreMem(asm.RFP, fpSvcKey+4, asm.R1, asm.Half),
		asm.StoreImm(asm.RFP, fpSvcKey+6, 0, asm.Half),
		asm.StoreMem(asm.RFP, fpSvcKey+8, asm.R5, asm.Byte),
		asm.StoreImm(asm.RFP, fpSvcKey+9, 0, asm.Byte),
		asm.StoreImm(asm.RFP, fpSvcKey+10, 0, asm.Half),
	)
	// Forward flow key {saddr, daddr, sport, dport, proto, dir 0, 0}.
	insns = append(insns, packetFlowKey(fpFwdKey, offSaddr, offDaddr, offSport, offDport, flowDirFwd)...)
	insns = append(insns,
		// Is it a service frontend? Most packets stop here.
		asm.LoadMapPtr(asm.R1, svcFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, fpSvcKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "miss"),
		asm.LoadMem(asm.R9, asm.R0, 4, asm.Half), // count
		// A known flow keeps its backend while that backend exists,
		// unless a SYN with a new sequence number starts a new flow.
		asm.LoadMapPtr(asm.R1, flowFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, fpFwdKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "new"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.RFP, fpBeID, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, fpSyn, asm.Byte),
		asm.JEq.Imm(asm.R1, 0, "known"),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Word),
		asm.LoadMem(asm.R2, asm.RFP, fpSeq, asm.Word),
		asm.JNE.Reg(asm.R1, asm.R2, "new"),
		asm.LoadMapPtr(asm.R1, beFD).WithSymbol("known"),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, fpBeID),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "new"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.RFP, fpNewAddr, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Half),
		asm.StoreMem(asm.RFP, fpNewPort, asm.R1, asm.Half),
		asm.Ja.Label("rewrite"),

		// New flow: slot = prandom % count + 1, as connect4 does for TCP.
		asm.JEq.Imm(asm.R9, 0, "pass").WithSymbol("new"),
		asm.FnGetPrandomU32.Call(),
		asm.Mod.Reg(asm.R0, asm.R9),
		asm.Add.Imm(asm.R0, 1),
		asm.StoreMem(asm.RFP, fpSvcKey+6, asm.R0, asm.Half),
		asm.LoadMapPtr(asm.R1, svcFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, fpSvcKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.RFP, fpBeID, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, fpSeq, asm.Word),
		asm.StoreMem(asm.RFP, fpBeID+4, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, beFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, fpBeID),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.RFP, fpNewAddr, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Half),
		asm.StoreMem(asm.RFP, fpNewPort, asm.R1, asm.Half),
		asm.StoreImm(asm.RFP, fpNewPort+2, 0, asm.Half),
		// Remember the flow: forward {client, VIP} -> backend id.
		asm.LoadMapPtr(asm.R1, flowFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, fpFwdKey),
		asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, fpBeID),
		asm.Mov.Imm(asm.R4, bpfAny),
		asm.FnMapUpdateElem.Call(),
		// Reverse {client, backend} -> VIP/port.
		asm.LoadMem(asm.R1, asm.RFP, fpSvcKey, asm.Word),
		asm.StoreMem(asm.RFP, fpRevVal, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, fpSvcKey+4, asm.Half),
		asm.StoreMem(asm.RFP, fpRevVal+4, asm.R1, asm.Half),
		asm.StoreImm(asm.RFP, fpRevVal+6, 0, asm.Half),
		asm.LoadMem(asm.R1, asm.RFP, fpFwdKey, asm.Word),
		asm.StoreMem(asm.RFP, fpRevKey, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, fpNewAddr, asm.Word),
		asm.StoreMem(asm.RFP, fpRevKey+4, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, fpFwdKey+8, asm.Half),
		asm.StoreMem(asm.RFP, fpRevKey+8, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.RFP, fpNewPort, asm.Half),
		asm.StoreMem(asm.RFP, fpRevKey+10, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.RFP, fpFwdKey+12, asm.Byte),
		asm.StoreMem(asm.RFP, fpRevKey+12, asm.R1, asm.Byte),
		asm.StoreImm(asm.RFP, fpRevKey+13, flowDirRev, asm.Byte),
		asm.StoreImm(asm.RFP, fpRevKey+14, 0, asm.Half),
		asm.LoadMapPtr(asm.R1, flowFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, fpRevKey),
		asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, fpRevVal),
		asm.Mov.Imm(asm.R4, bpfAny),
		asm.FnMapUpdateElem.Call(),
		// Without the reverse entry the replies would not be translated.
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.Ja.Label("rewrite"),

		// Not a service: a TCP SYN drops any stale reverse entry of its
		// tuple (the forward key with dir 1 is that reverse key).
		asm.LoadMem(asm.R1, asm.RFP, fpSyn, asm.Byte).WithSymbol("miss"),
		asm.JEq.Imm(asm.R1, 0, "pass"),
		asm.StoreImm(asm.RFP, fpFwdKey+13, flowDirRev, asm.Byte),
		asm.LoadMapPtr(asm.R1, flowFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, fpFwdKey),
		asm.FnMapDeleteElem.Call(),
		asm.Ja.Label("pass"),

		asm.Mov.Reg(asm.R6, asm.R6).WithSymbol("rewrite"), // no-op jump target
	)
	return append(insns, rewrite(offDaddr, offDport, fpSvcKey, fpNewAddr, fpSvcKey+4, fpNewPort)...)
}

// Stack of tcToPod.
const (
	fpRevLookup = -16 // flow key dir 1: daddr -16, saddr -12, dport -8, sport -6, proto -4, dir -3, pad -2
	fpVIP       = -24 // VIP -24, VIP port -20, pad -18
)

// tcToPod is the egress program of a pod's host-side interface: replies
// of a translated flow get the VIP back as their source.
func tcToPod(flowFD int) asm.Instructions {
	insns := parseL4()
	// A reply's reverse key: the client is its destination.
	insns = append(insns, packetFlowKey(fpRevLookup, offDaddr, offSaddr, offDport, offSport, flowDirRev)...)
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, flowFD),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, fpRevLookup),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.RFP, fpVIP, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Half),
		asm.StoreMem(asm.RFP, fpVIP+4, asm.R1, asm.Half),
		asm.StoreImm(asm.RFP, fpVIP+6, 0, asm.Half),
	)
	// old saddr = backend (key+4), old sport = backend port (key+10).
	return append(insns, rewrite(offSaddr, offSport, fpRevLookup+4, fpVIP, fpRevLookup+10, fpVIP+4)...)
}

// packetFlowKey stores the 16-byte flow key {addr1, addr2, port1, port2,
// proto, dir, 0} at fp on the stack, taking the addresses and ports from the
// packet (R2 = data) at the given offsets and the protocol from R5. Both
// programs build their keys this way, in opposite orders.
func packetFlowKey(fp, addr1, addr2, port1, port2 int16, dir int32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R1, asm.R2, addr1, asm.Word),
		asm.StoreMem(asm.RFP, fp, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, addr2, asm.Word),
		asm.StoreMem(asm.RFP, fp+4, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, port1, asm.Half),
		asm.StoreMem(asm.RFP, fp+8, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.R2, port2, asm.Half),
		asm.StoreMem(asm.RFP, fp+10, asm.R1, asm.Half),
		asm.StoreMem(asm.RFP, fp+12, asm.R5, asm.Byte),
		asm.StoreImm(asm.RFP, fp+13, int64(dir), asm.Byte),
		asm.StoreImm(asm.RFP, fp+14, 0, asm.Half),
	}
}
