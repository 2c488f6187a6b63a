package kind

import (
	"strings"
	"testing"
)

func TestParseTunnel(t *testing.T) {
	const flannel = `5: flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UNKNOWN mode DEFAULT group default 
    link/ether 3a:5c:0e:6b:59:fd brd ff:ff:ff:ff:ff:ff promiscuity 0  allmulti 0 minmtu 68 maxmtu 65535 
    vxlan id 1 local 172.18.0.3 dev eth0 srcport 0 0 dstport 8472 nolearning ttl auto ageing 300 udpcsum noudp6zerocsumtx noudp6zerocsumrx addrgenmode eui64 numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535 
`
	const geneve = `7: antrea-tun0@NONE: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue master ovs-system state UNKNOWN mode DEFAULT group default qlen 1000
    link/ether 9e:1d:3a:00:00:01 brd ff:ff:ff:ff:ff:ff promiscuity 1 minmtu 68 maxmtu 65465
    geneve external id 0 dstport 6081 noudpcsum udp6zerocsumrx
    openvswitch_slave addrgenmode eui64
`
	const bridge = `4: cni0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP mode DEFAULT group default qlen 1000
    link/ether 0a:58:0a:f4:01:01 brd ff:ff:ff:ff:ff:ff promiscuity 0 minmtu 68 maxmtu 65535
    bridge forward_delay 1500 hello_time 200 max_age 2000
`
	cases := []struct {
		name, dev, out string
		want           tunnel
		err            string
	}{
		{"flannel vxlan", "flannel.1", flannel, tunnel{Device: "flannel.1", Kind: "vxlan", ID: 1, Port: 8472, MTU: 1450}, ""},
		{"geneve", "antrea-tun0", geneve, tunnel{Device: "antrea-tun0", Kind: "geneve", ID: 0, Port: 6081, MTU: 1450}, ""},
		{"not a tunnel", "cni0", bridge, tunnel{}, "cni0 is not a tunnel device"},
		{"other device", "flannel.1", bridge, tunnel{}, `shows "cni0"`},
		{"empty", "flannel.1", "", tunnel{}, "no link line for flannel.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTunnel(tc.dev, tc.out)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseTunnel = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if s := (tunnel{Device: "flannel.1", Kind: "vxlan", ID: 1, Port: 8472}).String(); s != "flannel.1, vxlan VNI 1, UDP 8472" {
		t.Errorf("String = %q", s)
	}
}
