package policy

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/stats"
	"github.com/cnilab/cnilab/pkg/windowlock"
)

// costPort is the connect probes' echo server in the cost part; iperf3
// keeps lab.ServicePort.
const costPort = lab.ServicePort + 1

// CostPolicies are K policies in the server's namespace as a tenant would
// write them: the first two are a default deny and the allow on the
// measured path (bench clients to the server on the iperf3 and probe
// ports); the rest cycle through four shapes, a quarter of them selecting
// the server itself (more rules on the measured path, as when many teams
// publish rules for one shared service), the others other apps of the
// namespace: pod selector with a port, namespace selector, ipBlock with a
// port, matchExpressions with egress.
func CostPolicies(ns string, k int) []*networkingv1.NetworkPolicy {
	if k <= 0 {
		return nil
	}
	mk := func(name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{PolicyLabel: "cost"}}, Spec: spec}
	}
	client := &metav1.LabelSelector{MatchLabels: map[string]string{lab.BenchRoleLabel: "client"}}
	out := []*networkingv1.NetworkPolicy{mk("cnl-cost-deny", networkingv1.NetworkPolicySpec{PolicyTypes: ingress})}
	if k >= 2 {
		out = append(out, mk("cnl-cost-allow", networkingv1.NetworkPolicySpec{PodSelector: serverSelector(), PolicyTypes: ingress,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: client}},
				Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, lab.ServicePort), port(corev1.ProtocolUDP, lab.ServicePort), port(corev1.ProtocolTCP, costPort)}}}}))
	}
	for i := 2; i < k; i++ {
		app := fmt.Sprintf("svc-%d", i)
		sel := metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
		if i%4 == 0 {
			sel = serverSelector()
		}
		var spec networkingv1.NetworkPolicySpec
		switch i % 4 {
		case 0, 1:
			spec = networkingv1.NetworkPolicySpec{PodSelector: sel, PolicyTypes: ingress, Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("frontend-%d", i)}}}},
				Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 8000+i%1000)}}}}
			if i%4 == 1 {
				spec.Ingress[0].From = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": fmt.Sprintf("team-%d", i)}}}}
			}
		case 2:
			cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i / 256 % 256), byte(i % 256)}), 32).String()
			spec = networkingv1.NetworkPolicySpec{PodSelector: sel, PolicyTypes: ingress, Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: cidr}}}, Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 443)}}}}
		case 3:
			spec = networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{app, app + "-canary"}}}},
				PolicyTypes: egress, Egress: []networkingv1.NetworkPolicyEgressRule{{
					To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("db-%d", i)}}}}, Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 5432)}}}}
		}
		out = append(out, mk(fmt.Sprintf("cnl-cost-%04d", i), spec))
	}
	return out
}

// Window measures a throughput test in the lab (throughput.Runner).
type Window interface {
	Measure(ctx context.Context, in *lab.Instance, scenario, test, placement string, repeat int) results.Measurement
}

// CostRunner measures what K policies cost.
type CostRunner struct {
	Runner   *Runner
	Counts   []int
	Connects int
	Window   time.Duration
	// Throughput measures dts and sts through the allowed path.
	Throughput Window
	// Lock keeps the connect window from overlapping any other cnilab
	// window on the machine (the throughput windows take it themselves).
	Lock windowlock.Lock
	// Focus, when set, is entered for the connect window and says what it
	// did (compare's cpufocus: the run's other kind nodes at the lowest CPU
	// weight), as around every other window.
	Focus func(ctx context.Context, in *lab.Instance) (what string, restore func() error, err error)
}

// connectWindow runs the first-packet probe as a measurement window: with
// the machine's window lock held and, where set, the CPU focus entered.
func (c *CostRunner) connectWindow(ctx context.Context, in *lab.Instance, client lab.Pod, cmd command.Cmd, who string, m *results.Measurement) (command.Result, error) {
	held, err := c.Lock.Acquire(ctx, who)
	if err != nil {
		return command.Result{}, err
	}
	defer held.Release()
	if c.Focus != nil {
		what, restore, ferr := c.Focus(ctx, in)
		defer func() {
			if rerr := restore(); ferr == nil && rerr != nil {
				m.Focus = "not focused: " + rerr.Error()
			}
		}()
		m.Focus = what
		if ferr != nil {
			m.Focus = "not focused: " + ferr.Error()
		}
	}
	return client.Exec().Run(ctx, cmd)
}

