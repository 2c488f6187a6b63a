package kind

import (
	"net/netip"
	"testing"
)

func TestKubeRouterRuleCounts(t *testing.T) {
	save := `*filter
:INPUT ACCEPT [0:0]
:KUBE-NWPLCY-DEFAULT - [0:0]
:KUBE-NWPLCY-ABCDEF - [0:0]
:KUBE-POD-FW-XYZ - [0:0]
:KUBE-ROUTER-INPUT - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -j KUBE-ROUTER-INPUT
-A KUBE-ROUTER-INPUT -d 10.96.0.0/12 -j RETURN
-A KUBE-NWPLCY-DEFAULT -j MARK --set-xmark 0x10000/0x10000
-A KUBE-NWPLCY-ABCDEF -m set --match-set KUBE-SRC-1 src -j MARK --set-xmark 0x10000/0x10000
-A KUBE-POD-FW-XYZ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-POD-FW-XYZ -j REJECT
-A KUBE-SERVICES -j RETURN
COMMIT
`
	got := kubeRouterRules(save)
	if got["iptables_rules"] != 5 || got["iptables_chains"] != 4 {
		t.Errorf("counts %v, want 5 rules in 4 chains", got)
	}
}

func TestIPSetCounts(t *testing.T) {
	out := `Name: KUBE-SRC-AAAA
Type: hash:ip
Number of entries: 3
Name: KUBE-DST-BBBB
Type: hash:ip
Number of entries: 1
Name: kube-router-pod-subnets
Type: hash:net
Number of entries: 2
`
	sets, members := ipsetCounts(out)
	if sets != 2 || members != 4 {
		t.Errorf("%v sets, %v members; want kube-router's 2 policy sets with 4 members", sets, members)
	}
}

func TestCiliumEndpointAndEntries(t *testing.T) {
	eps := []byte(`[{"id": 12, "status": {"networking": {"addressing": [{"ipv4": "10.244.1.9"}]}}},
		{"id": 301, "status": {"networking": {"addressing": [{"ipv4": "10.244.2.5"}]}}}]`)
	id, err := ciliumEndpointID(eps, netip.MustParseAddr("10.244.2.5"))
	if err != nil || id != 301 {
		t.Errorf("endpoint %d, %v; want 301", id, err)
	}
	if _, err := ciliumEndpointID(eps, netip.MustParseAddr("10.244.9.9")); err == nil {
		t.Error("an absent address found an endpoint")
	}
	table := `POLICY   DIRECTION   LABELS (source:key[=value])   PORT/PROTO   PROXY PORT   AUTH TYPE   BYTES   PACKETS   PREFIX
Allow    Ingress     reserved:host                  ANY          NONE         disabled    0       0         0
Allow    Ingress     k8s:cnilab.io/role=client      5201/TCP     NONE         disabled    10      2         24
                     k8s:io.kubernetes.pod.namespace=cnilab
Allow    Egress      reserved:unknown               ANY          NONE         disabled    0       0         0
`
	if n := ciliumPolicyEntries(table); n != 3 {
		t.Errorf("%v entries, want 3 (continuation lines are not entries)", n)
	}
	// Captured from cilium-dbg v1.20.2 on a kind lab (no policy applied).
	captured := `POLICY   DIRECTION   IDENTITY   PORT/PROTO   PROXY PORT   AUTH TYPE   BYTES   PACKETS   PREFIX   COOKIE
Allow    Ingress     0          ANY          NONE         disabled    -       -         0        0
Allow    Ingress     11         ANY          NONE         disabled    695     10        0        0
Allow    Egress      0          ANY          NONE         disabled    -       -         0        0
Allow    Egress      11         ANY          NONE         disabled    -       -         0        0
`
	if n := ciliumPolicyEntries(captured); n != 4 {
		t.Errorf("captured table: %v entries, want 4", n)
	}
}
