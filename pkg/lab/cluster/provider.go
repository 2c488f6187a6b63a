// Package cluster is the lab provider for a Kubernetes cluster the user
// already runs: nothing is provisioned. cnilab detects the CNI from what
// runs (DaemonSets, images, ConfigMaps), puts its bench workloads in a
// namespace of its own (cnilab-<run>, every object labelled with the run)
// and removes that namespace afterwards. It writes nothing else.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/kube"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
)

// NamespacePrefix starts every namespace cnilab creates in a cluster.
const NamespacePrefix = "cnilab-"

// ManagedBy is the app.kubernetes.io/managed-by value on cnilab's
// namespaces.
const ManagedBy = "cnilab"

// ProbePath is where the bench image keeps the cnilab binary.
const ProbePath = "/usr/local/bin/cnilab"

// Provider measures on an existing cluster.
type Provider struct {
	// Kubeconfig and Context select the cluster (Context "" : the file's
	// current context). Nothing is written to the file.
	Kubeconfig, Context string
	// BenchImage is the bench image in a registry the nodes pull from
	// (cnilab images build, then push); PullPolicy defaults to
	// IfNotPresent.
	BenchImage, PullPolicy string
	// Nodes names the client and server nodes (--nodes a,b); else
	// NodeSelector (a label selector) narrows the candidates; else the
	// first two schedulable workers.
	Nodes        []string
	NodeSelector string
	// Run narrows List and DownAll to one run's namespaces ("" every
	// cnilab run's).
	Run string
	// ReadyTimeout bounds each wait.
	ReadyTimeout time.Duration
	Log          func(format string, args ...any)

	restCfg *rest.Config
	cs      kubernetes.Interface

	mu  sync.Mutex
	pre *Preflight
}

var _ lab.Provider = (*Provider)(nil)

// New connects to the cluster of kubeconfig (and context).
func New(kubeconfig, kubeContext string) (*Provider, error) {
	if kubeconfig == "" {
		return nil, errors.New("--provider cluster needs --kubeconfig FILE")
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	// Above client-go's default 5 requests/s, which turned creating the
	// policy scenario's 1000 NetworkPolicies into 200 s of client-side
	// waiting; the API server's priority and fairness still governs.
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{Kubeconfig: kubeconfig, Context: kubeContext, ReadyTimeout: 3 * time.Minute, restCfg: cfg, cs: cs}, nil
}

// NewWithClient is a provider over a given client (tests).
func NewWithClient(cs kubernetes.Interface) *Provider {
	return &Provider{cs: cs, ReadyTimeout: 3 * time.Minute}
}

// Name implements lab.Provider.
func (*Provider) Name() string { return "cluster" }

func (p *Provider) logf(format string, args ...any) {
	if p.Log != nil {
		p.Log(format, args...)
	}
}

// Preflight is what a run found before creating anything.
type Preflight struct {
	Detection *Detection
	// Client and Server are the bench nodes; NodesHow says why those.
	Client, Server *corev1.Node
	NodesHow       string
	// Metrics is the metrics API's state: "" when served and readable,
	// else why the footprint is not available.
	NoMetrics string
}

// ErrPrerequisite marks what the cluster lacks for a run (exit code 3):
// rights, a CNI cnilab knows, two schedulable nodes, a bench image.
var ErrPrerequisite = errors.New("missing prerequisite")

// Preflight checks the credentials' rights (SelfSubjectAccessReview),
// detects the CNI, holds every lab definition against it and chooses the
// nodes. It creates nothing. Its errors wrap ErrPrerequisite, except a
// lab pinning another CNI, a *MismatchError.
func (p *Provider) Preflight(ctx context.Context, defs []*config.Lab) (*Preflight, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pre != nil {
		return p.pre, p.check(defs)
	}
	if p.BenchImage == "" {
		return nil, fmt.Errorf("%w: --bench-image: the cnilab bench image in a registry the nodes can pull from (README: cnilab images build, then docker push)", ErrPrerequisite)
	}
	if _, _, ok := helm.SplitImage(p.BenchImage); !ok {
		return nil, fmt.Errorf("%w: --bench-image %q has no tag", ErrPrerequisite, p.BenchImage)
	}
	if err := CheckAccess(ctx, p.cs, Required()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPrerequisite, err)
	}
	d, err := Detect(ctx, p.cs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPrerequisite, err)
	}
	pre := &Preflight{Detection: d}
	if pre.Client, pre.Server, pre.NodesHow, err = p.chooseNodes(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPrerequisite, err)
	}
	d.Nodes, d.NodesHow = []string{pre.Client.Name, pre.Server.Name}, pre.NodesHow
	pre.NoMetrics = p.metricsState(ctx)
	p.pre = pre
	return pre, p.check(defs)
}

