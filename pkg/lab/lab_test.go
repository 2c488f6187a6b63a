package lab

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWorkloadsMerge(t *testing.T) {
	cases := []struct {
		name string
		a, b Workloads
		want Workloads
	}{
		{"empty", Workloads{}, Workloads{}, Workloads{}},
		{"union keeps order and drops repeats",
			Workloads{Placements: []Placement{CrossNode}, ServiceProtocols: []string{"tcp"}},
			Workloads{Placements: []Placement{SameNode, CrossNode}, ServiceProtocols: []string{"udp", "tcp"}},
			Workloads{Placements: []Placement{CrossNode, SameNode}, ServiceProtocols: []string{"tcp", "udp"}}},
		{"peers by namespace and name",
			Workloads{Peers: []Peer{{Name: "client", Namespace: "cnl-a", Labels: map[string]string{"app": "client"}}}},
			Workloads{Peers: []Peer{{Name: "client", Namespace: "cnl-a"}, {Name: "client", Namespace: "cnl-b"}}},
			Workloads{Peers: []Peer{{Name: "client", Namespace: "cnl-a", Labels: map[string]string{"app": "client"}}, {Name: "client", Namespace: "cnl-b"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, tc.a.Merge(tc.b)); d != "" {
				t.Errorf("merge (-want +got):\n%s", d)
			}
		})
	}
}

func TestPairAndService(t *testing.T) {
	in := &Instance{Name: "x", Pairs: map[Placement]PodPair{}}
	if _, _, err := in.Pair(CrossNode); err == nil {
		t.Error("a lab without a cross-node pair returned one")
	}
	if _, err := in.Service(nil, "tcp"); err == nil || err.Error() != "lab has no service proxy" {
		t.Errorf("service on a lab without a proxy: %v", err)
	}
}
