package netns

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/netplan"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/scenario/policy"
	"github.com/cnilab/cnilab/pkg/windowlock"
)

func TestMain(m *testing.M) {
	probe.MaybeRunFromTest()
	os.Exit(m.Run())
}

// TestPolicyModelsEnforce builds the kube-router and flannel netns labs
// with the policy scenario's peers, applies a deny case and an allow case
// and probes them with cnilab's probe from the peer pods: kube-router's
// model denies and admits exactly what the spec says (its chains and sets
// are in the server's node while the policies exist, and gone with the
// lab); flannel's lets everything through (not enforced).
func TestPolicyModelsEnforce(t *testing.T) {
	p, set := setup(t)
	testenv.Tools(t, "iptables-restore", "iptables-save", "ipset")
	// The probes and the rule loads are not measurements, but they share
	// the CPUs with whoever measures: take the machine's window.
	held, err := windowlock.Lock{Wait: 20 * time.Minute}.Acquire(context.Background(), "netns policy model test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Release() }()

	for _, tc := range []struct {
		lab  string
		want map[string]string // case -> verdict
	}{
		{"kube-router", map[string]string{"default-deny-ingress": policy.Pass, "allow-namespace-selector": policy.Pass}},
		{"flannel", map[string]string{"default-deny-ingress": policy.NotEnforced, "allow-namespace-selector": policy.NotEnforced}},
	} {
		t.Run(tc.lab, func(t *testing.T) {
			ctx := context.Background()
			id := runID(t)
			in, err := p.Up(ctx, lab.Spec{Def: set.Labs[tc.lab], RunID: id, Nodes: 2, Workloads: policy.Workloads()})
			if err != nil {
				t.Fatalf("up: %v", err)
			}
			defer func() {
				if err := p.Down(ctx, in); err != nil {
					t.Errorf("down: %v", err)
				}
				if left, _ := netplan.ListNamespaces(datapathPrefix(id, tc.lab)); len(left) > 0 {
					t.Errorf("namespaces left behind: %v", left)
				}
			}()
			launcher := probe.TestLauncher()
			target, err := policy.NewTarget(in, launcher)
			if err != nil {
				t.Fatal(err)
			}
			stop, err := policy.Listeners(ctx, launcher, target.Server, 3*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			r := &policy.Runner{Settings: policy.Settings{ConvergeTimeout: 10 * time.Second, Poll: 200 * time.Millisecond},
				Prober: policy.PodProber{Timeout: time.Second}, Launcher: launcher}
			for _, name := range []string{"default-deny-ingress", "allow-namespace-selector"} {
				c, err := policy.CaseByName(name)
				if err != nil {
					t.Fatal(err)
				}
				// Read the program while the case's policies hold.
				cr, err := r.RunCase(ctx, target, c)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if cr.Result.Verdict != tc.want[name] {
					t.Errorf("%s: verdict %s, want %s (%s)", name, cr.Result.Verdict, tc.want[name], policy.Describe(cr.Obs))
				}
				for _, o := range cr.Obs {
					want := o.Check.Expect
					if tc.lab == "flannel" {
						want = policy.Allowed
					}
					if o.Got != want {
						t.Errorf("%s: %s: %s, want %s", name, o.Check, o.Got, want)
					}
				}
			}
			reader, ok := in.Policy.(lab.PolicyProgramReader)
			if tc.lab == "flannel" {
				if ok {
					t.Error("flannel's model claims to program policies")
				}
				return
			}
			if !ok {
				t.Fatal("kube-router's model reads no program")
			}
			// With the matrix's policies removed, every pod still has its
			// chain (default policy), and no policy chain or rule set is left.
			counts, src, err := reader.PolicyProgram(ctx, target.Server)
			if err != nil {
				t.Fatal(err)
			}
			// Server node: top-level (3 INPUT + 7 jumps + 3 accepts) and the
			// server's chain (9 rules), KUBE-NWPLCY-DEFAULT's mark.
			if counts["iptables_rules"] != 23 || counts["iptables_chains"] != 5 || counts["ipsets"] != 0 {
				t.Errorf("program without policies: %v (%s), want 23 rules, 5 chains, 0 sets", counts, src)
			}
			// And with one: the default deny's chain and its set appear.
			deny, _ := policy.CaseByName("default-deny-ingress")
			for _, np := range deny.Policies(target.Env) {
				if err := in.Policy.ApplyPolicy(ctx, np); err != nil {
					t.Fatal(err)
				}
			}
			counts, _, err = reader.PolicyProgram(ctx, target.Server)
			if err != nil {
				t.Fatal(err)
			}
			if counts["iptables_chains"] != 6 || counts["ipsets"] != 1 || counts["ipset_members"] != 2 {
				t.Errorf("program with a default deny: %v, want 6 chains, 1 set of 2 members (the bench namespace's client and server)", counts)
			}
			save, err := in.Nodes[1].Exec().Run(ctx, command.Cmd{Name: "iptables-save", Args: []string{"-t", "filter"}})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(save.Stdout), "-A FORWARD -m comment --comment \"kube-router netpol - ") {
				t.Errorf("FORWARD does not jump to KUBE-ROUTER-FORWARD:\n%s", save.Stdout)
			}
		})
	}
}