func (p *Provider) check(defs []*config.Lab) error {
	var errs []error
	for _, def := range defs {
		if err := p.pre.Detection.Check(def); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// schedulable says why a node cannot take bench pods, "" when it can.
func schedulable(n *corev1.Node) string {
	if n.Spec.Unschedulable {
		return "cordoned"
	}
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		return "not Ready"
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return "tainted " + t.Key + ":" + string(t.Effect)
		}
	}
	return ""
}

func isControlPlane(n *corev1.Node) bool {
	_, cp := n.Labels["node-role.kubernetes.io/control-plane"]
	_, master := n.Labels["node-role.kubernetes.io/master"]
	return cp || master
}

// chooseNodes picks the client and server nodes: the two --nodes named,
// else the first two (by name) schedulable workers matching the selector.
func (p *Provider) chooseNodes(ctx context.Context) (client, server *corev1.Node, how string, err error) {
	list, err := p.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: p.NodeSelector})
	if err != nil {
		return nil, nil, "", fmt.Errorf("list nodes: %w", err)
	}
	nodes := list.Items
	slices.SortFunc(nodes, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	if len(p.Nodes) > 0 {
		if len(p.Nodes) != 2 || p.Nodes[0] == p.Nodes[1] {
			return nil, nil, "", fmt.Errorf("--nodes %s: two distinct nodes, client first", strings.Join(p.Nodes, ","))
		}
		var picked []*corev1.Node
		for _, name := range p.Nodes {
			i := slices.IndexFunc(nodes, func(n corev1.Node) bool { return n.Name == name })
			if i < 0 {
				return nil, nil, "", fmt.Errorf("--nodes: no node %q", name)
			}
			if why := schedulable(&nodes[i]); why != "" {
				return nil, nil, "", fmt.Errorf("--nodes: node %s is %s", name, why)
			}
			picked = append(picked, &nodes[i])
		}
		return picked[0], picked[1], "--nodes", nil
	}
	var ok []*corev1.Node
	var skipped []string
	for i := range nodes {
		n := &nodes[i]
		why := schedulable(n)
		if why == "" && isControlPlane(n) {
			why = "control plane"
		}
		if why != "" {
			skipped = append(skipped, n.Name+" "+why)
			continue
		}
		ok = append(ok, n)
	}
	if len(ok) < 2 {
		return nil, nil, "", fmt.Errorf("cross-node pairs need two schedulable worker nodes; %d found (skipped: %s); name two with --nodes a,b", len(ok), strings.Join(skipped, ", "))
	}
	how = "the first two schedulable workers by name"
	if p.NodeSelector != "" {
		how += " with labels " + p.NodeSelector
	}
	return ok[0], ok[1], how, nil
}

// Namespace is the namespace of a lab of a run: cnilab-<run> for the
// CNI, cnilab-<run>-host for the host-network baseline.
func Namespace(runID string, def *config.Lab) string {
	if def.CNI == "host" {
		return NamespacePrefix + runID + "-host"
	}
	return NamespacePrefix + runID
}

func (p *Provider) labels(runID string) map[string]string {
	return map[string]string{kube.RunLabel: runID, "app.kubernetes.io/managed-by": ManagedBy}
}

// bench is the bench install of one lab.
func (p *Provider) bench(s lab.Spec, pre *Preflight) (kube.Bench, error) {
	w := s.Workloads
	host := s.Def.CNI == "host"
	if host {
		// The baseline has no service proxy: s-tests are skipped for it.
		w.ServiceProtocols = nil
	}
	l, err := kube.NewLayout(w, pre.Client.Name, pre.Server.Name)
	if err != nil {
		return kube.Bench{}, err
	}
	return kube.Bench{
		Namespace: Namespace(s.RunID, s.Def), NamespaceLabels: p.labels(s.RunID), OwnNamespace: true, Layout: l,
		ReadyTimeout: p.ReadyTimeout, Probe: probe.Launcher{Path: ProbePath, Args: []string{"probe"}},
		Chart: kube.ChartOptions{Image: p.BenchImage, PullPolicy: p.PullPolicy, HostNetwork: host, Labels: p.labels(s.RunID)},
	}, nil
}

