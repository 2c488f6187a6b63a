package datapath

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cnilab/cnilab/pkg/netplan"
)

var update = flag.Bool("update", false, "rewrite golden files")

func spec(model, mode, cidr string, bits int) Spec {
	s := Spec{RunID: "t1", Lab: model, Model: model, Mode: mode, NodeMaskBits: bits, UnderlayMTU: 1500, Nodes: 2, PodsPerNode: 2}
	if cidr != "" {
		s.PodCIDR = netip.MustParsePrefix(cidr)
	}
	return s
}

var cases = []struct {
	name    string
	spec    Spec
	podMTU  int
	encap   string
	hostIf  string // prefix of the host-side interface
	routeMT int
}{
	{"host", spec("none", "underlay", "", 0), 1500, "", "eth0", 0},
	{"flannel-vxlan", spec("flannel", "vxlan", "10.244.0.0/16", 24), 1450, "vxlan/8472", "veth", 0},
	{"flannel-host-gw", spec("flannel", "host-gw", "10.244.0.0/16", 24), 1500, "", "veth", 0},
	{"calico-bgp", spec("calico", "bgp", "192.168.0.0/16", 26), 1500, "", "cali", 0},
	{"calico-vxlan", spec("calico", "vxlan", "192.168.0.0/16", 26), 1450, "vxlan/4789", "cali", 0},
	{"calico-ipip", spec("calico", "ipip", "192.168.0.0/16", 26), 1480, "ipip", "cali", 0},
	{"kube-router", spec("kube-router", "routed", "10.244.0.0/16", 24), 1500, "", "veth", 0},
	{"cilium-tunnel", spec("cilium", "tunnel", "10.0.0.0/16", 24), 1500, "vxlan/8472", "lxc", 1450},
	{"cilium-native", spec("cilium", "native", "10.0.0.0/16", 24), 1500, "", "lxc", 0},
	{"canal", spec("canal", "vxlan", "10.244.0.0/16", 24), 1450, "vxlan/8472", "cali", 0},
}

// TestPlansMatchGolden applies each design to the fake kernel (which rejects
// what the real one would) and compares the resulting state with a golden
// text file reviewed against reference/datapaths.md.
func TestPlansMatchGolden(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lab, err := Plan(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			fake := netplan.NewFake()
			if err := fake.Apply(context.Background(), &lab.Plan); err != nil {
				t.Fatalf("fake kernel rejects the plan: %v", err)
			}
			got := fake.String()
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("state differs from %s (-want +got):\n%s", golden, d)
			}
			if lab.PodMTU != tc.podMTU {
				t.Errorf("pod MTU = %d, want %d", lab.PodMTU, tc.podMTU)
			}
			if lab.RouteMTU != tc.routeMT {
				t.Errorf("route MTU = %d, want %d", lab.RouteMTU, tc.routeMT)
			}
			if lab.Encap != tc.encap {
				t.Errorf("encap = %q, want %q", lab.Encap, tc.encap)
			}
			for _, p := range lab.Pods {
				want := tc.hostIf
				if tc.spec.Model == "none" && p.NS != lab.Nodes[p.Node].NS {
					want = "veth" // the host baseline's same-node server
				}
				if !strings.HasPrefix(p.HostIf, want) || len(p.HostIf) > 15 {
					t.Errorf("pod %s host interface %q, want prefix %q and ≤15 bytes", p.Name, p.HostIf, want)
				}
			}
		})
	}
}

