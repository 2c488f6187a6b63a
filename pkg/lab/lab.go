// Package lab defines what a lab is to the rest of cnilab: nodes and pods
// and a way to run a program in a pod. Providers (netns here; kind and
// existing clusters behind the same interface) build labs and know nothing
// about scenarios.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/results"
)

// Spec asks a provider for one lab.
type Spec struct {
	Def         *config.Lab
	RunID       string
	Nodes       int
	PodsPerNode int
	UnderlayMTU int
}

// Node is a node of a running lab.
type Node struct {
	Name string
	IP   netip.Addr
	// Netns is the path of the node's network namespace (netns provider).
	Netns string
}

// Pod is a pod of a running lab.
type Pod struct {
	Name  string
	Node  int
	IP    netip.Addr
	Netns string
	MTU   int
}

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
	// Runner runs programs inside pods and nodes.
	Runner command.Runner
	// Proxy is the service proxy in use (after any fallback), "" if none.
	Proxy string
	// ServiceAddrs are the ClusterIP frontends the lab programmed, keyed by
	// ServiceKey(backend pod, protocol).
	ServiceAddrs map[string]netip.AddrPort
	// ClientCgroupFD, when > 0, is the cgroup v2 clients must start in so
	// the lab's socket-level service proxy sees them (eBPF socket-LB).
	ClientCgroupFD int
	// Owned are the provider's handles to tear the lab down.
	Owned any
}

// Services names the lab's service proxy, "" when it has none.
func (in *Instance) Services() string { return in.Proxy }

// RunIn returns c set up to run inside the given namespace path.
func RunIn(netnsPath string, c command.Cmd) command.Cmd {
	c.Netns = netnsPath
	return c
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

// PodByName finds a pod.
func (in *Instance) PodByName(name string) (Pod, error) {
	for _, p := range in.Pods {
		if p.Name == name {
			return p, nil
		}
	}
	return Pod{}, fmt.Errorf("lab %s has no pod %s", in.Name, name)
}