// DryRun writes every object the labs of specs would create, as YAML,
// and creates nothing.
func (p *Provider) DryRun(ctx context.Context, w io.Writer, specs []lab.Spec) error {
	var defs []*config.Lab
	for _, s := range specs {
		defs = append(defs, s.Def)
	}
	pre, err := p.Preflight(ctx, defs)
	if err != nil {
		return err
	}
	kv := pre.Detection.Kubernetes
	if kv == "" {
		kv = "v1.34.0"
	}
	for _, s := range specs {
		b, err := p.bench(s, pre)
		if err != nil {
			return err
		}
		ns := corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: b.Namespace, Labels: b.NamespaceLabels}}
		y, err := sigsyaml.Marshal(ns)
		if err != nil {
			return err
		}
		manifest, err := b.Render(kv)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "# lab %s (%s): namespace %s, bench on %s → %s\n---\n%s%s", s.Def.Name, s.Def.CNI, b.Namespace, pre.Client.Name, pre.Server.Name, y, manifest)
	}
	return nil
}

// Up implements lab.Provider: the bench workloads of one lab in a
// namespace of their own; whatever fails, the namespace is removed.
func (p *Provider) Up(ctx context.Context, s lab.Spec) (_ *lab.Instance, err error) {
	pre, err := p.Preflight(ctx, []*config.Lab{s.Def})
	if err != nil {
		return nil, err
	}
	d := pre.Detection
	b, err := p.bench(s, pre)
	if err != nil {
		return nil, err
	}
	own := &owned{namespace: b.Namespace, run: s.RunID}
	defer func() {
		if err != nil {
			if derr := p.deleteNamespace(context.Background(), own.namespace, own.run); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	hc := helm.Client{Kubeconfig: p.Kubeconfig, Context: p.Context, CacheDir: s.Dir, Storage: "memory"}
	p.logf("cluster %s: bench pods in %s on %s → %s", s.Def.Name, b.Namespace, pre.Client.Name, pre.Server.Name)
	start := time.Now()
	wl, err := b.Install(ctx, p.restCfg, p.cs, hc)
	if err != nil {
		if s.Def.CNI == "host" && (apierrors.IsForbidden(err) || strings.Contains(err.Error(), "is forbidden")) {
			return nil, &lab.Unavailable{Reason: "no host baseline: host-network pods are refused on this cluster (" + err.Error() + "); figures are absolute only"}
		}
		return nil, err
	}
	in := &lab.Instance{
		Name: s.Def.Name, CNI: s.Def.CNI, Provider: p.Name(), Fidelity: results.Real, Owned: own,
		Probe: &b.Probe, Pairs: wl.Pairs, ServiceAddrs: wl.ServiceAddrs,
	}
	for _, pd := range wl.Pods {
		in.Pods = append(in.Pods, pd)
	}
	for _, n := range []*corev1.Node{pre.Client, pre.Server} {
		in.Nodes = append(in.Nodes, newNode(n))
	}
	in.UpSteps = &results.UpSteps{WorkloadsReadySeconds: time.Since(start).Seconds()}
	nodesNote := fmt.Sprintf("existing cluster: bench pods on %s (client) and %s (server): %s", pre.Client.Name, pre.Server.Name, pre.NodesHow)
	if s.Def.CNI == "host" {
		in.Datapath = "host network (no CNI in the path)"
		in.NoFootprint = "the host baseline runs no CNI of its own"
		in.Notes = append(in.Notes, nodesNote)
		return in, nil
	}
	in.PodMTU = in.Pairs[lab.CrossNode].Client.MTU()
	in.Datapath = d.CNI
	if d.Mode != "" {
		in.Datapath += " " + d.Mode
	}
	in.Encap = d.Encap
	in.Proxy = d.Proxy
	det := d.Detected
	det.How = slices.Clone(d.How)
	in.Detected = &det
	in.Software = results.Software{Kubernetes: d.Kubernetes, CNIVersion: d.Version, CNIImage: d.Image}
	in.Notes = append(in.Notes, fmt.Sprintf("existing cluster: %s %s detected (%s)", d.CNI, d.Version, strings.Join(d.How, "; ")), nodesNote)
	if pre.NoMetrics != "" {
		in.NoFootprint = pre.NoMetrics
	} else {
		in.NoFootprint = "per-window footprint not measured on an existing cluster: the metrics API averages over its own interval, not the window's (a snapshot at lab up is in the notes)"
		if note, err := p.metricsSnapshot(ctx, d); err == nil {
			in.Notes = append(in.Notes, note)
		} else {
			in.Notes = append(in.Notes, "CNI footprint from metrics.k8s.io: not available: "+err.Error())
		}
	}
	return in, nil
}

// owned is what Down needs, in Instance.Owned.
type owned struct{ namespace, run string }

// node is a node of an existing cluster: cnilab has no way onto it.
type node struct {
	name string
	ip   netip.Addr
	role lab.Role
}

func newNode(n *corev1.Node) *node {
	out := &node{name: n.Name, role: lab.RoleWorker}
	if isControlPlane(n) {
		out.role = lab.RoleControlPlane
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
				out.ip = ip
				break
			}
		}
	}
	return out
}

