package kind

import (
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/scenario/policy"
)

// TestKindPolicyEndToEnd brings up kube-router with the policy scenario's
// workloads (peers in two labelled namespaces) and runs one allow case
// (baseline: every source reaches every listener, TCP and UDP) and one
// deny case (default deny ingress) of the matrix through the real CNI:
// both must pass, and the deny must hold within the converge timeout. Then
// it reads what kube-router programmed.
func TestKindPolicyEndToEnd(t *testing.T) {
	requireKind(t)
	e := upE2E(t, "kube-router", "pol", policy.Workloads())
	in, ctx := e.in, e.ctx
	target, err := policy.NewTarget(in, *in.Probe)
	if err != nil {
		t.Fatal(err)
	}
	r := &policy.Runner{Settings: policy.Settings{ConvergeTimeout: 30 * time.Second, Poll: 500 * time.Millisecond},
		Prober: policy.PodProber{}, Launcher: *in.Probe}
	stop, err := policy.Listeners(ctx, *in.Probe, target.Server, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, name := range []string{"baseline", "default-deny-ingress"} {
		c, err := policy.CaseByName(name)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := r.RunCase(ctx, target, c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %s in %.1f s: %s", name, cr.Result.Verdict, cr.Metrics[policy.ConvergeS], policy.Describe(cr.Obs))
		if cr.Result.Verdict != policy.Pass {
			t.Errorf("%s: %s, mismatches %v", name, cr.Result.Verdict, cr.Result.Mismatches)
		}
	}
	if err := target.Policy.ApplyPolicy(ctx, policy.CostPolicies(target.Env.ServerNS, 10)[0]); err != nil {
		t.Fatal(err)
	}
	counts, src, err := in.Policy.(*policyLab).PolicyProgram(ctx, target.Server)
	t.Logf("kube-router programmed (%s): %v, %v", src, counts, err)
	if err != nil || counts["iptables_rules"] == 0 {
		t.Errorf("kube-router's policy rules not read: %v %v", counts, err)
	}
	_ = target.Clean(ctx)
	e.down(t)
}