// TestJumboUnderlay: with the 2024 lab's 9000-byte fabric every overhead is
// taken from 9000, not from a hard-coded 1500.
func TestJumboUnderlay(t *testing.T) {
	for _, tc := range []struct {
		spec          Spec
		podMTU, rtMTU int
	}{
		{spec("flannel", "vxlan", "10.244.0.0/16", 24), 8950, 0},
		{spec("calico", "ipip", "192.168.0.0/16", 26), 8980, 0},
		{spec("calico", "bgp", "192.168.0.0/16", 26), 9000, 0},
		{spec("cilium", "tunnel", "10.0.0.0/16", 24), 9000, 8950},
	} {
		tc.spec.UnderlayMTU = 9000
		lab, err := Plan(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if lab.PodMTU != tc.podMTU || lab.RouteMTU != tc.rtMTU {
			t.Errorf("%s/%s: pod MTU %d route MTU %d, want %d %d", tc.spec.Model, tc.spec.Mode, lab.PodMTU, lab.RouteMTU, tc.podMTU, tc.rtMTU)
		}
		for _, l := range lab.Plan.Links {
			if l.NS == lab.Fabric && l.MTU != 9000 {
				t.Errorf("fabric link %s MTU %d", l.Name, l.MTU)
			}
		}
	}
}

func TestEveryNamespaceIsPrefixed(t *testing.T) {
	for _, tc := range cases {
		lab, err := Plan(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range lab.Plan.Namespaces {
			if !strings.HasPrefix(n, "cnl-t1-"+tc.spec.Lab+"-") {
				t.Errorf("%s: namespace %q lacks the lab prefix", tc.name, n)
			}
		}
	}
}

func TestDestroyLeavesNothing(t *testing.T) {
	lab, err := Plan(spec("calico", "bgp", "192.168.0.0/16", 26))
	if err != nil {
		t.Fatal(err)
	}
	fake := netplan.NewFake()
	if err := fake.Apply(context.Background(), &lab.Plan); err != nil {
		t.Fatal(err)
	}
	if err := fake.Destroy(context.Background(), &lab.Plan); err != nil {
		t.Fatal(err)
	}
	if ns := fake.Namespaces(); len(ns) != 0 {
		t.Errorf("left behind: %v", ns)
	}
}

func TestPlanErrors(t *testing.T) {
	tooMany := spec("calico", "bgp", "192.168.0.0/16", 26)
	tooMany.PodsPerNode = 70 // a /26 block holds 62 pods after .0
	small := spec("flannel", "vxlan", "10.244.0.0/24", 25)
	small.Nodes = 3
	for name, s := range map[string]Spec{"pods overflow block": tooMany, "no room for nodes": small} {
		if _, err := Plan(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestFakeRejectsBrokenPlans proves the fake kernel catches what a builder
// could get wrong, so a golden file cannot bless a plan the kernel refuses.
func TestFakeRejectsBrokenPlans(t *testing.T) {
	lab, err := Plan(spec("calico", "bgp", "192.168.0.0/16", 26))
	if err != nil {
		t.Fatal(err)
	}
	mutations := map[string]func(p *netplan.Plan){
		"gateway before its link route": func(p *netplan.Plan) {
			for i, r := range p.Routes {
				if r.LinkScope && r.Dst.Addr() == calicoGateway && strings.HasSuffix(r.NS, "-p1") {
					p.Routes = append(p.Routes[:i], p.Routes[i+1:]...)
					return
				}
			}
		},
		"duplicate device": func(p *netplan.Plan) { p.Links = append(p.Links, p.Links[0]) },
		"sysctl on missing device": func(p *netplan.Plan) {
			p.Sysctls = append(p.Sysctls, netplan.Sysctl{NS: p.Namespaces[1], Key: "net/ipv4/conf/nope/proxy_arp", Value: "1"})
		},
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			p := lab.Plan
			p.Links = append([]netplan.Link(nil), p.Links...)
			p.Routes = append([]netplan.Route(nil), p.Routes...)
			p.Sysctls = append([]netplan.Sysctl(nil), p.Sysctls...)
			mutate(&p)
			fake := netplan.NewFake()
			if err := fake.Apply(context.Background(), &p); err == nil {
				t.Fatal("fake accepted a broken plan")
			}
			if ns := fake.Namespaces(); len(ns) != 0 {
				t.Errorf("failed apply left state behind: %v", ns)
			}
		})
	}
}

// TestHostSameNodeIsTwoNamespaces: the host baseline's same-node server is
// a namespace of its own on node 1, one veth away from the node, with the
// underlay MTU; there is none when no same-node pair is asked for.
func TestHostSameNodeIsTwoNamespaces(t *testing.T) {
	for _, tc := range []struct {
		podsPerNode int
		wantPods    int
	}{{1, 2}, {2, 3}} {
		s := spec("none", "underlay", "", 0)
		s.PodsPerNode = tc.podsPerNode
		lab, err := Plan(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(lab.Pods) != tc.wantPods {
			t.Fatalf("%d pods per node: %d pods, want %d", tc.podsPerNode, len(lab.Pods), tc.wantPods)
		}
		if tc.podsPerNode < 2 {
			continue
		}
		same := lab.Pods[2]
		n1 := lab.Nodes[0]
		if same.Node != 0 || same.NS == n1.NS || same.IP == n1.IP {
			t.Fatalf("same-node server %+v is not a second namespace on node 1 (%+v)", same, n1)
		}
		fake := netplan.NewFake()
		if err := fake.Apply(context.Background(), &lab.Plan); err != nil {
			t.Fatal(err)
		}
		var veth *netplan.Link
		for i, l := range lab.Plan.Links {
			if l.NS == n1.NS && l.PeerNS == same.NS {
				veth = &lab.Plan.Links[i]
			}
		}
		if veth == nil || veth.Kind != netplan.KindVeth || veth.PeerName != "eth0" || veth.MTU != 1500 || veth.Master != "" {
			t.Errorf("node 1 to same-node server link %+v, want one plain veth of MTU 1500", veth)
		}
	}
}