func (n *node) Name() string   { return n.name }
func (n *node) IP() netip.Addr { return n.ip }
func (n *node) Role() lab.Role { return n.role }
func (n *node) Exec() command.Runner {
	return noNodeExec{node: n.name}
}

// noNodeExec refuses: on someone else's cluster cnilab runs programs only
// in its own pods.
type noNodeExec struct{ node string }

func (r noNodeExec) Run(context.Context, command.Cmd) (command.Result, error) {
	return command.Result{}, fmt.Errorf("node %s of an existing cluster: cnilab does not run programs on nodes", r.node)
}

func (r noNodeExec) Start(context.Context, command.Cmd) (command.Process, error) {
	return nil, fmt.Errorf("node %s of an existing cluster: cnilab does not run programs on nodes", r.node)
}

// Down implements lab.Provider: the lab's namespace goes, with everything
// in it, and Down waits until it is gone.
func (p *Provider) Down(ctx context.Context, in *lab.Instance) error {
	o, ok := in.Owned.(*owned)
	if !ok {
		return fmt.Errorf("lab %s was not brought up by the cluster provider", in.Name)
	}
	return p.deleteNamespace(ctx, o.namespace, o.run)
}

// deleteNamespace deletes a namespace cnilab created for run, and only
// such a one: its name has cnilab's prefix and it carries the run label.
// It waits (bounded) until the namespace is gone.
func (p *Provider) deleteNamespace(ctx context.Context, name, run string) error {
	ns, err := p.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	if !strings.HasPrefix(name, NamespacePrefix) || ns.Labels[kube.RunLabel] != run || run == "" {
		return fmt.Errorf("namespace %s is not cnilab's for run %s (labels %v): left alone", name, run, ns.Labels)
	}
	if err := p.cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return kube.Poll(ctx, "namespace "+name+" deleted", 3*time.Minute, time.Second, func(ctx context.Context) error {
		_, err := p.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("still terminating")
	})
}

// leftovers are cnilab's namespaces: name prefix cnilab- and a run label
// (of run Run when set).
func (p *Provider) leftovers(ctx context.Context) ([]corev1.Namespace, error) {
	sel := kube.RunLabel
	if p.Run != "" {
		sel = kube.RunLabel + "=" + p.Run
	}
	list, err := p.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list namespaces labelled %s: %w", sel, err)
	}
	var out []corev1.Namespace
	for _, ns := range list.Items {
		if strings.HasPrefix(ns.Name, NamespacePrefix) {
			out = append(out, ns)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Namespace) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// List implements lab.Provider: cnilab's namespaces in the cluster.
func (p *Provider) List(ctx context.Context) ([]string, error) {
	nss, err := p.leftovers(ctx)
	var names []string
	for _, ns := range nss {
		names = append(names, ns.Name)
	}
	return names, err
}

// DownAll implements lab.Provider: removes every namespace List finds.
// Objects cnilab did not create are never touched: only namespaces with
// its prefix and run label go.
func (p *Provider) DownAll(ctx context.Context) ([]string, error) {
	nss, err := p.leftovers(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, ns := range nss {
		if err := p.deleteNamespace(ctx, ns.Name, ns.Labels[kube.RunLabel]); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, ns.Name)
	}
	return removed, errors.Join(errs...)
}
