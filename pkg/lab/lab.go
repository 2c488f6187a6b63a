// Package lab defines what a lab is to the rest of cnilab: nodes and pods
// that run programs, and the workloads a scenario asks for. Providers (netns,
// kind, existing clusters) build labs behind the same interface; a scenario
// cannot tell them apart and never sees a namespace path, a file descriptor,
// a container id or a kubeconfig.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
)

// Role is a node's part in the cluster.
type Role string

// Roles.
const (
	RoleControlPlane Role = "control-plane"
	RoleWorker       Role = "worker"
)

// Node is a node of a running lab.
type Node interface {
	Name() string
	IP() netip.Addr
	Role() Role
	// Exec runs programs on the node (in its network namespace or
	// container).
	Exec() command.Runner
}

// WorkerNames are the names of the worker nodes among nodes, sorted.
func WorkerNames(nodes []Node) []string {
	var out []string
	for _, n := range nodes {
		if n.Role() == RoleWorker {
			out = append(out, n.Name())
		}
	}
	slices.Sort(out)
	return out
}

// Pod is a pod of a running lab.
type Pod interface {
	Name() string
	IP() netip.Addr
	// NodeName is the node the pod runs on.
	NodeName() string
	// MTU is the pod's interface MTU as the provider read it (0 unknown).
	MTU() int
	// Exec runs programs inside the pod. A started process's Stop really
	// stops the program in the pod; a failed one returns *command.Error
	// with its output.
	Exec() command.Runner
}

// Placement says where a server runs relative to its client.
type Placement string

// Placements.
const (
	SameNode  Placement = "same-node"
	CrossNode Placement = "cross-node"
)

// Workloads is what a run's scenarios declare they need; the provider
// realises it when the lab comes up.
type Workloads struct {
	// Placements: a client and a server pod for each (cross-node: on two
	// different nodes; same-node: on one node).
	Placements []Placement
	// ServiceProtocols: a ClusterIP Service per server pod per protocol
	// ("tcp", "udp") on ServicePort.
	ServiceProtocols []string
	// Peers are extra pods in namespaces of their own (policy scenario).
	Peers []Peer
}

// Merge returns the union of two declarations.
func (w Workloads) Merge(o Workloads) Workloads {
	out := Workloads{Placements: slices.Clone(w.Placements), ServiceProtocols: slices.Clone(w.ServiceProtocols), Peers: mergePeers(nil, w.Peers)}
	out.Peers = mergePeers(out.Peers, o.Peers)
	for _, p := range o.Placements {
		if !slices.Contains(out.Placements, p) {
			out.Placements = append(out.Placements, p)
		}
	}
	for _, p := range o.ServiceProtocols {
		if !slices.Contains(out.ServiceProtocols, p) {
			out.ServiceProtocols = append(out.ServiceProtocols, p)
		}
	}
	return out
}

// Spec asks a provider for one lab.
type Spec struct {
	Def       *config.Lab
	RunID     string
	Workloads Workloads
	// Nodes and PodsPerNode size a netns lab's topology (0: what the
	// workloads need); cluster providers have fixed topologies.
	Nodes       int
	PodsPerNode int
	UnderlayMTU int
	// Dir is the run directory: providers keep per-lab files (a kind
	// lab's kubeconfig) there and nowhere else.
	Dir string
}

// PodPair is a client and its server.
type PodPair struct{ Client, Server Pod }

