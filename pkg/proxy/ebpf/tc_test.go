package ebpf

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/proxy"
)

var (
	tcVIP    = netip.MustParseAddr("10.96.0.10")
	tcClient = netip.MustParseAddr("10.244.0.2")
	tcB1     = netip.MustParseAddr("10.244.1.2")
	tcB2     = netip.MustParseAddr("10.244.2.2")
)

func tcServices() []proxy.Service {
	return []proxy.Service{
		{Namespace: "default", Name: "web", PortName: "http", ClusterIP: tcVIP, Port: 80, Protocol: proxy.TCP,
			Endpoints: []proxy.Endpoint{{IP: tcB1, Port: 8080}, {IP: tcB2, Port: 8080}}},
		{Namespace: "default", Name: "dns", PortName: "dns", ClusterIP: tcVIP, Port: 53, Protocol: proxy.UDP,
			Endpoints: []proxy.Endpoint{{IP: tcB1, Port: 5353}, {IP: tcB2, Port: 5353}}},
	}
}

func TestAttachTCFake(t *testing.T) {
	f := NewFake(100, 100)
	p := New(f)
	if n := p.Notes(); n != nil {
		t.Errorf("notes before any TC attachment: %v", n)
	}
	a := []TCAttachment{{Netns: "/run/netns/n", Name: "veth0"}, {Netns: "/run/netns/n", Name: "veth1"}}
	if err := p.AttachTC(a); err != nil {
		t.Fatal(err)
	}
	if len(f.TC) != 2 || p.TCAttached() != 2 {
		t.Errorf("fake recorded %v, proxy counts %d", f.TC, p.TCAttached())
	}
	if err := p.AttachTC(a[1:]); err == nil {
		t.Error("attaching veth1 twice succeeded")
	}
	if err := p.AttachTC([]TCAttachment{{Netns: "/run/netns/n", Name: "veth2"}, {Netns: "/run/netns/n", Name: "veth2"}}); err == nil {
		t.Error("a list naming veth2 twice was accepted")
	}
	if err := p.AttachTC([]TCAttachment{{Name: "veth3"}}); err == nil {
		t.Error("an attachment without a namespace was accepted")
	}
	if len(f.TC) != 2 {
		t.Errorf("rejected attachments reached the maps: %v", f.TC)
	}
	if n := p.Notes(); len(n) != 1 || n[0] != TCNote {
		t.Errorf("notes = %v, want TCNote", n)
	}
	// The socket-LB label is unchanged by the TC path.
	if p.Fidelity() != New(NewFake(1, 1)).Fidelity() {
		t.Error("TC attachment changed Fidelity()")
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.TCAttached() != 0 || p.Notes() != nil {
		t.Error("Close left TC attachments behind")
	}
}

// packet builds an Ethernet+IPv4(IHL 5)+TCP/UDP frame with valid checksums.
func packet(proto uint8, src, dst netip.Addr, sport, dport uint16, payload string) []byte {
	l4len := 20
	if proto == 17 {
		l4len = 8
	}
	b := make([]byte, 14+20+l4len+len(payload))
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[8] = 64
	ip[9] = proto
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	l4 := ip[20:]
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	if proto == 6 {
		l4[12] = 5 << 4
		l4[13] = 0x02 // SYN
		binary.BigEndian.PutUint16(l4[14:], 65535)
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	copy(l4[l4len:], payload)
	fixChecksums(b)
	return b
}

func csum(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func l4Sum(b []byte) uint16 {
	ip := b[14:34]
	l4 := b[34:]
	pseudo := make([]byte, 12)
	copy(pseudo, ip[12:20])
	pseudo[9] = ip[9]
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(l4)))
	return fold(csum(csum(0, pseudo), l4))
}

func l4CsumOff(b []byte) int {
	if b[23] == 17 {
		return 34 + 6
	}
	return 34 + 16
}

func fixChecksums(b []byte) {
	ip := b[14:34]
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], fold(csum(0, ip)))
	off := l4CsumOff(b)
	binary.BigEndian.PutUint16(b[off:], 0)
	binary.BigEndian.PutUint16(b[off:], l4Sum(b))
}

