package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/results"
)

// Scenario is the scenario's name in results.
const Scenario = "policy"

// NotModelled is what a lab without a PolicyApplier records.
const NotModelled = "policy not modelled"

// Metric names of the scenario: pkg/results holds them with their units.
const (
	CasePass       = results.PolicyCasePass
	ChecksHeld     = results.PolicyChecksHeld
	Checks         = results.PolicyChecks
	ConvergeS      = results.PolicyConvergeS
	UpdateAllowS   = results.PolicyUpdateAllowS
	UpdateDenyS    = results.PolicyUpdateDenyS
	DenyS          = results.PolicyDenyS
	ProbeRoundS    = results.PolicyProbeRoundS
	ApplyS         = results.PolicyApplyS
	ProgramS       = results.PolicyProgramS
	ProgramAfterS  = results.PolicyProgramAfterS
	PassedPct      = results.PolicyCasesPassedPct
	RequiredFailed = results.PolicyRequiredFailed
	FirstP50Ratio  = results.FirstPacketP50RatioK
	SetCount       = results.SetCount
)

// Settings of a run.
type Settings struct {
	Cases           []string
	ConvergeTimeout time.Duration
	// Poll is the pause between probe rounds while waiting for a verdict.
	Poll time.Duration
}

// Prober probes one check's path: from a pod to the server on a protocol
// and port, with the lab's probe (l).
type Prober interface {
	Probe(ctx context.Context, l probe.Launcher, from lab.Pod, to netip.Addr, proto string, port int) (Outcome, error)
}

// PodProber probes with cnilab's probe in the source pod: one TCP
// request/response exchange with the echo server, or one UDP datagram and
// its echo. Anything answered is allowed; a timeout, a refusal or a reset
// is denied (the listeners were checked by the baseline case).
type PodProber struct {
	Timeout time.Duration
}

// Probe implements Prober.
func (p PodProber) Probe(ctx context.Context, l probe.Launcher, from lab.Pod, to netip.Addr, proto string, port int) (Outcome, error) {
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 1500 * time.Millisecond
	}
	target := netip.AddrPortFrom(to, uint16(port)).String()
	sub := "rr"
	if proto == "udp" {
		sub = "udp"
	}
	cctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	out, err := from.Exec().Run(cctx, l.Cmd(sub, "-target", target, "-count", "1", "-duration", (timeout+time.Second).String(), "-timeout", timeout.String()))
	if err != nil {
		return "", fmt.Errorf("%s → %s %s: %w", from.Name(), target, proto, err)
	}
	res, err := probe.ParseConnectResult(out.Stdout)
	if err != nil {
		return "", err
	}
	if res.OK > 0 {
		return Allowed, nil
	}
	return Denied, nil
}

// Target is the lab as the matrix sees it.
type Target struct {
	In      *lab.Instance
	Policy  lab.PolicyApplier
	Server  lab.Pod
	Sources map[string]lab.Pod
	Env     Env
	// Launcher starts the probe in the lab's pods: the lab's own
	// (lab.Instance.Probe: the bench image's cnilab on kind), else the
	// Runner's (this machine's binary, for netns labs).
	Launcher probe.Launcher
}

// NewTarget finds the matrix's pods in a lab, and the launcher its probes
// start with (the lab's own, else fallback); a lab without a
// PolicyApplier gets a lab.Unavailable saying policy is not modelled.
func NewTarget(in *lab.Instance, fallback probe.Launcher) (*Target, error) {
	if in.Policy == nil {
		return nil, &lab.Unavailable{Reason: fmt.Sprintf("%s: %s (%s provider, %s): NetworkPolicy needs the CNI's own agent", NotModelled, in.Name, in.Provider, in.Fidelity)}
	}
	client, server, err := in.Pair(lab.CrossNode)
	if err != nil {
		return nil, err
	}
	t := &Target{In: in, Policy: in.Policy, Server: server, Sources: map[string]lab.Pod{SrcPeer: client}, Launcher: fallback}
	if in.Probe != nil {
		t.Launcher = *in.Probe
	}
	for _, p := range Peers() {
		pd, ok := in.Peers[p.Key()]
		if !ok {
			return nil, fmt.Errorf("lab %s has no peer pod %s (the policy scenario's workloads were not asked for)", in.Name, p.Key())
		}
		t.Sources[p.Name] = pd
	}
	t.Env = Env{ServerNS: in.Policy.BenchNamespace(), ClientIP: t.Sources[SrcClient].IP(), ServerIP: server.IP()}
	return t, nil
}

