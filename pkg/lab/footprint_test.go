package lab

import (
	"strings"
	"testing"
	"time"
)

func TestFootprintBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	comps := []Component{{Name: "agent", Kind: "DaemonSet", Role: RoleCNI}, {Name: "operator", Kind: "Deployment", Role: RoleCNI}, {Name: "kube-proxy", Kind: "DaemonSet", Role: RoleServiceProxy}}
	sample := func(at time.Duration, pods map[string]PodUsage, nodeCPU float64) FootprintSample {
		return FootprintSample{At: t0.Add(at), Components: comps, Pods: pods, Nodes: map[string]Usage{"n1": {CPUSeconds: nodeCPU, WorkingSetBytes: 1000}}}
	}
	pod := func(comp string, cpu, ws float64) PodUsage {
		return PodUsage{Component: comp, Pod: comp + "-x", Node: "n1", Usage: Usage{CPUSeconds: cpu, WorkingSetBytes: ws}}
	}
	base := map[string]PodUsage{"a1": pod("agent", 10, 100), "a2": pod("agent", 20, 200), "o1": pod("operator", 5, 50), "p1": pod("kube-proxy", 1, 10)}
	later := map[string]PodUsage{"a1": pod("agent", 11, 300), "a2": pod("agent", 21, 200), "o1": pod("operator", 5.5, 50), "p1": pod("kube-proxy", 3, 10)}
	f, err := FootprintBetween(sample(0, base, 100), sample(2*time.Second, later, 104))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Rate{}
	for _, c := range f.Components {
		got[c.Name] = c.Rate
	}
	// agent: 2 s of CPU over 2 s; memory the mean of 300 and 500.
	if got["agent"] != (Rate{CPUCores: 1, WorkingSetBytes: 400, Pods: 2}) || got["operator"] != (Rate{CPUCores: 0.25, WorkingSetBytes: 50, Pods: 1}) {
		t.Errorf("components %+v", got)
	}
	if cni := f.CNI(); cni != (Rate{CPUCores: 1.25, WorkingSetBytes: 450, Pods: 3}) {
		t.Errorf("CNI sum %+v counts kube-proxy or misses a component", cni)
	}
	if f.Nodes.CPUCores != 2 || f.Nodes.WorkingSetBytes != 1000 {
		t.Errorf("nodes %+v", f.Nodes)
	}

	restarted := map[string]PodUsage{"a1": pod("agent", 11, 300), "a3": pod("agent", 0.1, 10), "o1": pod("operator", 5.5, 50), "p1": pod("kube-proxy", 3, 10)}
	backwards := map[string]PodUsage{"a1": pod("agent", 9, 300), "a2": pod("agent", 21, 200), "o1": pod("operator", 5.5, 50), "p1": pod("kube-proxy", 3, 10)}
	noOperator := map[string]PodUsage{"a1": pod("agent", 10, 100), "a2": pod("agent", 20, 200), "p1": pod("kube-proxy", 1, 10)}
	for _, tc := range []struct {
		name string
		a, b FootprintSample
		want string
	}{
		{"pod restarted", sample(0, base, 100), sample(time.Second, restarted, 101), "pods changed during the window"},
		{"CPU went back", sample(0, base, 100), sample(time.Second, backwards, 101), "went back"},
		{"same instant", sample(0, base, 100), sample(0, later, 101), "must be later"},
		{"component without pods", sample(0, noOperator, 100), sample(time.Second, noOperator, 101), "Deployment operator has no pod"},
		{"node CPU went back", sample(0, base, 100), sample(time.Second, later, 99), "node n1"},
	} {
		if _, err := FootprintBetween(tc.a, tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