// checkSums fails unless both checksums of b verify (sum over the header
// or segment including its checksum is 0xffff, i.e. folds to 0).
func checkSums(t *testing.T, what string, b []byte) {
	t.Helper()
	if s := fold(csum(0, b[14:34])); s != 0 {
		t.Errorf("%s: IP checksum wrong (residue %#x)", what, s)
	}
	off := l4CsumOff(b)
	if b[23] == 17 && binary.BigEndian.Uint16(b[off:]) == 0 {
		return // UDP without checksum
	}
	saved := binary.BigEndian.Uint16(b[off:])
	binary.BigEndian.PutUint16(b[off:], 0)
	want := l4Sum(b)
	binary.BigEndian.PutUint16(b[off:], saved)
	if want == 0 && b[23] == 17 {
		want = 0xffff
	}
	if saved != want {
		t.Errorf("%s: L4 checksum %#04x, want %#04x", what, saved, want)
	}
}

type hdr struct {
	src, dst     netip.Addr
	sport, dport uint16
}

func parse(b []byte) hdr {
	return hdr{netip.AddrFrom4([4]byte(b[26:30])), netip.AddrFrom4([4]byte(b[30:34])),
		binary.BigEndian.Uint16(b[34:]), binary.BigEndian.Uint16(b[36:])}
}

func run(t *testing.T, p *ebpf.Program, in []byte) []byte {
	t.Helper()
	out := make([]byte, len(in))
	ret, err := p.Run(&ebpf.RunOptions{Data: in, DataOut: out})
	if err != nil {
		t.Fatal(err)
	}
	if int32(ret) != tcxNext {
		t.Fatalf("program returned %d, want TCX_NEXT", int32(ret))
	}
	return out
}