// MeasureCost runs every K (in order, from no policy) for one repeat.
// Measurements: k<K>-connect (first-packet p50/p99, apply and program
// times, what the agent programmed), k<K>-dts and k<K>-sts.
func (c *CostRunner) MeasureCost(ctx context.Context, in *lab.Instance, repeat int) []results.Measurement {
	t, err := NewTarget(in, c.Runner.Launcher)
	if err != nil {
		m := in.Measure(Scenario, "cost", "", repeat, func(*results.Measurement) error {
			if lab.IsUnavailable(err) {
				return nil
			}
			return err
		})
		if lab.IsUnavailable(err) {
			m.NotReproducible = err.Error()
		}
		return []results.Measurement{m}
	}
	r := c.Runner
	client := t.Sources[SrcPeer]
	pair := []Check{
		{Name: "bench client → server (allowed path)", From: SrcPeer, Proto: "tcp", Port: costPort, Expect: Allowed},
		{Name: "other → server (denied by the default deny)", From: SrcOther, Proto: "tcp", Port: costPort, Expect: Denied},
	}
	counts := slices.Clone(c.Counts)
	slices.Sort(counts)
	var out []results.Measurement
	base := 0.0
	for _, k := range counts {
		if ctx.Err() != nil {
			break
		}
		params := map[string]string{"policies": strconv.Itoa(k)}
		test := fmt.Sprintf("k%d", k)
		var echoStop func()
		m := in.Measure(Scenario, test+"-connect", string(lab.CrossNode), repeat, func(m *results.Measurement) error {
			m.Params = maps.Clone(params)
			if err := t.Policy.DeletePolicies(ctx, t.namespaces(), PolicyLabel); err != nil {
				return err
			}
			stop, err := c.startEcho(ctx, t, 30*time.Minute)
			if err != nil {
				return err
			}
			echoStop = stop
			// From no policy: both sides of the pair pass.
			if obs, _, _, err := r.await(ctx, t, openPair); err != nil || !holds(obs) {
				return fmt.Errorf("without policies the pair does not pass: %v %s", err, Describe(obs))
			}
			ps := CostPolicies(t.Env.ServerNS, k)
			// The pair's own policies go last: once they hold, the agent
			// has worked through the ones before them.
			if len(ps) >= 2 {
				ps = append(ps[2:], ps[0], ps[1])
			}
			start := r.now()
			if err := r.apply(ctx, t, ps); err != nil {
				return err
			}
			created := r.now()
			if k > 0 {
				m.Metrics[ApplyS] = created.Sub(start).Seconds()
				// A single deny (K=1) would deny the allowed side too.
				want := pair
				if k == 1 {
					want = []Check{{From: SrcPeer, Proto: "tcp", Port: costPort, Expect: Denied}}
				}
				limit := r.forPolicies(k)
				obs, _, _, err := limit.await(ctx, t, want)
				if err != nil {
					return err
				}
				switch {
				case holds(obs):
					done := r.now()
					m.Metrics[ProgramS] = done.Sub(start).Seconds()
					m.Metrics[ProgramAfterS] = done.Sub(created).Seconds()
				case allAllowed(obs):
					// Nothing was denied: the CNI does not enforce policy
					// (flannel). What K objects cost the datapath is still
					// worth measuring; there is no programming time.
					m.Flags = append(m.Flags, fmt.Sprintf("not enforced: after %s the denied side still passes (%s)", limit.Settings.ConvergeTimeout, Describe(obs)))
					m.Params["enforced"] = "no"
				default:
					return fmt.Errorf("%d policies not programmed within %s: %s", k, limit.Settings.ConvergeTimeout, Describe(obs))
				}
			}
			if pr, ok := t.Policy.(lab.PolicyProgramReader); ok {
				if counts, src, err := pr.PolicyProgram(ctx, t.Server); err == nil {
					for name, v := range counts {
						m.Metrics[programMetric(name)] = v
					}
					m.Params["programmed"] = src
				} else {
					m.Flags = append(m.Flags, "what the agent programmed is unknown: "+err.Error())
				}
			}
			target := netip.AddrPortFrom(t.Server.IP(), costPort).String()
			res, err := c.connectWindow(ctx, in, client, t.Launcher.Cmd("connect", "-target", target, "-count", strconv.Itoa(c.Connects),
				"-duration", c.Window.String(), "-timeout", "1s", "-mode", "latency"), fmt.Sprintf("%s %s %s-connect r%d", Scenario, in.Name, test, repeat), m)
			if err != nil {
				return err
			}
			cr, err := probe.ParseConnectResult(res.Stdout)
			if err != nil {
				return err
			}
			m.Samples = map[string][]float64{"connect_us": cr.SamplesUS}
			m.Metrics[results.ConnectSamples], m.Metrics[results.ConnectFailed] = float64(cr.OK), float64(cr.Failed)
			if cr.OK == 0 {
				return fmt.Errorf("no connect through the allowed path succeeded: %v", cr.Errors)
			}
			p50, err := stats.Percentile(cr.SamplesUS, 50)
			if err != nil {
				return err
			}
			p99, err := stats.Percentile(cr.SamplesUS, 99)
			if err != nil {
				return err
			}
			m.Metrics[results.FirstPacketP50], m.Metrics[results.FirstPacketP99] = p50, p99
			if k == 0 {
				base = p50
			} else if base > 0 {
				m.Metrics[FirstP50Ratio] = p50 / base
			}
			return nil
		})
		out = append(out, m)
		if echoStop != nil {
			echoStop()
		}
		if m.Error != "" {
			continue
		}
		for _, id := range []string{"dts", "sts"} {
			if id == "sts" && in.Services() == "" {
				continue
			}
			w := c.Throughput.Measure(ctx, in, Scenario, id, string(lab.CrossNode), repeat)
			w.Test, w.Params = test+"-"+id, params
			out = append(out, w)
		}
	}
	if err := t.Policy.DeletePolicies(context.WithoutCancel(ctx), t.namespaces(), PolicyLabel); err != nil {
		out = append(out, in.Measure(Scenario, "cost-cleanup", "", repeat, func(*results.Measurement) error { return err }))
	} else if err := c.settle(ctx, t, slices.Max(append(counts, 0))); err != nil {
		out = append(out, in.Measure(Scenario, "cost-cleanup", "", repeat, func(*results.Measurement) error { return err }))
	}
	return out
}