// namespaces are where the scenario's policies live.
func (t *Target) namespaces() []string {
	return []string{t.Env.ServerNS, ClientNamespace, OtherNamespace}
}

// Clean removes every policy the scenario applied.
func (t *Target) Clean(ctx context.Context) error {
	return t.Policy.DeletePolicies(ctx, t.namespaces(), PolicyLabel)
}

// Listeners starts the matrix's servers in the server pod (TCP echo on
// 5201 and 8080, UDP echo on 5201 and 5302) and returns their stop.
func Listeners(ctx context.Context, l probe.Launcher, server lab.Pod, life time.Duration) (func(), error) {
	var procs []command.Process
	stop := func() {
		for _, p := range procs {
			_, _ = p.Stop(time.Second)
		}
	}
	for _, s := range []struct {
		sub  string
		port int
	}{{"echo", portTCP}, {"echo", portTCPOther}, {"udpecho", portUDP}, {"udpecho", portUDPOther}} {
		p, err := server.Exec().Start(ctx, l.Cmd(s.sub, "-listen", fmt.Sprintf("0.0.0.0:%d", s.port), "-duration", life.String()))
		if err != nil {
			stop()
			return nil, err
		}
		procs = append(procs, p)
	}
	// The listeners print their readiness line to a stream we cannot see
	// before they exit; give them a moment, then the baseline case checks
	// every one of them.
	time.Sleep(time.Second)
	return stop, nil
}

// Runner runs the matrix.
type Runner struct {
	Settings Settings
	Prober   Prober
	// Launcher starts the probe in labs that do not say how
	// (lab.Instance.Probe nil).
	Launcher probe.Launcher
	// Now and Sleep are the clock (tests replace them).
	Now   func() time.Time
	Sleep func(time.Duration)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) sleep(d time.Duration) {
	if r.Sleep != nil {
		r.Sleep(d)
		return
	}
	time.Sleep(d)
}

// probeAll runs every check once.
func (r *Runner) probeAll(ctx context.Context, t *Target, checks []Check) ([]Observation, error) {
	obs := make([]Observation, 0, len(checks))
	for _, c := range checks {
		from, ok := t.Sources[c.From]
		if !ok {
			return nil, fmt.Errorf("check %s: no source %q", c, c.From)
		}
		got, err := r.Prober.Probe(ctx, t.Launcher, from, t.Server.IP(), c.Proto, c.Port)
		if err != nil {
			return nil, err
		}
		obs = append(obs, Observation{Check: c, Got: got})
	}
	return obs, nil
}

func holds(obs []Observation) bool {
	for _, o := range obs {
		if o.Check.Expect != Either && o.Got != o.Check.Expect {
			return false
		}
	}
	return true
}

// await probes checks until they all hold or the converge timeout passes
// (bounded in time and in rounds); it returns the last observations, the
// time until they held (or the timeout) and the longest probe round.
func (r *Runner) await(ctx context.Context, t *Target, checks []Check) (obs []Observation, took, round time.Duration, err error) {
	start := r.now()
	maxRounds := 1000
	for i := 0; i < maxRounds; i++ {
		rs := r.now()
		obs, err = r.probeAll(ctx, t, checks)
		if err != nil {
			return nil, r.now().Sub(start), round, err
		}
		round = max(round, r.now().Sub(rs))
		took = r.now().Sub(start)
		if holds(obs) || took >= r.Settings.ConvergeTimeout || ctx.Err() != nil {
			return obs, took, round, ctx.Err()
		}
		r.sleep(r.Settings.Poll)
	}
	return obs, r.now().Sub(start), round, nil
}

