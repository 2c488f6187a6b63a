package kube

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cnilab/cnilab/charts"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/probe"
)

// RunLabel marks every object cnilab creates in a cluster with the run
// that created it, so cleanup finds exactly those and nothing else.
const RunLabel = "cnilab.io/run"

// BenchRelease is the Helm release name of the bench chart.
const BenchRelease = "cnilab-bench"

// BenchPod is one pod of the bench chart.
type BenchPod struct {
	Name, Node, Role string
	Placement        lab.Placement
}

// BenchService is one Service of the bench chart: one ClusterIP in front
// of a server pod with a port per protocol, because an iperf3 UDP test's
// control connection is TCP to the same address as its UDP datagrams.
type BenchService struct {
	Name, Pod string
	Protocols []string
}

// Layout places the workloads on two nodes: cross-node pairs run from
// the client node to the server node, same-node pairs on the client node.
// A cross-node pair is always there: readiness probes the pod network
// across nodes with it.
type Layout struct {
	Pods     []BenchPod
	Services []BenchService
}

// PodName is the bench pod of a placement and role (client, server).
func PodName(p lab.Placement, role string) string { return string(p) + "-" + role }

// NewLayout lays the workloads out on clientNode and serverNode, which
// must differ.
func NewLayout(w lab.Workloads, clientNode, serverNode string) (Layout, error) {
	if clientNode == "" || serverNode == "" || clientNode == serverNode {
		return Layout{}, fmt.Errorf("cross-node pairs need two distinct nodes, got %q and %q", clientNode, serverNode)
	}
	placements := slices.Clone(w.Placements)
	if !slices.Contains(placements, lab.CrossNode) {
		placements = append([]lab.Placement{lab.CrossNode}, placements...)
	}
	var l Layout
	for _, p := range placements {
		client, server := clientNode, serverNode
		switch p {
		case lab.CrossNode:
		case lab.SameNode:
			server = clientNode
		default:
			return Layout{}, fmt.Errorf("unknown placement %q", p)
		}
		l.Pods = append(l.Pods,
			BenchPod{Name: PodName(p, "client"), Node: client, Role: "client", Placement: p},
			BenchPod{Name: PodName(p, "server"), Node: server, Role: "server", Placement: p})
		var protos []string
		for _, proto := range w.ServiceProtocols {
			proto = strings.ToLower(proto)
			if proto != "tcp" && proto != "udp" {
				return Layout{}, fmt.Errorf("unknown Service protocol %q (tcp, udp)", proto)
			}
			protos = append(protos, proto)
		}
		if len(protos) > 0 {
			// UDP tests need the TCP port too (iperf3's control
			// connection goes to the same address).
			if !slices.Contains(protos, "tcp") {
				protos = append([]string{"tcp"}, protos...)
			}
			srv := PodName(p, "server")
			l.Services = append(l.Services, BenchService{Name: srv, Pod: srv, Protocols: protos})
		}
	}
	return l, nil
}

// ChartOptions are the bench chart's settings beyond the layout.
type ChartOptions struct {
	// Image is the bench image, repository:tag.
	Image string
	// PullPolicy: Never where the image is loaded into the nodes (kind),
	// IfNotPresent from a user's registry.
	PullPolicy string
	// HostNetwork runs the pods in their nodes' network namespace (the
	// host baseline on an existing cluster).
	HostNetwork bool
	// Labels go on every object the chart renders.
	Labels map[string]string
}

