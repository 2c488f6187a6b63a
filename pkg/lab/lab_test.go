package lab

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/command"
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

type namedNode struct {
	name string
	role Role
}

func (n namedNode) Name() string         { return n.name }
func (n namedNode) IP() netip.Addr       { return netip.Addr{} }
func (n namedNode) Role() Role           { return n.role }
func (n namedNode) Exec() command.Runner { return nil }

// TestWorkerNames: the workers, sorted, and never the control plane (the
// cross-node pair and cpufocus both rely on it).
func TestWorkerNames(t *testing.T) {
	nodes := []Node{namedNode{"w2", RoleWorker}, namedNode{"cp", RoleControlPlane}, namedNode{"w1", RoleWorker}}
	if got := WorkerNames(nodes); strings.Join(got, ",") != "w1,w2" {
		t.Errorf("WorkerNames = %v, want [w1 w2]", got)
	}
	if got := WorkerNames(nil); len(got) != 0 {
		t.Errorf("WorkerNames(nil) = %v", got)
	}
}