// settle waits until the lab's agent has taken the K policies out again
// (the allowed/denied pair both open), so that the next lab's windows do
// not run while this agent is still working through a thousand deletions.
// A CNI that enforces nothing is open at once.
func (c *CostRunner) settle(ctx context.Context, t *Target, k int) error {
	if k == 0 || ctx.Err() != nil {
		return nil
	}
	stop, err := c.startEcho(ctx, t, 10*time.Minute)
	if err != nil {
		return err
	}
	defer stop()
	obs, took, _, err := c.Runner.forPolicies(k).await(ctx, t, openPair)
	if err != nil {
		return err
	}
	if !holds(obs) {
		return fmt.Errorf("%s after removing %d policies the pair is not open again: %s", took.Round(time.Millisecond), k, Describe(obs))
	}
	return nil
}

// openPair is the cost's probe pair with no policy in force: both sides
// pass.
var openPair = []Check{
	{From: SrcPeer, Proto: "tcp", Port: costPort, Expect: Allowed},
	{From: SrcOther, Proto: "tcp", Port: costPort, Expect: Allowed},
}

// startEcho starts the connect probes' echo server in the server pod (and
// gives it a second to listen); stop ends it.
func (c *CostRunner) startEcho(ctx context.Context, t *Target, life time.Duration) (stop func(), err error) {
	echo, err := t.Server.Exec().Start(ctx, t.Launcher.Cmd("echo", "-listen", fmt.Sprintf("0.0.0.0:%d", costPort), "-duration", life.String()))
	if err != nil {
		return nil, err
	}
	c.Runner.sleep(time.Second)
	return func() { _, _ = echo.Stop(time.Second) }, nil
}

// forPolicies is the runner with its converge timeout stretched for K
// policies (100 ms each): what an agent needs to add or remove them.
func (r *Runner) forPolicies(k int) *Runner {
	rr := *r
	rr.Settings.ConvergeTimeout += time.Duration(k) * 100 * time.Millisecond
	return &rr
}

// programMetric names what the agent programmed as a results metric.
func programMetric(name string) string {
	switch name {
	case "iptables_rules":
		return results.RuleCount
	case "iptables_chains":
		return results.ChainCount
	case "ipsets":
		return SetCount
	case "ipset_members", "policy_map_entries":
		return results.MapEntryCount
	}
	return name
}

func allAllowed(obs []Observation) bool {
	for _, o := range obs {
		if o.Got != Allowed {
			return false
		}
	}
	return len(obs) > 0
}
