package throughput

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/lab/labfake"
	"github.com/cnilab/cnilab/pkg/results"
)

// steadyFootprinter is a lab whose agent uses a quarter of a core and
// whose operator a tenth, with kube-proxy beside them: reading i is
// stamped i seconds after t0, so every window's rates are exact.
type steadyFootprinter struct {
	mu    sync.Mutex
	reads int
	fail  error
}

var footprintComponents = []lab.Component{{Name: "agent", Kind: "DaemonSet", Role: lab.RoleCNI}, {Name: "operator", Kind: "Deployment", Role: lab.RoleCNI}, {Name: "kube-proxy", Kind: "DaemonSet", Role: lab.RoleServiceProxy}}

func (f *steadyFootprinter) Components() []lab.Component { return footprintComponents }

func (f *steadyFootprinter) Footprint(context.Context) (lab.FootprintSample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil && f.reads > 0 {
		return lab.FootprintSample{}, f.fail
	}
	f.reads++
	i := float64(f.reads)
	return lab.FootprintSample{At: time.Unix(1000+int64(f.reads), 0), Components: footprintComponents,
		Pods: map[string]lab.PodUsage{
			"a1": {Component: "agent", Pod: "agent-1", Node: "w1", Usage: lab.Usage{CPUSeconds: 0.25 * i, WorkingSetBytes: 30 << 20}},
			"o1": {Component: "operator", Pod: "operator-1", Node: "w1", Usage: lab.Usage{CPUSeconds: 0.1 * i, WorkingSetBytes: 20 << 20}},
			"p1": {Component: "kube-proxy", Pod: "kube-proxy-1", Node: "w1", Usage: lab.Usage{CPUSeconds: 0.01 * i, WorkingSetBytes: 10 << 20}},
		},
		Nodes: map[string]lab.Usage{"w1": {CPUSeconds: i, WorkingSetBytes: 500 << 20}}}, nil
}

// TestFootprintInWindows: the idle window and a load window of a lab with
// a footprinter record the CNI's pods (agent and operator summed, each
// component apart, kube-proxy beside, never in the sum) and the nodes; a
// lab without one records none; a footprint that fails fails the window.
func TestFootprintInWindows(t *testing.T) {
	out, err := os.ReadFile("../../iperf/testdata/tcp-8streams.json")
	if err != nil {
		t.Fatal(err)
	}
	iperf3 := &command.Fake{Responses: map[string]command.FakeResponse{"iperf3": {Func: func(c command.Cmd) (command.Result, error) {
		if slices.Contains(c.Args, "-s") {
			return command.Result{}, nil
		}
		time.Sleep(1100 * time.Millisecond)
		return command.Result{Stdout: out}, nil
	}}}}
	r := &Runner{Settings: Settings{Seconds: 1, Streams: 8}}
	want := map[string]float64{
		results.AgentCPUCores: 0.35, results.AgentMemBytes: 50 << 20,
		results.NodeCPUCores: 1, results.NodeMemBytes: 500 << 20,
		"pods_cpu_cores:agent": 0.25, "pods_mem_bytes:operator": 20 << 20, "pods_cpu_cores:kube-proxy": 0.01,
	}
	for _, test := range []string{"idle", "dtm"} {
		in := labfake.Lab(iperf3, "")
		in.Footprinter = &steadyFootprinter{}
		m := r.Measure(context.Background(), in, "throughput", test, CrossNode, 1)
		if m.Error != "" {
			t.Fatalf("%s: %s", test, m.Error)
		}
		for k, v := range want {
			if got, ok := m.Metrics[k]; !ok || abs(got-v) > 1e-9 {
				t.Errorf("%s: %s = %v (%v), want %v", test, k, got, ok, v)
			}
		}
		if _, ok := m.Metrics[results.CPUCores]; !ok {
			t.Errorf("%s: the machine's CPU is gone", test)
		}

		bare := labfake.Lab(iperf3, "")
		bm := r.Measure(context.Background(), bare, "throughput", test, CrossNode, 1)
		if _, ok := bm.Metrics[results.AgentCPUCores]; bm.Error != "" || ok {
			t.Errorf("%s without a footprinter: error %q, metrics %v (want no agent figure)", test, bm.Error, bm.Metrics)
		}

		broken := labfake.Lab(iperf3, "")
		broken.Footprinter = &steadyFootprinter{fail: errors.New("pod agent-1 on w1: no pod-level cgroup")}
		if m := r.Measure(context.Background(), broken, "throughput", test, CrossNode, 1); m.Error == "" {
			t.Errorf("%s with a failing footprint: no error (%v)", test, m.Metrics)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