// Values are the bench chart's values for the layout.
func (l Layout) Values(o ChartOptions) (map[string]any, error) {
	repo, tag, ok := helm.SplitImage(o.Image)
	if !ok {
		return nil, fmt.Errorf("bench image %q has no tag", o.Image)
	}
	pull := o.PullPolicy
	if pull == "" {
		pull = "IfNotPresent"
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
	labels := map[string]any{}
	for k, v := range o.Labels {
		labels[k] = v
	}
	return map[string]any{
		"image": map[string]any{"repository": repo, "tag": tag, "pullPolicy": pull},
		"pods":  pods, "services": svcs, "hostNetwork": o.HostNetwork, "labels": labels,
	}, nil
}

// PodNames are the names of the layout's pods.
func (l Layout) PodNames() []string {
	var n []string
	for _, p := range l.Pods {
		n = append(n, p.Name)
	}
	return n
}

// Bench is one install of charts/cnilab-bench in its own namespace.
type Bench struct {
	Namespace string
	// NamespaceLabels label the namespace when it is created (the run
	// label on an existing cluster).
	NamespaceLabels map[string]string
	// OwnNamespace creates the namespace and refuses one that exists
	// (an existing cluster: cnilab never writes into a namespace it did
	// not create); otherwise an existing one is labelled and used.
	OwnNamespace bool
	Layout       Layout
	Chart        ChartOptions
	// ReadyTimeout bounds each wait: the pods running, the probe across
	// nodes.
	ReadyTimeout time.Duration
	// Probe starts `cnilab probe` in the bench pods.
	Probe probe.Launcher
}

// Render renders the bench chart as Install would install it (for
// --dry-run): the manifests of every object but the namespace.
func (b Bench) Render(kubeVersion string) (string, error) {
	values, err := b.Layout.Values(b.Chart)
	if err != nil {
		return "", err
	}
	ch, err := helm.LoadFS(charts.FS, charts.Bench)
	if err != nil {
		return "", err
	}
	return helm.Render(ch, helm.Release{Name: BenchRelease, Namespace: b.Namespace, Values: values}, kubeVersion)
}

// Workloads are the bench pods and Services as they run.
type Workloads struct {
	Pods         []*Pod
	Pairs        map[lab.Placement]lab.PodPair
	ServiceAddrs map[string]netip.AddrPort
}

// Install installs the bench chart, waits for its pods, reads their
// addresses and MTUs and the Services' ClusterIPs, and probes the network
// from the cross-node client to its server.
func (b Bench) Install(ctx context.Context, restCfg *rest.Config, cs kubernetes.Interface, hc helm.Client) (*Workloads, error) {
	values, err := b.Layout.Values(b.Chart)
	if err != nil {
		return nil, err
	}
	ch, err := helm.LoadFS(charts.FS, charts.Bench)
	if err != nil {
		return nil, err
	}
	if b.OwnNamespace {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.Namespace, Labels: b.NamespaceLabels}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", b.Namespace, err)
		}
	} else if err := EnsureNamespace(ctx, cs, b.Namespace, b.NamespaceLabels); err != nil {
		return nil, err
	}
	if err := hc.Install(ctx, ch, helm.Release{Name: BenchRelease, Namespace: b.Namespace, Values: values}, time.Minute); err != nil {
		return nil, err
	}
	if err := Poll(ctx, "bench pods", b.ReadyTimeout, time.Second, func(ctx context.Context) error {
		return PodsRunning(ctx, cs, b.Namespace, b.Layout.PodNames())
	}); err != nil {
		return nil, err
	}
	return b.read(ctx, restCfg, cs)
}

// Attach finds the bench an earlier Install left running (`cnilab up`,
// a kept or killed run), from its pod and Service names: the pods must
// all be there and running now, and the network across nodes must work.
// Nothing is installed.
func (b Bench) Attach(ctx context.Context, restCfg *rest.Config, cs kubernetes.Interface) (*Workloads, error) {
	if err := PodsRunning(ctx, cs, b.Namespace, b.Layout.PodNames()); err != nil {
		return nil, fmt.Errorf("the bench pods it needs are not running: %w", err)
	}
	return b.read(ctx, restCfg, cs)
}

