package kind

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab"
)

// helmReleaseAnnotation is what Helm writes on every object of a release.
const helmReleaseAnnotation = "meta.helm.sh/release-name"

// workload is a footprint component with where its pods are found.
type workload struct {
	lab.Component
	Namespace string
	Selector  string
}

// footprinter reads the kubepods cgroups of a kind lab's nodes and sums
// them per component: the CNI's own workloads (every DaemonSet and
// Deployment of its Helm release, and the recipe's DaemonSets) and
// kube-proxy where the lab runs it.
type footprinter struct {
	cs        kubernetes.Interface
	nodes     []lab.Node
	workloads []workload
}

var _ lab.Footprinter = (*footprinter)(nil)

// Components implements lab.Footprinter.
func (f *footprinter) Components() []lab.Component {
	out := make([]lab.Component, len(f.workloads))
	for i, w := range f.workloads {
		out[i] = w.Component
	}
	return out
}

// findWorkloads lists the workloads whose pods count: the CNI release's
// DaemonSets and Deployments in its namespace (Helm's release annotation),
// the recipe's DaemonSets ("name" in the release namespace or
// "namespace/name"), every DaemonSet and Deployment of a namespace the
// recipe names that way other than kube-system (where an operator puts the
// CNI's workloads: calico-system), and kube-proxy unless the lab runs
// without it.
func findWorkloads(ctx context.Context, cs kubernetes.Interface, k *config.KindLab) ([]workload, error) {
	c := k.CNI
	var out []workload
	seen := map[string]bool{}
	add := func(ns, kind, name string, sel *metav1.LabelSelector, role string) {
		key := ns + "/" + kind + "/" + name
		if !seen[key] {
			seen[key] = true
			out = append(out, workload{Component: lab.Component{Name: name, Kind: kind, Role: role}, Namespace: ns, Selector: metav1.FormatLabelSelector(sel)})
		}
	}
	// Namespaces to scan, and whether everything in them is the CNI's.
	whole := map[string]bool{c.Namespace: false}
	order := []string{c.Namespace}
	for _, entry := range c.DaemonSets {
		ns, _ := daemonSetRef(c.Namespace, entry)
		if _, ok := whole[ns]; !ok {
			whole[ns] = ns != "kube-system"
			order = append(order, ns)
		}
	}
	for _, ns := range order {
		dss, err := cs.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list DaemonSets in %s: %w", ns, err)
		}
		for _, ds := range dss.Items {
			named := slices.ContainsFunc(c.DaemonSets, func(e string) bool {
				n, name := daemonSetRef(c.Namespace, e)
				return n == ns && name == ds.Name
			})
			if whole[ns] || named || (ns == c.Namespace && ds.Annotations[helmReleaseAnnotation] == c.Release) {
				add(ns, "DaemonSet", ds.Name, ds.Spec.Selector, lab.RoleCNI)
			}
		}
		deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list Deployments in %s: %w", ns, err)
		}
		for _, d := range deps.Items {
			if whole[ns] || (ns == c.Namespace && d.Annotations[helmReleaseAnnotation] == c.Release) {
				add(ns, "Deployment", d.Name, d.Spec.Selector, lab.RoleCNI)
			}
		}
	}
	for _, entry := range c.DaemonSets {
		ns, name := daemonSetRef(c.Namespace, entry)
		if !seen[ns+"/DaemonSet/"+name] {
			return nil, fmt.Errorf("DaemonSet %s/%s of the recipe not found", ns, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no workload of release %s in %s", c.Release, c.Namespace)
	}
	if k.KubeProxyMode != "none" {
		ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("kube-proxy DaemonSet: %w", err)
		}
		add(ds.Namespace, "DaemonSet", ds.Name, ds.Spec.Selector, lab.RoleServiceProxy)
	}
	return out, nil
}

// Footprint implements lab.Footprinter: the components' pods from the
// API, then every node's cgroups at once. At is the middle of the node
// reads (each a ~0.1 s docker exec, run in the node's root cgroup, so it
// adds to the node total but never to a pod's).
func (f *footprinter) Footprint(ctx context.Context) (lab.FootprintSample, error) {
	s := lab.FootprintSample{Components: f.Components(), Pods: map[string]lab.PodUsage{}, Nodes: map[string]lab.Usage{}}
	type podRef struct{ component, pod, node string }
	want := map[string]podRef{}
	for _, w := range f.workloads {
		pods, err := f.cs.CoreV1().Pods(w.Namespace).List(ctx, metav1.ListOptions{LabelSelector: w.Selector})
		if err != nil {
			return s, fmt.Errorf("pods of %s %s: %w", w.Kind, w.Name, err)
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
				continue // not running anywhere, or on its way out
			}
			if _, dup := want[string(p.UID)]; !dup {
				want[string(p.UID)] = podRef{w.Name, p.Name, p.Spec.NodeName}
			}
		}
	}
	start := time.Now()
	read := make([]nodeCgroups, len(f.nodes))
	errs := make([]error, len(f.nodes))
	var wg sync.WaitGroup
	for i, n := range f.nodes {
		wg.Go(func() {
			res, err := n.Exec().Run(ctx, command.Cmd{Name: "sh", Args: []string{"-c", cgroupDumpScript}})
			if err != nil {
				errs[i] = fmt.Errorf("read cgroups on node %s: %w", n.Name(), err)
				return
			}
			if read[i], err = parseNodeCgroups(string(res.Stdout)); err != nil {
				errs[i] = fmt.Errorf("node %s: %w", n.Name(), err)
			}
		})
	}
	wg.Wait()
	s.At = start.Add(time.Since(start) / 2)
	if err := errors.Join(errs...); err != nil {
		return s, err
	}
	byNode := map[string]nodeCgroups{}
	for i, n := range f.nodes {
		byNode[n.Name()] = read[i]
		s.Nodes[n.Name()] = read[i].Node
	}
	var problems []string
	for uid, ref := range want {
		nc, ok := byNode[ref.node]
		if !ok {
			problems = append(problems, fmt.Sprintf("pod %s runs on %s, not a node of this lab", ref.pod, ref.node))
			continue
		}
		u, ok := nc.Pods[uid]
		if !ok {
			why := "no pod-level cgroup"
			if r, half := nc.Incomplete[uid]; half {
				why = r
			}
			problems = append(problems, fmt.Sprintf("pod %s (%s) on %s: %s", ref.pod, uid, ref.node, why))
			continue
		}
		s.Pods[uid] = lab.PodUsage{Component: ref.component, Pod: ref.pod, Node: ref.node, Usage: u}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return s, errors.New(strings.Join(problems, "; "))
	}
	return s, nil
}
