package kind

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseBridge(t *testing.T) {
	const out = "5: kube-bridge: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\n" +
		"    link/ether 2a:1b:44:5c:6d:7e brd ff:ff:ff:ff:ff:ff promiscuity 0 allmulti 0 minmtu 68 maxmtu 65535\n" +
		"    bridge forward_delay 1500 hello_time 200 max_age 2000 ageing_time 30000 stp_state 0 priority 32768\n"
	if mtu, err := parseBridge("kube-bridge", out); err != nil || mtu != 1500 {
		t.Errorf("parseBridge = %d, %v", mtu, err)
	}
	veth := "7: eth0@if8: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP\n    link/ether aa brd ff\n    veth\n"
	for _, tc := range []struct{ dev, out, err string }{
		{"eth0", veth, "is not a Linux bridge"},
		{"kube-bridge", veth, `ip link shows "eth0"`},
		{"kube-bridge", "Device \"kube-bridge\" does not exist.\n", "no link line"},
	} {
		if _, err := parseBridge(tc.dev, tc.out); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseBridge(%s) = %v, want %q", tc.dev, err, tc.err)
		}
	}
}

func TestNodeRoutes(t *testing.T) {
	// ip -4 route show on worker 1 of a kube-router lab: kube-router's
	// routes carry proto 17 (0x11, which iproute2 does not name).
	const out = "default via 172.18.0.1 dev eth0\n" +
		"10.244.0.0/24 via 172.18.0.2 dev eth0 proto 17\n" +
		"10.244.1.0/24 dev kube-bridge proto kernel scope link src 10.244.1.1\n" +
		"10.244.2.0/24 via 172.18.0.4 dev eth0 proto 17\n" +
		"172.18.0.0/16 dev eth0 proto kernel scope link src 172.18.0.3\n"
	rs, err := parseRoutes(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 || rs[0].Dst != netip.MustParsePrefix("10.244.0.0/24") || rs[0].Via != netip.MustParseAddr("172.18.0.2") || rs[0].Proto != "17" || rs[1].Dev != "kube-bridge" {
		t.Fatalf("parseRoutes = %+v", rs)
	}
	nodes := []nodePodCIDR{
		{"cp", netip.MustParseAddr("172.18.0.2"), netip.MustParsePrefix("10.244.0.0/24")},
		{"w1", netip.MustParseAddr("172.18.0.3"), netip.MustParsePrefix("10.244.1.0/24")},
		{"w2", netip.MustParseAddr("172.18.0.4"), netip.MustParsePrefix("10.244.2.0/24")},
	}
	protos, err := checkNodeRoutes("w1", rs, nodes)
	if err != nil || !slices.Equal(protos, []string{"17"}) {
		t.Errorf("checkNodeRoutes = %v, %v", protos, err)
	}
	wrongVia := append([]nodePodCIDR(nil), nodes...)
	wrongVia[2].IP = netip.MustParseAddr("172.18.0.9")
	if _, err := checkNodeRoutes("w1", rs, wrongVia); err == nil || !strings.Contains(err.Error(), "not via 172.18.0.9") {
		t.Errorf("wrong next hop: %v", err)
	}
	missing := append(nodes, nodePodCIDR{"w3", netip.MustParseAddr("172.18.0.5"), netip.MustParsePrefix("10.244.3.0/24")})
	if _, err := checkNodeRoutes("w1", rs, missing); err == nil || !strings.Contains(err.Error(), "no route to 10.244.3.0/24") {
		t.Errorf("missing route: %v", err)
	}
	if _, err := parseRoutes("10.244.x.0/24 via 1.2.3.4\n"); err == nil {
		t.Error("a bad destination parsed")
	}
}
