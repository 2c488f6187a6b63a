// Package compare is cnilab's main job: provision one lab per CNI in
// parallel, measure every lab with the same scenarios one window at a time,
// summarise, report, and tear everything down whatever happens.
package compare

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/fidelity"
	"github.com/cnilab/cnilab/pkg/htmlreport"
	"github.com/cnilab/cnilab/pkg/iperf"
	"github.com/cnilab/cnilab/pkg/kernelcap"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/prereq"
	"github.com/cnilab/cnilab/pkg/probe"
	"github.com/cnilab/cnilab/pkg/rank"
	"github.com/cnilab/cnilab/pkg/report"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/scenario/latency"
	"github.com/cnilab/cnilab/pkg/scenario/policy"
	"github.com/cnilab/cnilab/pkg/scenario/servicescale"
	"github.com/cnilab/cnilab/pkg/scenario/throughput"
	"github.com/cnilab/cnilab/pkg/schedule"
)

// Options of one comparison.
type Options struct {
	Set       *config.Set
	Labs      []string
	Scenarios []string
	Profile   string
	// OrderSeed shuffles the labs' order per repeat; 0 draws one (the run
	// records it either way).
	OrderSeed uint64
	// Seconds and Repeats override the profile when > 0.
	Seconds     int
	Repeats     int
	Placements  []string
	UnderlayMTU int
	OutDir      string
	Keep        bool
	// PinCPUs pins iperf3 client and server to different CPUs (the
	// command's default; see throughput.Settings.PinCPUs for why).
	PinCPUs bool
	// ProbeLauncher starts the connect probe (default: this binary's
	// hidden `probe` command).
	ProbeLauncher probe.Launcher
	// RunID, when set, measures the labs `cnilab up` left running for that
	// run instead of building new ones; they are left running afterwards.
	RunID string
	// SoloBaseline names a lab to bring up alone (and remove) before all
	// labs are brought up together, so the run records what parallel
	// provisioning costs against one lab alone (Run.Provisioning).
	SoloBaseline string
	// Resume continues a killed run (LoadResume): its id, directory, seed
	// and order, its labs re-attached or rebuilt, its finished
	// measurements kept and not measured again. The other options must be
	// FromRequest's.
	Resume *Resume
	// LabsDir and ScenariosDir are the definition folders Set came from
	// ("" embedded), recorded so a resume loads the same definitions.
	LabsDir, ScenariosDir string
	Progress              io.Writer
}

// ErrPrerequisite marks a missing prerequisite (exit code 3).
var ErrPrerequisite = prereq.ErrMissing