func (r *Runner) apply(ctx context.Context, t *Target, ps []*networkingv1.NetworkPolicy) error {
	for _, p := range ps {
		if err := t.Policy.ApplyPolicy(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// CaseResult is what one case measured.
type CaseResult struct {
	Case    Case
	Obs     []Observation
	Result  Result
	Metrics map[string]float64
}

// RunCase applies a case's policies, probes its checks and removes its
// policies again (waiting until the baseline holds once more, so the next
// case starts clean).
func (r *Runner) RunCase(ctx context.Context, t *Target, c Case) (CaseResult, error) {
	cr := CaseResult{Case: c, Metrics: map[string]float64{}}
	defer func() {
		_ = t.Clean(context.WithoutCancel(ctx))
	}()
	var err error
	switch c.Kind {
	case "static":
		if err := r.apply(ctx, t, c.Policies(t.Env)); err != nil {
			return cr, err
		}
		var took, round time.Duration
		cr.Obs, took, round, err = r.await(ctx, t, c.Checks)
		if err != nil {
			return cr, err
		}
		cr.Metrics[ConvergeS] = took.Seconds()
		cr.Metrics[ProbeRoundS] = round.Seconds()
	case "update":
		cr.Obs, err = r.update(ctx, t, c, cr.Metrics)
		if err != nil {
			return cr, err
		}
	case "established":
		cr.Obs, err = r.established(ctx, t, c, cr.Metrics)
		if err != nil {
			return cr, err
		}
	default:
		return cr, fmt.Errorf("case %s: unknown kind %q", c.Name, c.Kind)
	}
	if cr.Result, err = Evaluate(cr.Obs); err != nil {
		return cr, err
	}
	held := 0
	for _, o := range cr.Obs {
		if o.Check.Expect == Either || o.Got == o.Check.Expect {
			held++
		}
	}
	cr.Metrics[Checks], cr.Metrics[ChecksHeld] = float64(len(cr.Obs)), float64(held)
	cr.Metrics[CasePass] = 0
	if cr.Result.Verdict == Pass {
		cr.Metrics[CasePass] = 1
	}
	// Back to no policy before the next case: wait (bounded) until the
	// client reaches the server again.
	if err := t.Clean(ctx); err != nil {
		return cr, err
	}
	_, _, _, err = r.await(ctx, t, []Check{tcp(SrcClient, portTCP, Allowed), tcp(SrcPeer, portTCP, Allowed)})
	return cr, err
}

// update: deny, then add an allow and time it, then remove the allow and
// time that. Checks[0..2] are the three phases.
func (r *Runner) update(ctx context.Context, t *Target, c Case, m map[string]float64) ([]Observation, error) {
	ps := c.Policies(t.Env)
	if len(ps) != 2 || len(c.Checks) != 3 {
		return nil, fmt.Errorf("case %s: want a deny, an allow and three checks", c.Name)
	}
	deny, allow := ps[0], ps[1]
	var obs []Observation
	phase := func(ch Check) (time.Duration, time.Duration, error) {
		o, took, round, err := r.await(ctx, t, []Check{ch})
		if err != nil {
			return 0, 0, err
		}
		obs = append(obs, o...)
		return took, round, nil
	}
	if err := r.apply(ctx, t, []*networkingv1.NetworkPolicy{deny}); err != nil {
		return nil, err
	}
	if _, _, err := phase(c.Checks[0]); err != nil {
		return nil, err
	}
	if err := r.apply(ctx, t, []*networkingv1.NetworkPolicy{allow}); err != nil {
		return nil, err
	}
	took, round1, err := phase(c.Checks[1])
	if err != nil {
		return nil, err
	}
	m[UpdateAllowS] = took.Seconds()
	if err := t.Policy.DeletePolicy(ctx, allow.Namespace, allow.Name); err != nil {
		return nil, err
	}
	took, round2, err := phase(c.Checks[2])
	if err != nil {
		return nil, err
	}
	m[UpdateDenyS] = took.Seconds()
	m[ProbeRoundS] = max(round1, round2).Seconds()
	return obs, nil
}

// established opens a paced request/response connection from the client,
// applies a default deny while it runs, waits until new connections are
// denied, and then reads whether the open connection kept answering.
func (r *Runner) established(ctx context.Context, t *Target, c Case, m map[string]float64) ([]Observation, error) {
	if len(c.Checks) != 2 {
		return nil, fmt.Errorf("case %s: want a new-connection and an established check", c.Name)
	}
	from := t.Sources[c.Checks[1].From]
	target := netip.AddrPortFrom(t.Server.IP(), uint16(c.Checks[1].Port)).String()
	// The connection must outlive the deny's programming: it runs for the
	// converge timeout plus a margin, a transaction every 200 ms.
	life := r.Settings.ConvergeTimeout + 8*time.Second
	p, err := from.Exec().Start(ctx, t.Launcher.Cmd("rr", "-target", target, "-count", "1000000", "-duration", life.String(),
		"-timeout", "1s", "-interval", "200ms"))
	if err != nil {
		return nil, err
	}
	r.sleep(2 * time.Second)
	if err := r.apply(ctx, t, c.Policies(t.Env)); err != nil {
		_, _ = p.Stop(time.Second)
		return nil, err
	}
	obs, took, round, err := r.await(ctx, t, c.Checks[:1])
	if err != nil {
		_, _ = p.Stop(time.Second)
		return nil, err
	}
	m[DenyS], m[ProbeRoundS] = took.Seconds(), round.Seconds()
	res, err := p.Wait()
	if err != nil {
		return nil, err
	}
	cr, err := probe.ParseConnectResult(res.Stdout)
	if err != nil {
		return nil, err
	}
	kept := Allowed
	if cr.Failed > 0 {
		kept = Denied
	}
	if cr.OK == 0 {
		return nil, errors.New("the connection opened before the deny never answered")
	}
	m[results.EstablishedOK] = float64(cr.OK)
	m[results.EstablishedFailed] = float64(cr.Failed)
	return append(obs, Observation{Check: c.Checks[1], Got: kept}), nil
}

// MeasureMatrix runs the matrix's cases in a lab, one measurement per case.
// A lab without NetworkPolicy gets one measurement saying so.
func (r *Runner) MeasureMatrix(ctx context.Context, in *lab.Instance) []results.Measurement {
	t, err := NewTarget(in, r.Launcher)
	if err != nil {
		m := in.Measure(Scenario, "matrix", "", 0, func(*results.Measurement) error {
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
	var out []results.Measurement
	if err := t.Clean(ctx); err != nil {
		return []results.Measurement{in.Measure(Scenario, "matrix", "", 0, func(*results.Measurement) error { return err })}
	}
	life := time.Duration(len(r.Settings.Cases)) * 3 * (r.Settings.ConvergeTimeout + 30*time.Second)
	stop, err := Listeners(ctx, t.Launcher, t.Server, min(life, time.Hour))
	if err != nil {
		return []results.Measurement{in.Measure(Scenario, "matrix", "", 0, func(*results.Measurement) error { return err })}
	}
	defer stop()
	for _, name := range r.Settings.Cases {
		if ctx.Err() != nil {
			break
		}
		c, err := CaseByName(name)
		m := in.Measure(Scenario, name, string(lab.CrossNode), 1, func(m *results.Measurement) error {
			if err != nil {
				return err
			}
			cr, err := r.RunCase(ctx, t, c)
			m.Params = caseParams(cr)
			for k, v := range cr.Metrics {
				m.Metrics[k] = v
			}
			return err
		})
		out = append(out, m)
	}
	out = append(out, Summary(in, out))
	return out
}

func caseParams(cr CaseResult) map[string]string {
	p := map[string]string{"case": cr.Case.Name, "required": strconv.FormatBool(cr.Case.Required)}
	if cr.Result.Verdict != "" {
		p["verdict"] = cr.Result.Verdict
	}
	if len(cr.Obs) > 0 {
		p["observed"] = Describe(cr.Obs)
	}
	if len(cr.Result.Mismatches) > 0 {
		p["mismatches"] = strings.Join(cr.Result.Mismatches, "; ")
	}
	return p
}

// Summary is the lab's matrix in one measurement: cases passed, required
// cases failed, and the lab's verdict ("enforced", "not enforced",
// "fails required: a, b").
func Summary(in *lab.Instance, cases []results.Measurement) results.Measurement {
	return in.Measure(Scenario, "matrix", string(lab.CrossNode), 1, func(m *results.Measurement) error {
		passed, total, reqFailed, notEnforced, withDeny := 0, 0, []string{}, 0, 0
		for _, c := range cases {
			if c.Error != "" || c.Params["verdict"] == "" {
				continue
			}
			total++
			switch c.Params["verdict"] {
			case Pass:
				passed++
			case NotEnforced:
				notEnforced++
			}
			if c.Params["verdict"] != Pass && c.Params["required"] == "true" {
				reqFailed = append(reqFailed, c.Test)
			}
			if strings.Contains(c.Params["observed"], "(expected denied)") {
				withDeny++
			}
		}
		if total == 0 {
			return errors.New("no case finished")
		}
		verdict := "enforced"
		switch {
		case notEnforced > 0 && notEnforced == withDeny:
			verdict = "not enforced"
		case len(reqFailed) > 0:
			verdict = "fails required: " + strings.Join(reqFailed, ", ")
		}
		m.Params = map[string]string{"verdict": verdict}
		m.Metrics[PassedPct] = 100 * float64(passed) / float64(total)
		m.Metrics[RequiredFailed] = float64(len(reqFailed))
		return nil
	})
}

// Run measures the scenario in every lab: the matrix once per lab, then the
// cost curve once per repeat (labs interleaved per repeat), each
// measurement handed to emit as soon as it ends.
func Run(ctx context.Context, labs []*lab.Instance, r *Runner, c *CostRunner, repeats int, emit func(results.Measurement)) {
	for _, in := range labs {
		if ctx.Err() != nil {
			return
		}
		for _, m := range r.MeasureMatrix(ctx, in) {
			emit(m)
		}
	}
	if c == nil || len(c.Counts) == 0 {
		return
	}
	for rep := 1; rep <= repeats && ctx.Err() == nil; rep++ {
		for _, in := range labs {
			if in.Policy == nil && rep > 1 {
				continue // "not modelled" is said once
			}
			for _, m := range c.MeasureCost(ctx, in, rep) {
				emit(m)
			}
		}
	}
}

// DescribeMeasurement is one progress line.
func DescribeMeasurement(m results.Measurement) string {
	s := fmt.Sprintf("%-12s %-26s r%d", m.Lab, m.Test, m.Repeat)
	switch {
	case m.NotReproducible != "":
		return s + "  " + m.NotReproducible
	case m.Error != "":
		return s + "  error: " + m.Error
	}
	if v := m.Params["verdict"]; v != "" {
		s += "  " + v
	}
	if v := m.Params["mismatches"]; v != "" {
		s += "  (" + v + ")"
	}
	for _, k := range []string{ConvergeS, UpdateAllowS, UpdateDenyS, DenyS, ApplyS, ProgramS} {
		if v, ok := m.Metrics[k]; ok {
			s += fmt.Sprintf("  %s %.2f s", strings.TrimPrefix(k, "policy_"), v)
		}
	}
	if v, ok := m.Metrics[results.FirstPacketP50]; ok {
		s += fmt.Sprintf("  connect p50 %.1f µs p99 %.1f µs", v, m.Metrics[results.FirstPacketP99])
	}
	if v, ok := m.Metrics[results.ThroughputBps]; ok {
		s += fmt.Sprintf("  %.2f Gbit/s", v/1e9)
	}
	return s
}
