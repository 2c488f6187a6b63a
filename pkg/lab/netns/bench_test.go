package netns

import (
	"context"
	"fmt"
	"testing"

	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/schedule"
)

// Targets (issue 1/3): one 2-node lab up ≤ 0.5 s, four in parallel ≤ 1 s,
// teardown ≤ 0.5 s, a 500-pod lab ≤ 10 s. Run with `make bench`.

func BenchmarkUpOneLab(b *testing.B) {
	p, set := setup(b)
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("b%d%s", i, runID(b)[1:])
		in, err := p.Up(context.Background(), lab.Spec{Def: set.Labs["flannel"], RunID: id, Nodes: 2, PodsPerNode: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := p.Down(context.Background(), in); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkUpFourLabsInParallel(b *testing.B) {
	p, set := setup(b)
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("b%d%s", i, runID(b)[1:])
		var specs []lab.Spec
		for _, n := range []string{"flannel", "calico", "kube-router", "cilium"} {
			specs = append(specs, lab.Spec{Def: set.Labs[n], RunID: id, Nodes: 2, PodsPerNode: 2})
		}
		out := schedule.Provision(context.Background(), p, specs)
		b.StopTimer()
		var ins []*lab.Instance
		for _, o := range out {
			if o.Err != nil {
				b.Fatal(o.Err)
			}
			ins = append(ins, o.Instance)
		}
		schedule.Teardown(context.Background(), p, ins)
		b.StartTimer()
	}
}

func BenchmarkDown(b *testing.B) {
	p, set := setup(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := fmt.Sprintf("b%d%s", i, runID(b)[1:])
		in, err := p.Up(context.Background(), lab.Spec{Def: set.Labs["flannel"], RunID: id, Nodes: 2, PodsPerNode: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := p.Down(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUp500Pods(b *testing.B) {
	p, set := setup(b)
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("b%d%s", i, runID(b)[1:])
		// Two nodes × 250 pods: /24 node ranges hold 253 addresses.
		in, err := p.Up(context.Background(), lab.Spec{Def: set.Labs["flannel"], RunID: id, Nodes: 2, PodsPerNode: 250})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if len(in.Pods) != 500 {
			b.Fatalf("%d pods", len(in.Pods))
		}
		if err := p.Down(context.Background(), in); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