// Validate checks options against the definitions before anything is
// created. Problems are config errors (exit code 2).
func (o *Options) Validate() error {
	var es config.Errors
	for _, l := range o.Labs {
		if _, ok := o.Set.Labs[l]; !ok {
			es = append(es, config.Error{File: "--cni", Msg: fmt.Sprintf("unknown lab %q (known: %s)", l, strings.Join(o.Set.LabNames(), ", "))})
		}
	}
	if len(o.Labs) == 0 {
		es = append(es, config.Error{File: "--cni", Msg: "no labs selected"})
	}
	for _, s := range o.Scenarios {
		sc, ok := o.Set.Scenarios[s]
		if !ok {
			es = append(es, config.Error{File: "--scenario", Msg: fmt.Sprintf("unknown scenario %q (known: %s)", s, strings.Join(o.Set.ScenarioNames(), ", "))})
			continue
		}
		if _, ok := sc.Profiles[o.Profile]; !ok {
			es = append(es, config.Error{File: "--profile", Msg: fmt.Sprintf("scenario %s has no profile %q", s, o.Profile)})
		}
	}
	for _, p := range o.Placements {
		if !slices.Contains(config.Placements, p) {
			es = append(es, config.Error{File: "--placement", Msg: fmt.Sprintf("unknown placement %q", p)})
		}
	}
	if o.SoloBaseline != "" && !slices.Contains(o.Labs, o.SoloBaseline) {
		es = append(es, config.Error{File: "--solo-baseline", Msg: fmt.Sprintf("lab %q is not one of the compared labs (%s)", o.SoloBaseline, strings.Join(o.Labs, ", "))})
	}
	if o.SoloBaseline != "" && o.RunID != "" {
		es = append(es, config.Error{File: "--solo-baseline", Msg: "labs of a `cnilab up` run are already up: nothing to provision alone"})
	}
	if o.UnderlayMTU != 0 && (o.UnderlayMTU < 1280 || o.UnderlayMTU > 9000) {
		es = append(es, config.Error{File: "--underlay-mtu", Msg: fmt.Sprintf("%d: must be 1280..9000", o.UnderlayMTU)})
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

// NewRunID returns a short id; it names the run directory and prefixes the
// run's namespaces (cnl-<id>-...).
func NewRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Prerequisites checks what the run needs installed for provider (netns
// or kind): the checks `cnilab doctor --provider` prints (pkg/prereq).
func (o *Options) Prerequisites(ctx context.Context, provider string) error {
	cs, err := prereq.Checks(ctx, prereq.Real(), prereq.Need{Provider: provider, Set: o.Set, Labs: o.Labs, Scenarios: o.Scenarios})
	if err != nil {
		return err
	}
	return prereq.Err(provider, cs)
}

// iperf3Version asks the lab's client pod which iperf3 it runs.
func iperf3Version(ctx context.Context, in *lab.Instance) (iperf.Version, error) {
	var client lab.Pod
	for _, pp := range in.Pairs {
		client = pp.Client
		break
	}
	if client == nil {
		return iperf.Version{}, errors.New("lab has no client pod")
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := client.Exec().Run(cctx, command.Cmd{Name: "iperf3", Args: []string{"--version"}})
	if err != nil {
		return iperf.Version{}, err
	}
	return iperf.ParseVersion(res.Stdout)
}

// Run does the whole comparison with provider p. The document is returned
// even when some labs or measurements failed; err is non-nil only when the
// run itself could not go on.
func Run(ctx context.Context, o Options, p lab.Provider, caps kernelcap.Set, runner *throughput.Runner) (*results.Document, error) {
	return RunAll(ctx, o, []lab.Provider{p}, caps, runner)
}

// hostBaseliner is a provider that realises the host baseline inside one
// of its labs that are up, rather than as a lab of its own (kind: hostNetwork
// pods in one of the run's clusters).
type hostBaseliner interface {
	HostBaseline(ctx context.Context, s lab.Spec, up []*lab.Instance) (*lab.Instance, error)
}

// upLab is a lab that is up and the provider that owns it.
type upLab struct {
	p  lab.Provider
	in *lab.Instance
}

// RunAll is Run over several providers at once (netns and kind: each
// model beside the real CNI, for the fidelity check). Every selected lab
// is built on every provider, each provider with its own host baseline; a
// lab is its name on its provider everywhere (summaries, reports). The
// providers provision concurrently; the measurement windows of all labs of
// all providers are interleaved and run strictly one at a time.
func RunAll(ctx context.Context, o Options, ps []lab.Provider, caps kernelcap.Set, runner *throughput.Runner) (*results.Document, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, errors.New("no provider")
	}
	if len(ps) > 1 && (o.RunID != "" || o.SoloBaseline != "") {
		return nil, config.Errors{{File: "--provider", Msg: "two providers in one run build their labs fresh: --run and --solo-baseline take one provider"}}
	}
	p := ps[0]
	var names []string
	for _, q := range ps {
		names = append(names, q.Name())
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	id := NewRunID()
	attach := o.RunID != ""
	if attach {
		id = o.RunID
	}
	started := time.Now().UTC()
	dir := filepath.Join(o.OutDir, started.Format("20060102-150405")+"-"+id)
	settings, err := o.settings()
	if err != nil {
		return nil, err
	}
	run := results.Run{ID: id, Provider: strings.Join(names, ","), Profile: o.Profile, Scenarios: o.Scenarios, Started: started,
		Host: results.Host{Kernel: kernelRelease(), CPUs: runtime.NumCPU(), Capabilities: caps.List()}, Settings: settings,
		Request: o.request(names)}
	var store *results.Store
	// done are the identities of the measurements a resume kept.
	done := map[Key]bool{}
	var resumed *results.Resume
	if rs := o.Resume; rs != nil {
		prev := rs.Doc.Run
		if prev.Provider != run.Provider {
			return nil, config.Errors{{File: "--provider", Msg: fmt.Sprintf("run %s ran on %s, not %s", prev.ID, prev.Provider, run.Provider)}}
		}
		id, dir, attach = prev.ID, rs.Dir, prev.Request.Attached
		// The killed run's id, seed and settings; this machine's host.
		run.ID, run.Started, run.Settings, run.Request = prev.ID, prev.Started, prev.Settings, prev.Request
		run.Provisioning, run.Resumes = prev.Provisioning, prev.Resumes
		settings = prev.Settings
		kept, dropped, notes := keepComplete(rs.Logged, o.Scenarios, func(name string) string {
			if sc, ok := o.Set.Scenarios[name]; ok {
				return sc.Kind
			}
			return ""
		})
		if rs.Torn != "" {
			dropped++
			notes = append([]string{rs.Torn}, notes...)
		}
		for _, m := range kept {
			done[KeyOf(m)] = true
		}
		resumed = &results.Resume{At: started, Kept: len(kept), Dropped: dropped, Notes: notes}
		if store, err = results.Reopen(dir, results.Document{Run: run, Measurements: kept}); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "run %s: resuming in %s: %d measurements kept\n", id, dir, len(kept))
		for _, n := range notes {
			fmt.Fprintf(progress, "  note: %s\n", n)
		}
	} else {
		if store, err = results.Create(dir, run); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "run %s: results in %s\n", id, dir)
	}
	defer store.Close()

	specs := make([]lab.Spec, 0, len(o.Labs))
	w := o.workloads()
	for _, name := range o.Labs {
		specs = append(specs, lab.Spec{Def: o.Set.Labs[name], RunID: id, Workloads: w, Nodes: 2, PodsPerNode: 2, UnderlayMTU: o.UnderlayMTU, Dir: dir})
	}
	// Two providers' labs of one name share a run directory: keep their
	// per-lab files apart.
	dirOf := func(q lab.Provider) string {
		if len(ps) == 1 {
			return dir
		}
		return filepath.Join(dir, q.Name())
	}
	var solo *results.SoloUp
	if o.SoloBaseline != "" && !attach {
		if solo, err = provisionAlone(ctx, p, specs, o.SoloBaseline, progress); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	type provOutcome struct {
		p  lab.Provider
		oc schedule.Outcome
	}
	var outcomes []provOutcome
	// resumeNote says per provider/lab how a resume brought it back.
	resumeNote := map[string]string{}
	if o.Resume != nil {
		var reattached, rebuilt []string
		for _, q := range ps {
			oc, ra, rb := resumeLabs(ctx, q, specs, dirOf(q), attach, progress)
			for _, n := range ra {
				resumeNote[q.Name()+"/"+n] = "resume " + started.Format(time.RFC3339) + ": found still up and re-attached"
			}
			for _, n := range rb {
				resumeNote[q.Name()+"/"+n] = "resume " + started.Format(time.RFC3339) + ": was not up; built again"
			}
			for _, c := range oc {
				outcomes = append(outcomes, provOutcome{q, c})
			}
			reattached, rebuilt = append(reattached, qualify(ps, q, ra)...), append(rebuilt, qualify(ps, q, rb)...)
		}
		resumed.Reattached, resumed.Rebuilt = reattached, rebuilt
	} else if attach {
		// Labs of `cnilab up`: attached (a host baseline inside another
		// lab's cluster found there), never built.
		oc, _, _ := resumeLabs(ctx, p, specs, dirOf(p), true, progress)
		for _, c := range oc {
			outcomes = append(outcomes, provOutcome{p, c})
		}
	} else {
		per := make([][]schedule.Outcome, len(ps))
		var wg sync.WaitGroup
		for i, q := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				per[i] = provision(ctx, q, specs, dirOf(q))
			}()
		}
		wg.Wait()
		for i, q := range ps {
			for _, oc := range per[i] {
				outcomes = append(outcomes, provOutcome{q, oc})
			}
		}
	}
	wall := time.Since(t0)
	if !attach && o.Resume == nil {
		run.Provisioning = &results.Provisioning{Labs: len(specs), WallSeconds: wall.Seconds(), Solo: solo}
		if err := store.SetRun(run); err != nil {
			return nil, err
		}
	}
	var up []*lab.Instance
	var owned []upLab
	defer func() {
		if attach {
			return // `cnilab down --run` removes labs that `up` made
		}
		if o.Keep {
			fmt.Fprintf(progress, "keeping %d labs (cnilab down --run %s removes them); per-lab files such as kind kubeconfigs are in %s\n", len(up), id, dir)
			return
		}
		// Tear down even when ctx was cancelled by a signal.
		for _, q := range ps {
			var mine []*lab.Instance
			for _, u := range owned {
				if u.p == q {
					mine = append(mine, u.in)
				}
			}
			errs := schedule.Teardown(context.Background(), q, mine)
			for name, err := range errs {
				fmt.Fprintf(progress, "teardown %s (%s): %v\n", name, q.Name(), err)
			}
		}
	}()
	for _, po := range outcomes {
		p, oc := po.p, po.oc
		def := oc.Spec.Def
		l := results.Lab{Name: def.Name, CNI: def.CNI, Provider: p.Name(), Fidelity: fidelityOf(p, def), UpSeconds: oc.Took.Seconds()}
		if n, ok := resumeNote[p.Name()+"/"+def.Name]; ok {
			l.Notes = append(l.Notes, n)
		}
		switch {
		case oc.Err == nil:
			in := oc.Instance
			up = append(up, in)
			owned = append(owned, upLab{p, in})
			l.Status, l.Fidelity, l.Datapath, l.PodMTU, l.Services = results.StatusOK, in.Fidelity, in.Datapath, in.PodMTU, in.Proxy
			l.Notes = append(l.Notes, in.Notes...)
			l.NoFootprint = in.NoFootprint
			if v, err := iperf3Version(ctx, in); err == nil {
				l.IPerf3 = v.String()
			} else {
				l.Notes = append(l.Notes, "iperf3 version unknown: "+err.Error())
			}
			l.UpSteps = in.UpSteps
			l.Detected = in.Detected
			if in.Footprinter != nil {
				for _, c := range in.Footprinter.Components() {
					l.Footprint = append(l.Footprint, results.Component{Name: c.Name, Kind: c.Kind, Role: c.Role})
				}
			}
			if in.Software != (results.Software{}) {
				sw := in.Software
				l.Software = &sw
			}
			if in.Encap != "" {
				l.Notes = append([]string{"encapsulation " + in.Encap}, l.Notes...)
			}
			fmt.Fprintf(progress, "  up   %-16s %-6s %.2fs  %s\n", def.Name, p.Name(), oc.Took.Seconds(), in.Datapath)
		case lab.IsUnavailable(oc.Err):
			l.Status, l.Fidelity, l.Error = results.StatusUnavailable, results.NotModelled, oc.Err.Error()
			fmt.Fprintf(progress, "  --   %-16s %-6s %s\n", def.Name, p.Name(), oc.Err)
		default:
			l.Status, l.Error = results.StatusFailed, oc.Err.Error()
			fmt.Fprintf(progress, "  FAIL %-16s %-6s %v\n", def.Name, p.Name(), oc.Err)
		}
		if err := store.SetLab(l); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(progress, "%d labs up in %.2fs\n", len(up), wall.Seconds())
	if pr := run.Provisioning; pr != nil && pr.Ratio() > 0 {
		fmt.Fprintf(progress, "provisioning: all %d labs together %.1f s, %s alone %.1f s: ratio %.2f\n", pr.Labs, pr.WallSeconds, pr.Solo.Lab, pr.Solo.UpSeconds, pr.Ratio())
	}

	focus := runFocus(id, up)
	for _, name := range o.Scenarios {
		sc := o.Set.Scenarios[name]
		prof := sc.Profiles[o.Profile]
		placements := o.placements(sc)
		repeats := prof.Repeats
		if o.Repeats > 0 {
			repeats = o.Repeats
		}
		switch sc.Kind {
		case "throughput":
			r := *runner
			r.Settings = throughput.Settings{Seconds: prof.DurationSeconds, Omit: prof.OmitSeconds, Streams: sc.Streams, PinCPUs: o.PinCPUs}
			if o.Seconds > 0 {
				r.Settings.Seconds = o.Seconds
			}
			fmt.Fprintf(progress, "scenario %s: windows of %ds (+%ds omitted)\n", name, r.Settings.Seconds, r.Settings.Omit)
			measureWindows(ctx, withFocus(&r, focus), "dts", up, sc, placements, repeats, settings.OrderSeed, done, store, progress)
		case "latency":
			launcher, err := o.launcher()
			if err != nil {
				return nil, err
			}
			n := prof.Transactions
			if n == 0 {
				n = 2000
			}
			lr := &latency.Runner{Settings: latency.Settings{Transactions: n, Window: time.Duration(prof.DurationSeconds) * time.Second}, Launcher: launcher}
			if o.Seconds > 0 {
				lr.Settings.Window = time.Duration(o.Seconds) * time.Second
			}
			fmt.Fprintf(progress, "scenario %s: windows of ≤%v / ≤%d transactions\n", name, lr.Settings.Window, n)
			measureWindows(ctx, withFocus(lr, focus), "drr", up, sc, placements, repeats, settings.OrderSeed, done, store, progress)
		case "services-scale":
			if err := runServicesScale(ctx, o, sc, id, done, store, progress); err != nil {
				fmt.Fprintf(progress, "scenario %s: %v\n", name, err)
				if err := store.Append(results.Measurement{Scenario: name, Test: servicescale.TestProgram, Provider: p.Name(), Started: time.Now().UTC(), Error: err.Error()}); err != nil {
					return nil, err
				}
			}
		case "policy":
			if scenarioDone(done, name) {
				fmt.Fprintf(progress, "scenario %s: finished before the kill\n", name)
				continue
			}
			launcher, err := o.launcher()
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(progress, "scenario %s: %d cases, K %v, %d repeats\n", name, len(sc.Policy.Cases), sc.Policy.Counts, repeats)
			// Probes start with each lab's own launcher where it has one
			// (the bench image's cnilab on kind; policy.NewTarget), else
			// with this machine's.
			pr := &policy.Runner{Settings: policy.Settings{Cases: sc.Policy.Cases, ConvergeTimeout: time.Duration(sc.Policy.ConvergeTimeoutSeconds) * time.Second, Poll: 500 * time.Millisecond},
				Prober: policy.PodProber{}, Launcher: launcher}
			tp := *runner
			tp.Settings = throughput.Settings{Seconds: prof.DurationSeconds, Omit: prof.OmitSeconds, Streams: 1, PinCPUs: o.PinCPUs}
			cr := &policy.CostRunner{Runner: pr, Counts: sc.Policy.Counts, Connects: sc.Policy.Connects, Window: time.Duration(prof.DurationSeconds) * time.Second,
				Throughput: withFocus(&tp, focus), Focus: focusFunc(focus)}
			policy.Run(ctx, up, pr, cr, repeats, func(m results.Measurement) {
				if err := store.Append(m); err != nil {
					fmt.Fprintf(progress, "store: %v\n", err)
				}
				fmt.Fprintf(progress, "  %s\n", policy.DescribeMeasurement(m))
			})
		default:
			fmt.Fprintf(progress, "scenario %s: kind %s is not run by this provider\n", name, sc.Kind)
		}
	}
	doc := store.Document()
	sums := Summarise(&doc)
	fin := time.Now().UTC()
	run = doc.Run
	run.Finished = &fin
	if resumed != nil {
		resumed.Remeasured = len(doc.Measurements) - resumed.Kept
		run.Resumes = append(run.Resumes, *resumed)
		fmt.Fprintf(progress, "resumed run %s: %d measurements kept, %d measured again or anew\n", id, resumed.Kept, resumed.Remeasured)
	}
	if err := store.Finish(sums, run); err != nil {
		return nil, err
	}
	doc = store.Document()
	if fc := fidelity.Compute(&doc); fc != nil {
		if err := store.SetFidelity(fc); err != nil {
			return nil, err
		}
		doc = store.Document()
	}
	if err := writeReport(filepath.Join(dir, "report.md"), &doc); err != nil {
		return &doc, err
	}
	if err := htmlreport.WriteFile(filepath.Join(dir, "report.html"), &doc); err != nil {
		return &doc, err
	}
	if ctx.Err() != nil {
		return &doc, fmt.Errorf("interrupted: %w (partial results kept in %s)", ctx.Err(), dir)
	}
	return &doc, nil
}

// provisionAlone brings one lab up with nothing else of the run's
// provisioning, records how long it took and removes it again (even when
// ctx was cancelled meanwhile). Its failure is recorded, not fatal: the
// comparison goes on without a ratio.
func provisionAlone(ctx context.Context, p lab.Provider, specs []lab.Spec, name string, progress io.Writer) (*results.SoloUp, error) {
	i := slices.IndexFunc(specs, func(s lab.Spec) bool { return s.Def.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("solo baseline %s is not a lab of the run", name)
	}
	fmt.Fprintf(progress, "provisioning %s alone first (the yardstick for all labs together)\n", name)
	oc := schedule.Provision(ctx, p, specs[i:i+1])[0]
	solo := &results.SoloUp{Lab: name, UpSeconds: oc.Took.Seconds()}
	if oc.Err != nil {
		solo.Error = oc.Err.Error()
		fmt.Fprintf(progress, "  solo %s failed after %.1f s: %v\n", name, oc.Took.Seconds(), oc.Err)
		return solo, nil
	}
	solo.UpSteps = oc.Instance.UpSteps
	fmt.Fprintf(progress, "  solo %s up in %.1f s; removing it\n", name, oc.Took.Seconds())
	if err := p.Down(context.Background(), oc.Instance); err != nil {
		return nil, fmt.Errorf("remove the solo %s lab: %w", name, err)
	}
	return solo, nil
}

// placements are the scenario's placements under the run's profile and
// flags.
func (o Options) placements(sc *config.Scenario) []string {
	placements := sc.Placements
	if prof := sc.Profiles[o.Profile]; len(prof.Placements) > 0 {
		placements = prof.Placements
	}
	if len(o.Placements) > 0 {
		placements = o.Placements
	}
	return placements
}

// Workloads is what the run's scenarios ask every lab to run (a dry run
// shows them before anything exists).
func (o Options) Workloads() lab.Workloads { return o.workloads() }

// workloads is what the run's scenarios ask every lab to run.
func (o Options) workloads() lab.Workloads {
	var w lab.Workloads
	for _, name := range o.Scenarios {
		sc := o.Set.Scenarios[name]
		switch sc.Kind {
		case "throughput":
			w = w.Merge(throughput.Workloads(sc.Tests, o.placements(sc)))
		case "latency":
			w = w.Merge(latency.Workloads(sc.Tests, o.placements(sc)))
		case "policy":
			w = w.Merge(policy.Workloads())
		}
	}
	return w
}

// fidelityOf is what a lab of p claims before it is up: a provider that
// models datapaths says per definition, one that runs the CNI is real.
func fidelityOf(p lab.Provider, def *config.Lab) results.Fidelity {
	if m, ok := p.(interface {
		Fidelity(*config.Lab) results.Fidelity
	}); ok {
		return m.Fidelity(def)
	}
	return results.Real
}

// WindowProgress is a Progress writer that is told when each measurement
// window starts (cli.Progress draws counts and an ETA on a terminal).
type WindowProgress interface {
	Window(scenario string, i, n int, what string)
}

// windowMeasurer is a scenario engine that measures one window in a lab
// (throughput.Runner, latency.Runner).
type windowMeasurer interface {
	Measure(ctx context.Context, in *lab.Instance, scenario, test, placement string, repeat int) results.Measurement
}

// measureWindows runs a scenario's windows over the labs: first one
// discarded warm-up window per lab (the first traffic through a fresh lab
// pays for neighbour resolution and cold caches, which would otherwise land
// in repeat 1), then every window strictly one at a time, repeats
// interleaved across labs, each stored as soon as it ends.
func measureWindows(ctx context.Context, m windowMeasurer, warmup string, up []*lab.Instance, sc *config.Scenario, placements []string, repeats int, seed uint64, done map[Key]bool, store *results.Store, progress io.Writer) {
	// The order is drawn over every lab up, as the killed run drew it; a
	// resume then skips the windows it kept.
	ws := schedule.Order(up, sc.Name, sc.Tests, placements, repeats, seed)
	left := map[*lab.Instance]bool{}
	skipped := 0
	for _, w := range ws {
		if done[windowKey(w)] {
			skipped++
		} else {
			left[w.Lab] = true
		}
	}
	for _, l := range up {
		if ctx.Err() == nil && len(l.Pairs) > 0 && left[l] {
			m.Measure(ctx, l, sc.Name, warmup, placements[0], 0)
		}
	}
	if skipped > 0 {
		fmt.Fprintf(progress, "  %d windows, one at a time (%d kept from before the kill)\n", len(ws), skipped)
	} else {
		fmt.Fprintf(progress, "  %d windows, one at a time\n", len(ws))
	}
	i := 0
	schedule.Serial(ctx, ws, func(ctx context.Context, w schedule.Window) {
		i++
		if w.Test[0] == 's' && w.Lab.Proxy == "" {
			return // the host baseline has no services
		}
		if done[windowKey(w)] {
			return // measured before the kill
		}
		if wp, ok := progress.(WindowProgress); ok {
			wp.Window(sc.Name, i, len(ws), fmt.Sprintf("%s %s %s r%d", w.Lab.Name, w.Test, w.Placement, w.Repeat))
		}
		res := m.Measure(ctx, w.Lab, sc.Name, w.Test, w.Placement, w.Repeat)
		if ctx.Err() != nil && res.Error != "" {
			return // interrupted, not a measurement failure
		}
		if err := store.Append(res); err != nil {
			fmt.Fprintf(progress, "store: %v\n", err)
		}
		fmt.Fprintf(progress, "  [%d/%d] %-5s %s\n", i, len(ws), res.Provider, describe(res))
	})
}

// runServicesScale measures the service proxies themselves in their own
// sealed topology (a client node, server pods and N Services); the CNI labs
// are not involved, since every CNI with kube-proxy shares the same proxy.
func runServicesScale(ctx context.Context, o Options, sc *config.Scenario, id string, done map[Key]bool, store *results.Store, progress io.Writer) error {
	cfg, err := servicescale.FromConfig(sc, o.Profile)
	if err != nil {
		return err
	}
	launcher, err := o.launcher()
	if err != nil {
		return err
	}
	prefix := "cnl-" + id + "-ss-"
	// A killed run leaves its topology behind; this run's id is its own.
	if err := removeNamespaces(prefix); err != nil {
		return err
	}
	var repeatsDone []int
	for k := range done {
		if k.Scenario == sc.Name && !slices.Contains(repeatsDone, k.Repeat) {
			repeatsDone = append(repeatsDone, k.Repeat)
		}
	}
	repeats := sc.Profiles[o.Profile].Repeats
	if o.Repeats > 0 {
		repeats = o.Repeats
	}
	if len(repeatsDone) >= repeats {
		fmt.Fprintf(progress, "scenario %s: finished before the kill\n", sc.Name)
		return nil
	}
	env, cleanup, err := servicescale.Standalone(ctx, command.Exec{}, launcher, prefix, 30*time.Minute)
	if err != nil {
		return err
	}
	defer func() {
		if err := cleanup(); err != nil {
			fmt.Fprintf(progress, "services-scale cleanup: %v\n", err)
		}
	}()
	fmt.Fprintf(progress, "scenario %s: sizes %v, proxies %v, %d repeats\n", sc.Name, cfg.Sizes, cfg.Proxies, repeats)
	var errs []error
	for r := 1; r <= repeats && ctx.Err() == nil; r++ {
		if slices.Contains(repeatsDone, r) {
			continue // measured before the kill
		}
		err := servicescale.Run(ctx, env, cfg, func(m results.Measurement) error {
			m.Repeat = r
			fmt.Fprintf(progress, "  r%d %s\n", r, describe(m))
			return store.Append(m)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("repeat %d: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

func describe(m results.Measurement) string {
	s := fmt.Sprintf("%-14s %-4s %-10s r%d", m.Lab, m.Test, m.Placement, m.Repeat)
	if m.Scenario == servicescale.Scenario {
		s = fmt.Sprintf("%-9s %-12s N=%-6s %s", m.Proxy, m.Test, m.Params["services"], m.Params["placement"])
		if v, ok := m.Metrics[results.FirstPacketP50]; ok {
			s += fmt.Sprintf("  p50 %.1f µs", v)
		}
		if v, ok := m.Metrics[results.ProgramSeconds]; ok {
			s += fmt.Sprintf("  program %.3f s", v)
		}
	}
	if m.Error != "" {
		return s + "  error: " + m.Error
	}
	if m.NotReproducible != "" {
		return s + "  " + m.NotReproducible
	}
	if v, ok := m.Metrics[results.ThroughputBps]; ok {
		s += fmt.Sprintf("  %7.2f Gbit/s", v/1e9)
	}
	if v, ok := m.Metrics[results.CPUCores]; ok {
		s += fmt.Sprintf("  %.2f cores", v)
	}
	if v, ok := m.Metrics[results.LatencyP50]; ok {
		s += fmt.Sprintf("  p50 %.1f µs  p99 %.1f µs", v, m.Metrics[results.LatencyP99])
	}
	return s
}

func writeReport(path string, doc *results.Document) error {
	f, err := results.CreateFile(path)
	if err != nil {
		return err
	}
	if err := report.Markdown(f, doc); err != nil {
		f.Close()
		return err
	}
	if md := servicescale.Markdown(doc.Measurements); strings.TrimSpace(md) != "" && hasScenario(doc, servicescale.Scenario) {
		if _, err := io.WriteString(f, "\n"+md); err != nil {
			f.Close()
			return err
		}
	}
	if err := report.FidelityMarkdown(f, doc); err != nil {
		f.Close()
		return err
	}
	// The run's own ranking and the published claims table close the
	// report: one per provider, never the two mixed.
	split := doc.ByProvider()
	for _, d := range split {
		if len(split) > 1 {
			fmt.Fprintf(f, "\n# Ranking from the %s labs\n\n", d.Run.Provider)
		}
		if err := rank.AppendRunReport(f, d); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// launcher is how probes start: ProbeLauncher, or this binary's hidden
// `probe` command.
func (o *Options) launcher() (probe.Launcher, error) {
	if o.ProbeLauncher.Path != "" {
		return o.ProbeLauncher, nil
	}
	return probe.SelfLauncher()
}

func hasScenario(doc *results.Document, name string) bool {
	for _, m := range doc.Measurements {
		if m.Scenario == name {
			return true
		}
	}
	return false
}

func (o *Options) settings() (results.Settings, error) {
	s := results.Settings{UnderlayMTU: o.UnderlayMTU, Statistic: "median over repeats with its order-statistic interval (exact coverage: 75 % at n=3, 93.8 % at n=5, >= 95 % from n=6); mean with its Student-t 95 % CI; CoV = sd/mean; robust CoV from n=6", OrderSeed: o.OrderSeed}
	for s.OrderSeed == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return s, err
		}
		s.OrderSeed = binary.LittleEndian.Uint64(b[:])
	}
	if s.UnderlayMTU == 0 {
		s.UnderlayMTU = 1500
	}
	// The run's windows are the throughput scenario's when it runs, else
	// the first scenario's that has the profile (a policy- or latency-only
	// run reported "0 s per window, 0 repeats").
	filled := false
	for _, name := range o.Scenarios {
		sc := o.Set.Scenarios[name]
		p, ok := sc.Profiles[o.Profile]
		if !ok || (filled && sc.Kind != "throughput") {
			continue
		}
		filled = true
		s.DurationSeconds, s.OmitSeconds, s.Repeats = float64(p.DurationSeconds), float64(p.OmitSeconds), p.Repeats
		if o.Seconds > 0 {
			s.DurationSeconds = float64(o.Seconds)
		}
		if o.Repeats > 0 {
			s.Repeats = o.Repeats
		}
	}
	return s, nil
}

func kernelRelease() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(data))
}

// provision brings one provider's labs up. A host lab that the provider
// realises inside its other labs (kind) waits for them; the others come
// up in parallel.
func provision(ctx context.Context, p lab.Provider, specs []lab.Spec, dir string) []schedule.Outcome {
	var own []lab.Spec
	var host *lab.Spec
	hb, canHost := p.(hostBaseliner)
	for _, s := range specs {
		s.Dir = dir
		if canHost && s.Def.Name == HostLab && s.Def.Kind == nil {
			host = &s
			continue
		}
		own = append(own, s)
	}
	out := schedule.Provision(ctx, p, own)
	if host == nil {
		return out
	}
	var up []*lab.Instance
	for _, oc := range out {
		if oc.Err == nil {
			up = append(up, oc.Instance)
		}
	}
	start := time.Now()
	in, err := hb.HostBaseline(ctx, *host, up)
	return append([]schedule.Outcome{{Spec: *host, Instance: in, Err: err, Took: time.Since(start)}}, out...)
}
