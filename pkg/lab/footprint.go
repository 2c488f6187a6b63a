package lab

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Component roles: whose pods a footprint component counts.
const (
	// RoleCNI is a workload of the CNI itself (its agent DaemonSet, its
	// operator Deployment): what the CNI costs every node.
	RoleCNI = "cni"
	// RoleServiceProxy is kube-proxy where the CNI leaves services to it:
	// shown beside the CNI's own figures, never summed into them.
	RoleServiceProxy = "service-proxy"
)

// Component is one workload whose pods a footprint counts.
type Component struct {
	// Name is the workload's name (kube-flannel-ds, cilium-operator).
	Name string
	// Kind is DaemonSet or Deployment.
	Kind string
	// Role is RoleCNI or RoleServiceProxy.
	Role string
}

// Usage is what one cgroup has used: CPU time since it was created and
// the memory it holds now.
type Usage struct {
	// CPUSeconds is the cumulative CPU time, all modes.
	CPUSeconds float64
	// WorkingSetBytes is usage minus inactive file pages, as the kubelet
	// computes a container's working set.
	WorkingSetBytes float64
}

// PodUsage is one pod's usage, read from its pod-level cgroup.
type PodUsage struct {
	Component string
	Pod       string
	Node      string
	Usage
}

// FootprintSample is one reading of every pod of the lab's components and
// of every node as a whole.
type FootprintSample struct {
	// At is when the reading was taken (the middle of the reads).
	At time.Time
	// Components are the workloads read, in a stable order.
	Components []Component
	// Pods is keyed by pod UID: a restarted pod is a new key.
	Pods map[string]PodUsage
	// Nodes is each node container's own cgroup (everything the node
	// runs: kubelet, containerd and all pods), keyed by node name.
	Nodes map[string]Usage
}

// Footprinter is a lab whose CNI runs its own pods (kind, a cluster): it
// can read their cgroups. Scenarios sample it at the start and end of a
// window; a lab without one (a netns datapath model) has no footprint.
type Footprinter interface {
	// Components are the workloads every reading covers.
	Components() []Component
	// Footprint takes one reading.
	Footprint(ctx context.Context) (FootprintSample, error)
}

// Rate is a component's or a node's use over a window.
type Rate struct {
	// CPUCores is CPU time over elapsed time.
	CPUCores float64
	// WorkingSetBytes is the mean of the two readings.
	WorkingSetBytes float64
	// Pods is how many pods the figure sums (0 for a node).
	Pods int
}

// Footprint is what a lab's components and nodes used over a window.
type Footprint struct {
	Elapsed    time.Duration
	Components []ComponentRate
	// Nodes is the sum over the lab's nodes.
	Nodes Rate
}

// ComponentRate is one component's figures, summed over its pods.
type ComponentRate struct {
	Component
	Rate
}

// CNI sums the components of the CNI itself (RoleCNI).
func (f Footprint) CNI() Rate {
	var r Rate
	for _, c := range f.Components {
		if c.Role == RoleCNI {
			r.CPUCores += c.CPUCores
			r.WorkingSetBytes += c.WorkingSetBytes
			r.Pods += c.Pods
		}
	}
	return r
}

// FootprintBetween turns two readings into rates. Every pod must be in
// both readings (a pod that restarted or appeared mid-window has no
// honest delta), and cumulative CPU must not go backwards; each component
// must have at least one pod.
func FootprintBetween(a, b FootprintSample) (Footprint, error) {
	elapsed := b.At.Sub(a.At)
	if elapsed <= 0 {
		return Footprint{}, fmt.Errorf("footprint readings %v apart: the second must be later", elapsed)
	}
	secs := elapsed.Seconds()
	rate := func(what string, x, y Usage) (Rate, error) {
		d := y.CPUSeconds - x.CPUSeconds
		if d < 0 {
			return Rate{}, fmt.Errorf("%s: cumulative CPU went back from %.6f s to %.6f s", what, x.CPUSeconds, y.CPUSeconds)
		}
		return Rate{CPUCores: d / secs, WorkingSetBytes: (x.WorkingSetBytes + y.WorkingSetBytes) / 2}, nil
	}
	f := Footprint{Elapsed: elapsed}
	byName := map[string]*ComponentRate{}
	for _, c := range b.Components {
		f.Components = append(f.Components, ComponentRate{Component: c})
	}
	for i := range f.Components {
		byName[f.Components[i].Name] = &f.Components[i]
	}
	var changed []string
	for uid, pa := range a.Pods {
		if _, ok := b.Pods[uid]; !ok {
			changed = append(changed, fmt.Sprintf("pod %s (%s) gone", pa.Pod, pa.Component))
		}
	}
	uids := make([]string, 0, len(b.Pods))
	for uid := range b.Pods {
		uids = append(uids, uid)
	}
	sort.Strings(uids)
	for _, uid := range uids {
		pb := b.Pods[uid]
		pa, ok := a.Pods[uid]
		if !ok {
			changed = append(changed, fmt.Sprintf("pod %s (%s) new", pb.Pod, pb.Component))
			continue
		}
		r, err := rate("pod "+pb.Pod, pa.Usage, pb.Usage)
		if err != nil {
			return Footprint{}, err
		}
		c, ok := byName[pb.Component]
		if !ok {
			return Footprint{}, fmt.Errorf("pod %s belongs to %q, which the reading does not list", pb.Pod, pb.Component)
		}
		c.CPUCores += r.CPUCores
		c.WorkingSetBytes += r.WorkingSetBytes
		c.Pods++
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		return Footprint{}, fmt.Errorf("pods changed during the window: %v", changed)
	}
	for _, c := range f.Components {
		if c.Pods == 0 {
			return Footprint{}, fmt.Errorf("%s %s has no pod", c.Kind, c.Name)
		}
	}
	if len(b.Nodes) == 0 {
		return Footprint{}, fmt.Errorf("the reading has no node")
	}
	for name, nb := range b.Nodes {
		na, ok := a.Nodes[name]
		if !ok {
			return Footprint{}, fmt.Errorf("node %s missing from the first reading", name)
		}
		r, err := rate("node "+name, na, nb)
		if err != nil {
			return Footprint{}, err
		}
		f.Nodes.CPUCores += r.CPUCores
		f.Nodes.WorkingSetBytes += r.WorkingSetBytes
	}
	return f, nil
}
