package kind

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
)

// BenchNamespace holds the bench pods and Services of a kind lab.
const BenchNamespace = "cnilab"

// benchPod is one pod of the bench chart.
type benchPod struct {
	Name, Node, Role string
	Placement        lab.Placement
}

// benchService is one Service of the bench chart: one ClusterIP in front
// of a server pod with a port per protocol, because an iperf3 UDP test's
// control connection is TCP to the same address as its UDP datagrams.
type benchService struct {
	Name, Pod string
	Protocols []string
}

// benchLayout places the workloads on the two workers: cross-node pairs
// run from the first worker to the second, same-node pairs on the first.
// A cross-node pair is always there: readiness probes the pod network
// across nodes with it.
type benchLayout struct {
	Pods     []benchPod
	Services []benchService
}

func podName(p lab.Placement, role string) string { return string(p) + "-" + role }

func layout(w lab.Workloads, workers []string) (benchLayout, error) {
	if len(workers) < 2 {
		return benchLayout{}, fmt.Errorf("%d workers; cross-node pairs need 2", len(workers))
	}
	placements := slices.Clone(w.Placements)
	if !slices.Contains(placements, lab.CrossNode) {
		placements = append([]lab.Placement{lab.CrossNode}, placements...)
	}
	var l benchLayout
	for _, p := range placements {
		client, server := workers[0], workers[1]
		switch p {
		case lab.CrossNode:
		case lab.SameNode:
			server = workers[0]
		default:
			return benchLayout{}, fmt.Errorf("unknown placement %q", p)
		}
		l.Pods = append(l.Pods,
			benchPod{Name: podName(p, "client"), Node: client, Role: "client", Placement: p},
			benchPod{Name: podName(p, "server"), Node: server, Role: "server", Placement: p})
		var protos []string
		for _, proto := range w.ServiceProtocols {
			proto = strings.ToLower(proto)
			if proto != "tcp" && proto != "udp" {
				return benchLayout{}, fmt.Errorf("unknown Service protocol %q (tcp, udp)", proto)
			}
			protos = append(protos, proto)
		}
		if len(protos) > 0 {
			// UDP tests need the TCP port too (iperf3's control
			// connection goes to the same address).
			if !slices.Contains(protos, "tcp") {
				protos = append([]string{"tcp"}, protos...)
			}
			srv := podName(p, "server")
			l.Services = append(l.Services, benchService{Name: srv, Pod: srv, Protocols: protos})
		}
	}
	return l, nil
}

// values are the bench chart's values for the layout.
func (l benchLayout) values(image string) (map[string]any, error) {
	repo, tag, ok := helm.SplitImage(image)
	if !ok {
		return nil, fmt.Errorf("bench image %q has no tag", image)
	}
	var pods, svcs []any
	for _, p := range l.Pods {
		pods = append(pods, map[string]any{"name": p.Name, "node": p.Node, "role": p.Role, "placement": string(p.Placement)})
	}
	for _, s := range l.Services {
		var ports []any
		for _, p := range s.Protocols {
			ports = append(ports, map[string]any{"protocol": strings.ToUpper(p), "port": lab.ServicePort})
		}
		svcs = append(svcs, map[string]any{"name": s.Name, "pod": s.Pod, "ports": ports})
	}
	return map[string]any{
		"image": map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"pods":  pods, "services": svcs,
	}, nil
}

func (l benchLayout) podNames() []string {
	var n []string
	for _, p := range l.Pods {
		n = append(n, p.Name)
	}
	return n
}
