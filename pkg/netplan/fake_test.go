package netplan

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func twoNS() *Plan {
	return &Plan{
		Namespaces: []string{"cnl-a", "cnl-b"},
		Links: []Link{
			{NS: "cnl-a", Name: "br0", Kind: KindBridge, MTU: 1500},
			{NS: "cnl-a", Name: "v0", Kind: KindVeth, MTU: 1500, Master: "br0", PeerNS: "cnl-b", PeerName: "eth0"},
		},
		Addrs:  []Addr{{NS: "cnl-b", Dev: "eth0", Prefix: netip.MustParsePrefix("10.0.0.2/24")}},
		Routes: []Route{{NS: "cnl-b", Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("10.0.0.1"), Dev: "eth0"}},
	}
}

func TestFakeAppliesAndPrints(t *testing.T) {
	f := NewFake()
	if err := f.Apply(context.Background(), twoNS()); err != nil {
		t.Fatal(err)
	}
	want := `netns cnl-a
  link br0 bridge mtu 1500
  link v0 veth mtu 1500 peer cnl-b/eth0 master br0
netns cnl-b
  link eth0 veth mtu 1500 peer cnl-a/v0
  addr 10.0.0.2/24 dev eth0
  route 0.0.0.0/0 via 10.0.0.1 dev eth0
`
	if got := f.String(); got != want {
		t.Errorf("state:\n%s\nwant:\n%s", got, want)
	}
}

// A failing plan leaves the fake exactly as it was, as the kernel applier
// cleans up after itself.
func TestFakeIsAllOrNothing(t *testing.T) {
	f := NewFake()
	if err := f.Apply(context.Background(), twoNS()); err != nil {
		t.Fatal(err)
	}
	before := f.String()
	bad := &Plan{
		Namespaces: []string{"cnl-c"},
		Links:      []Link{{NS: "cnl-c", Name: "vx", Kind: KindVXLAN, VNI: 1, Parent: "eth9"}},
	}
	err := f.Apply(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "eth9") {
		t.Fatalf("err %v, want a missing parent", err)
	}
	if f.String() != before {
		t.Errorf("failed apply changed the state:\n%s", f.String())
	}
	if err := f.Apply(context.Background(), twoNS()); err == nil {
		t.Error("creating existing namespaces again succeeded")
	}
}

func TestFakeDestroyTakesVethPeers(t *testing.T) {
	f := NewFake()
	p := twoNS()
	if err := f.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if err := f.Destroy(context.Background(), &Plan{Namespaces: []string{"cnl-b"}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.String(), "v0") {
		t.Errorf("veth end survived its peer's namespace:\n%s", f.String())
	}
}

func TestFakeRejects(t *testing.T) {
	cases := map[string]func(*Plan){
		"long name":         func(p *Plan) { p.Links[1].Name = "a-name-longer-than-15" },
		"master not bridge": func(p *Plan) { p.Links[0].Kind = KindVeth; p.Links[0].PeerNS, p.Links[0].PeerName = "cnl-b", "x" },
		"unknown kind":      func(p *Plan) { p.Links[0].Kind = "geneve" },
		"gateway off-link":  func(p *Plan) { p.Routes[0].Gw = netip.MustParseAddr("10.9.9.9") },
		"addr on nothing":   func(p *Plan) { p.Addrs[0].Dev = "eth7" },
		"unknown namespace": func(p *Plan) { p.Addrs[0].NS = "cnl-z" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			p := twoNS()
			mutate(p)
			if err := NewFake().Apply(context.Background(), p); err == nil {
				t.Error("accepted")
			}
		})
	}
	// onlink makes an off-link gateway acceptable, as in the kernel.
	p := twoNS()
	p.Routes[0].Gw, p.Routes[0].Onlink = netip.MustParseAddr("10.9.9.9"), true
	if err := NewFake().Apply(context.Background(), p); err != nil {
		t.Errorf("onlink route rejected: %v", err)
	}
}

// TestFakeCapsBoundVXLAN: like the kernel, the fake caps a VXLAN device
// bound to a parent at the parent's MTU minus 50, and leaves an unbound
// one at what the plan asks (the parity test checks both against the
// kernel).
func TestFakeCapsBoundVXLAN(t *testing.T) {
	p := &Plan{Namespaces: []string{"cnl-v"}, Links: []Link{
		{NS: "cnl-v", Name: "br0", Kind: KindBridge, MTU: 1500},
		{NS: "cnl-v", Name: "bound", Kind: KindVXLAN, MTU: 1500, VNI: 1, Port: 8472, Parent: "br0"},
		{NS: "cnl-v", Name: "free", Kind: KindVXLAN, MTU: 1500, VNI: 2, Port: 8472},
	}}
	f := NewFake()
	if err := f.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	mtu := map[string]int{}
	for _, l := range f.State()["cnl-v"].Links {
		mtu[l.Name] = l.MTU
	}
	if mtu["bound"] != 1450 || mtu["free"] != 1500 {
		t.Errorf("MTUs %v, want bound 1450 and free 1500", mtu)
	}
}