// read reads the running bench's pods (addresses, MTUs) and Services and
// probes from the cross-node client to its server.
func (b Bench) read(ctx context.Context, restCfg *rest.Config, cs kubernetes.Interface) (*Workloads, error) {
	w := &Workloads{Pairs: map[lab.Placement]lab.PodPair{}, ServiceAddrs: map[string]netip.AddrPort{}}
	byName := map[string]*Pod{}
	for _, bp := range b.Layout.Pods {
		kp, err := cs.CoreV1().Pods(b.Namespace).Get(ctx, bp.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		ip, err := netip.ParseAddr(kp.Status.PodIP)
		if err != nil {
			return nil, fmt.Errorf("pod %s address %q: %w", bp.Name, kp.Status.PodIP, err)
		}
		pd := NewPod(restCfg, cs, b.Namespace, bp.Name, kp.Spec.NodeName, ip)
		// A host-network pod's eth0 is whatever the node calls its first
		// NIC, if it has one: its MTU stays unknown (0) rather than a guess.
		if !b.Chart.HostNetwork {
			res, err := pd.Exec().Run(ctx, command.Cmd{Name: "cat", Args: []string{"/sys/class/net/eth0/mtu"}})
			if err != nil {
				return nil, fmt.Errorf("read the MTU in pod %s: %w", bp.Name, err)
			}
			if pd.mtu, err = ParseMTU(string(res.Stdout)); err != nil {
				return nil, fmt.Errorf("pod %s: %w", bp.Name, err)
			}
		}
		byName[bp.Name] = pd
		w.Pods = append(w.Pods, pd)
	}
	for _, bp := range b.Layout.Pods {
		if bp.Role == "client" {
			w.Pairs[bp.Placement] = lab.PodPair{Client: byName[bp.Name], Server: byName[PodName(bp.Placement, "server")]}
		}
	}
	for _, bs := range b.Layout.Services {
		svc, err := cs.CoreV1().Services(b.Namespace).Get(ctx, bs.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil {
			return nil, fmt.Errorf("service %s ClusterIP %q: %w", bs.Name, svc.Spec.ClusterIP, err)
		}
		for _, proto := range bs.Protocols {
			w.ServiceAddrs[lab.ServiceKey(bs.Pod, proto)] = netip.AddrPortFrom(ip, lab.ServicePort)
		}
	}
	pair := w.Pairs[lab.CrossNode]
	if err := Poll(ctx, "pod network across nodes", b.ReadyTimeout, time.Second, func(ctx context.Context) error {
		return ProbeAcross(ctx, b.Probe, pair.Client, pair.Server)
	}); err != nil {
		return nil, err
	}
	return w, nil
}

// ProbeAcross runs a few request/response transactions from client to an
// echo server in server: the network between them works end to end.
func ProbeAcross(ctx context.Context, l probe.Launcher, client, server lab.Pod) error {
	echo, err := server.Exec().Start(ctx, l.Cmd("echo", "-listen", fmt.Sprintf("0.0.0.0:%d", lab.ServicePort), "-duration", "30s"))
	if err != nil {
		return err
	}
	defer echo.Stop(time.Second)
	target := netip.AddrPortFrom(server.IP(), lab.ServicePort).String()
	var last error
	// Bounded: ten tries of three transactions each.
	for range 10 {
		out, err := client.Exec().Run(ctx, l.Cmd("rr", "-target", target, "-count", "3", "-duration", "2s", "-timeout", "500ms"))
		if err != nil {
			return fmt.Errorf("%s → %s: %w", client.Name(), server.Name(), err)
		}
		res, err := probe.ParseConnectResult(out.Stdout)
		if err != nil {
			return err
		}
		if res.OK > 0 {
			return nil
		}
		last = fmt.Errorf("%s (%s) → %s (%s): %d of %d transactions failed: %v", client.Name(), client.NodeName(), target, server.NodeName(), res.Failed, res.Attempts, res.Errors)
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

// EnsureNamespace creates a namespace with labels, or labels the one
// that exists.
func EnsureNamespace(ctx context.Context, cs kubernetes.Interface, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	_, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		for k, v := range labels {
			cur.Labels[k] = v
		}
		_, err = cs.CoreV1().Namespaces().Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	return nil
}