func loadTCForTest(t *testing.T) (*KernelMaps, *Proxy) {
	t.Helper()
	testenv.Kernel(t, "loading BPF programs")
	k, err := NewKernelMaps(64, 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := k.loadTC(); err != nil {
		t.Fatal(err)
	}
	p := New(k)
	if err := p.Sync(context.Background(), tcServices()); err != nil {
		t.Fatal(err)
	}
	return k, p
}

// TestTCProgramsRewrite runs both programs on crafted frames
// (BPF_PROG_TEST_RUN): DNAT with valid checksums, the flow keeps its
// backend, replies get the VIP back, and everything else is untouched.
func TestTCProgramsRewrite(t *testing.T) {
	k, _ := loadTCForTest(t)
	for _, tc := range []struct {
		name          string
		proto         uint8
		vport, bePort uint16
		payload       string
	}{
		{"tcp", 6, 80, 8080, ""},
		{"udp", 17, 53, 5353, "query"},
		{"udp-odd", 17, 53, 5353, "odd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[netip.Addr]int{}
			for i := 0; i < 64; i++ {
				sport := uint16(40000 + i)
				in := packet(tc.proto, tcClient, tcVIP, sport, tc.vport, tc.payload)
				out := run(t, k.tcFrom, in)
				h := parse(out)
				if h.src != tcClient || h.sport != sport || h.dport != tc.bePort || (h.dst != tcB1 && h.dst != tcB2) {
					t.Fatalf("forward rewrite gave %+v", h)
				}
				checkSums(t, "forward", out)
				seen[h.dst]++
				// The same flow again: same backend.
				if again := parse(run(t, k.tcFrom, in)); again.dst != h.dst {
					t.Fatalf("flow moved from %v to %v", h.dst, again.dst)
				}
				// The reply comes back from the VIP.
				reply := packet(tc.proto, h.dst, tcClient, tc.bePort, sport, tc.payload+"-reply")
				rout := run(t, k.tcTo, reply)
				rh := parse(rout)
				if rh.src != tcVIP || rh.sport != tc.vport || rh.dst != tcClient || rh.dport != sport {
					t.Fatalf("reverse rewrite gave %+v", rh)
				}
				checkSums(t, "reverse", rout)
			}
			if seen[tcB1] == 0 || seen[tcB2] == 0 {
				t.Errorf("64 flows all went to one backend: %v", seen)
			}
		})
	}
	t.Run("udp-no-checksum", func(t *testing.T) {
		in := packet(17, tcClient, tcVIP, 39999, 53, "q")
		binary.BigEndian.PutUint16(in[40:], 0)
		out := run(t, k.tcFrom, in)
		if binary.BigEndian.Uint16(out[40:]) != 0 {
			t.Errorf("UDP checksum 0 became %#x", binary.BigEndian.Uint16(out[40:]))
		}
		if h := parse(out); h.dport != 5353 {
			t.Errorf("not translated: %+v", h)
		}
		checkSums(t, "no-checksum", out)
	})
	t.Run("tcp-port-reuse", func(t *testing.T) {
		const sport = 42000
		syn := func(seq uint32, dst netip.Addr, dport uint16) []byte {
			b := packet(6, tcClient, dst, sport, dport, "")
			binary.BigEndian.PutUint32(b[38:], seq)
			fixChecksums(b)
			return b
		}
		// A new SYN (new sequence number) on a reused tuple is a new
		// flow: over 20 of them both backends turn up (all one: 2^-19).
		// A retransmitted SYN and a non-SYN segment keep the backend.
		seen := map[netip.Addr]int{}
		for i := uint32(1); i <= 20; i++ {
			first := parse(run(t, k.tcFrom, syn(i*1000, tcVIP, 80))).dst
			seen[first]++
			if again := parse(run(t, k.tcFrom, syn(i*1000, tcVIP, 80))).dst; again != first {
				t.Fatalf("retransmitted SYN moved from %v to %v", first, again)
			}
			ack := syn(i*1000+1, tcVIP, 80)
			ack[47] = 0x10
			fixChecksums(ack)
			if got := parse(run(t, k.tcFrom, ack)).dst; got != first {
				t.Fatalf("ACK went to %v, flow is on %v", got, first)
			}
		}
		if len(seen) != 2 {
			t.Errorf("20 new SYNs on one tuple all went to %v", seen)
		}
		// The same client port then connects straight to a backend (as a
		// connect4-translated socket does): its SYN clears the reverse
		// entry, so the backend's reply is not rewritten to the VIP.
		last := parse(run(t, k.tcFrom, syn(99, tcVIP, 80))).dst
		direct := syn(7, last, 8080)
		if out := run(t, k.tcFrom, direct); string(out) != string(direct) {
			t.Fatal("direct SYN to a backend was changed")
		}
		reply := packet(6, last, tcClient, 8080, sport, "")
		if out := run(t, k.tcTo, reply); string(out) != string(reply) {
			t.Errorf("reply of a direct connection was rewritten to %+v by a stale entry", parse(out))
		}
	})
	before, err := k.TCFlows()
	if err != nil {
		t.Fatal(err)
	}
	untouched := map[string][]byte{
		// connect4 already sent it to the backend.
		"to-backend":           packet(6, tcClient, tcB1, 41000, 8080, ""),
		"other-port":           packet(6, tcClient, tcVIP, 41000, 81, ""),
		"wrong-proto-for-port": packet(17, tcClient, tcVIP, 41000, 80, "x"),
		"reply-not-in-table":   packet(6, tcB2, tcClient, 8080, 41000, ""),
	}
	ihl6 := packet(6, tcClient, tcVIP, 41001, 80, "0123")
	ihl6[14] = 0x46
	untouched["ihl6"] = ihl6
	frag := packet(6, tcClient, tcVIP, 41002, 80, "")
	frag[14+6] = 0x20 // MF
	untouched["fragment"] = frag
	untouched["truncated-tcp"] = packet(6, tcClient, tcVIP, 41003, 80, "")[:14+20+8]
	ipv6ish := packet(6, tcClient, tcVIP, 41004, 80, "")
	binary.BigEndian.PutUint16(ipv6ish[12:], 0x86dd)
	untouched["not-ipv4"] = ipv6ish
	for name, in := range untouched {
		for _, prog := range []*ebpf.Program{k.tcFrom, k.tcTo} {
			if out := run(t, prog, in); string(out) != string(in) {
				t.Errorf("%s: %v changed the frame", name, prog)
			}
		}
	}
	if after, _ := k.TCFlows(); after != before {
		t.Errorf("untouched frames changed the flow table: %d -> %d entries", before, after)
	}
}