// Instance is a running lab.
type Instance struct {
	Name     string
	CNI      string
	Provider string
	Fidelity results.Fidelity
	Datapath string
	Encap    string
	PodMTU   int
	// RouteMTU is the pod's route MTU where it differs from PodMTU.
	RouteMTU int
	Notes    []string
	// NoFootprint says why idle CPU/memory measured in this lab are not the
	// CNI's (empty when the CNI's agents run, as on kind).
	NoFootprint string
	Nodes       []Node
	Pods        []Pod
	// Pairs are the client/server pods per placement the workloads asked
	// for.
	Pairs map[Placement]PodPair
	// Peers are the workloads' peer pods by Peer.Key.
	Peers map[string]Pod
	// Policy applies NetworkPolicy where the lab's CNI enforces it for
	// real (kind); nil where policy is not modelled. It may also be a
	// PolicyProgramReader.
	Policy PolicyApplier
	// Proxy is the service proxy in use (after any fallback), "" if none.
	Proxy string
	// ServiceAddrs are the ClusterIP frontends of the lab's Services, keyed
	// by ServiceKey(server pod name, protocol).
	ServiceAddrs map[string]netip.AddrPort
	// Probe starts `cnilab probe` inside this lab's pods; nil means the
	// local binary (pods share this machine's filesystem).
	Probe *probe.Launcher
	// Software is what ran, where the CNI itself runs.
	Software results.Software
	// Footprinter reads the CNI's own pods' cgroups where they run (kind);
	// nil where none run (then NoFootprint says why).
	Footprinter Footprinter
	// UpSteps times the steps of Up where the provider does (kind).
	UpSteps *results.UpSteps
	// Detected is what an existing cluster was found to run (cluster).
	Detected *results.Detected
	// Owned are the provider's handles to tear the lab down.
	Owned any
}

// Services names the lab's service proxy, "" when it has none.
func (in *Instance) Services() string { return in.Proxy }

// Pair returns the client and server for a placement.
func (in *Instance) Pair(p Placement) (client, server Pod, err error) {
	pp, ok := in.Pairs[p]
	if !ok || pp.Client == nil || pp.Server == nil {
		return nil, nil, fmt.Errorf("lab %s has no %s server pod", in.Name, p)
	}
	return pp.Client, pp.Server, nil
}

// Service returns the frontend of the Service in front of server.
func (in *Instance) Service(server Pod, proto string) (netip.AddrPort, error) {
	if in.Services() == "" {
		return netip.AddrPort{}, errors.New("lab has no service proxy")
	}
	a, ok := in.ServiceAddrs[ServiceKey(server.Name(), proto)]
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("lab has no %s Service in front of %s", proto, server.Name())
	}
	return a, nil
}

// Unavailable is returned by Up when the lab cannot be built on this
// machine; it is not a failure of the lab.
type Unavailable struct{ Reason string }

func (u *Unavailable) Error() string { return u.Reason }

// IsUnavailable reports whether err says the lab cannot run here.
func IsUnavailable(err error) bool {
	var u *Unavailable
	return errors.As(err, &u)
}

// Provider builds and removes labs.
type Provider interface {
	Name() string
	Up(ctx context.Context, s Spec) (*Instance, error)
	Down(ctx context.Context, in *Instance) error
	// List returns the names of everything this provider finds with
	// cnilab's prefix, running or left behind.
	List(ctx context.Context) ([]string, error)
	// DownAll removes everything List finds. It is idempotent.
	DownAll(ctx context.Context) ([]string, error)
}

// ServiceKey names the Service fronting a backend pod for a protocol.
func ServiceKey(backend, proto string) string { return backend + "/" + proto }

// ServicePort is the port of the lab's iperf3 Services (and servers).
const ServicePort = 5201

// Attacher is a provider that can find labs a previous `cnilab up` left
// running, from names alone.
type Attacher interface {
	Attach(ctx context.Context, s Spec) (*Instance, error)
}

// Measure records one window in this lab: the measurement carries the lab's
// provider and fidelity, and fill's error, if any, becomes its Error.
func (in *Instance) Measure(scenario, test, placement string, repeat int, fill func(*results.Measurement) error) results.Measurement {
	m := results.Measurement{Lab: in.Name, Scenario: scenario, Test: test, Repeat: repeat, Placement: placement,
		Provider: in.Provider, Fidelity: in.Fidelity, Started: time.Now().UTC(), Metrics: map[string]float64{}}
	if err := fill(&m); err != nil {
		m.Error = err.Error()
	}
	return m
}
