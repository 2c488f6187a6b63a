package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/config"
	"github.com/cnilab/cnilab/pkg/lab"
	"github.com/cnilab/cnilab/pkg/netplan"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/schedule"
)

// Key is a measurement's identity within a run: what was measured, where
// and which repeat, never what came out. A resumed run measures a window
// only when no kept measurement has its key.
type Key struct {
	Provider, Lab, Scenario, Test, Placement string
	Repeat                                   int
	// Params are the window's parameters, "k=v" sorted and joined by ",".
	Params string
	// Proxy tells services-scale's proxies apart: they have no lab.
	Proxy string
}

func (k Key) String() string {
	s := fmt.Sprintf("%s/%s %s %s %s r%d", k.Provider, k.Lab, k.Scenario, k.Test, k.Placement, k.Repeat)
	if k.Proxy != "" {
		s += " " + k.Proxy
	}
	if k.Params != "" {
		s += " {" + k.Params + "}"
	}
	return s
}

// KeyOf is a stored measurement's identity.
func KeyOf(m results.Measurement) Key {
	k := Key{Provider: m.Provider, Lab: m.Lab, Scenario: m.Scenario, Test: m.Test, Placement: m.Placement, Repeat: m.Repeat, Params: joinParams(m.Params)}
	if m.Lab == "" {
		k.Proxy = m.Proxy
	}
	return k
}

// windowKey is the identity of the measurement a window will store.
func windowKey(w schedule.Window) Key {
	return Key{Provider: w.Lab.Provider, Lab: w.Lab.Name, Scenario: w.Scenario, Test: w.Test, Placement: w.Placement, Repeat: w.Repeat}
}

func joinParams(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(p))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return strings.Join(parts, ",")
}

// Resume is what a killed run left in its directory: its results.json
// (run section with the request, labs) and the measurements that
// finished, read back from measurements.jsonl.
type Resume struct {
	Dir string
	// Doc is results.json as the killed run last wrote it.
	Doc *results.Document
	// Logged are the measurements read back from the log, torn line
	// dropped.
	Logged []results.Measurement
	// Torn says which last line was dropped, "" when none was.
	Torn string
}

// Request is the killed run's request (LoadResume refuses a run without).
func (r *Resume) Request() results.Request { return *r.Doc.Run.Request }

// FindRun resolves --resume RUN: a run directory, or a run id whose
// directory (<time>-<id>) is under outDir.
func FindRun(outDir, run string) (string, error) {
	if st, err := os.Stat(run); err == nil && st.IsDir() {
		return run, nil
	}
	if strings.ContainsAny(run, "/*?[") {
		return "", fmt.Errorf("--resume %s: no such run directory", run)
	}
	dirs, err := filepath.Glob(filepath.Join(outDir, "*-"+run))
	if err != nil {
		return "", err
	}
	switch len(dirs) {
	case 0:
		return "", fmt.Errorf("--resume %s: no run directory *-%s under %s (--out)", run, run, outDir)
	case 1:
		return dirs[0], nil
	}
	return "", fmt.Errorf("--resume %s: several run directories match (%s): give the directory", run, strings.Join(dirs, ", "))
}

// LoadResume reads a killed run's directory.
func LoadResume(dir string) (*Resume, error) {
	doc, err := results.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil, err
	}
	if doc.Run.Request == nil {
		return nil, fmt.Errorf("%s: the run did not record its request (made by an older cnilab): it cannot be resumed", dir)
	}
	if doc.Run.Finished != nil {
		return nil, fmt.Errorf("%s: run %s finished at %s: nothing to resume", dir, doc.Run.ID, doc.Run.Finished.Format(time.RFC3339))
	}
	logged, torn, err := results.ReadLog(filepath.Join(dir, results.LogFile))
	if err != nil {
		return nil, err
	}
	return &Resume{Dir: dir, Doc: doc, Logged: logged, Torn: torn}, nil
}

// keepComplete is what a resume keeps of the logged measurements. The
// scenarios whose measurements cannot be planned window by window keep
// only what is certainly complete: services-scale its repeats before the
// last one it reached, policy everything only when a later scenario had
// started. Of two measurements with one identity the first stays. kindOf
// gives a scenario's kind; order is the run's scenario order.
func keepComplete(logged []results.Measurement, order []string, kindOf func(string) string) (kept []results.Measurement, dropped int, notes []string) {
	started := map[string]bool{}
	lastSS := map[string]int{}
	for _, m := range logged {
		started[m.Scenario] = true
		if kindOf(m.Scenario) == "services-scale" {
			lastSS[m.Scenario] = max(lastSS[m.Scenario], m.Repeat)
		}
	}
	finished := func(name string) bool {
		i := slices.Index(order, name)
		if i < 0 {
			return false
		}
		for _, s := range order[i+1:] {
			if started[s] {
				return true
			}
		}
		return false
	}
	seen := map[Key]bool{}
	partial := map[string]int{}
	dups := 0
	for _, m := range logged {
		switch kindOf(m.Scenario) {
		case "services-scale":
			if m.Repeat >= lastSS[m.Scenario] && !finished(m.Scenario) {
				partial[m.Scenario]++
				continue
			}
		case "policy":
			if !finished(m.Scenario) {
				partial[m.Scenario]++
				continue
			}
		}
		k := KeyOf(m)
		if seen[k] {
			dups++
			continue
		}
		seen[k] = true
		kept = append(kept, m)
	}
	for _, name := range slices.Sorted(maps.Keys(partial)) {
		what := "had not finished"
		if r := lastSS[name]; r > 0 {
			what = fmt.Sprintf("repeat %d may be partial", r)
		}
		notes = append(notes, fmt.Sprintf("scenario %s %s: its %d measurements are measured again", name, what, partial[name]))
		dropped += partial[name]
	}
	if dups > 0 {
		notes = append(notes, fmt.Sprintf("%d measurements repeated an identity already kept: dropped", dups))
		dropped += dups
	}
	return kept, dropped, notes
}

// Remover is a provider that can remove whatever exists of one lab from
// its spec alone (a lab a killed run left half built), so it can be built
// again.
type Remover interface {
	Remove(ctx context.Context, s lab.Spec) error
}

// HostAttacher is a provider whose host baseline lives in another lab
// (kind) and is found again there.
type HostAttacher interface {
	AttachHostBaseline(ctx context.Context, s lab.Spec, up []*lab.Instance) (*lab.Instance, error)
}

// resumeLabs brings a resumed run's labs back for one provider: each lab
// still up is attached, each missing one is removed (whatever half of it
// exists) and built again; the order of the outcomes is provision's, so
// the window order replays. attachOnly (the run measured `cnilab up` labs)
// never builds.
func resumeLabs(ctx context.Context, p lab.Provider, specs []lab.Spec, dir string, attachOnly bool, progress io.Writer) (out []schedule.Outcome, reattached, rebuilt []string) {
	at, canAttach := p.(lab.Attacher)
	hb, canHost := p.(hostBaseliner)
	var host *lab.Spec
	var missing []lab.Spec
	for _, s := range specs {
		s.Dir = dir
		if canHost && s.Def.Name == HostLab && s.Def.Kind == nil {
			host = &s
			continue
		}
		start := time.Now()
		var in *lab.Instance
		err := fmt.Errorf("provider %s cannot attach to running labs", p.Name())
		if canAttach {
			in, err = at.Attach(ctx, s)
		}
		if err == nil {
			out = append(out, schedule.Outcome{Spec: s, Instance: in, Took: time.Since(start)})
			reattached = append(reattached, s.Def.Name)
			fmt.Fprintf(progress, "  attached %s (%s): found up\n", s.Def.Name, p.Name())
			continue
		}
		if attachOnly {
			out = append(out, schedule.Outcome{Spec: s, Err: err, Took: time.Since(start)})
			continue
		}
		fmt.Fprintf(progress, "  %s (%s) is not up (%v): building it again\n", s.Def.Name, p.Name(), err)
		if rm, ok := p.(Remover); ok {
			if err := rm.Remove(context.Background(), s); err != nil {
				fmt.Fprintf(progress, "  remove what is left of %s: %v\n", s.Def.Name, err)
			}
		}
		missing = append(missing, s)
	}
	for _, oc := range schedule.Provision(ctx, p, missing) {
		out = append(out, oc)
		rebuilt = append(rebuilt, oc.Spec.Def.Name)
	}
	// provision's order: the spec order, whichever way each lab came back.
	slices.SortStableFunc(out, func(a, b schedule.Outcome) int {
		return slices.IndexFunc(specs, func(s lab.Spec) bool { return s.Def.Name == a.Spec.Def.Name }) -
			slices.IndexFunc(specs, func(s lab.Spec) bool { return s.Def.Name == b.Spec.Def.Name })
	})
	if host == nil {
		return out, reattached, rebuilt
	}
	var up []*lab.Instance
	for _, oc := range out {
		if oc.Err == nil {
			up = append(up, oc.Instance)
		}
	}
	start := time.Now()
	var in *lab.Instance
	err := errors.New("no host baseline to attach to")
	if ha, ok := p.(HostAttacher); ok {
		in, err = ha.AttachHostBaseline(ctx, *host, up)
	}
	if err == nil {
		reattached = append(reattached, host.Def.Name)
	} else if !attachOnly {
		fmt.Fprintf(progress, "  %s (%s) is not up (%v): building it again\n", host.Def.Name, p.Name(), err)
		in, err = hb.HostBaseline(ctx, *host, up)
		rebuilt = append(rebuilt, host.Def.Name)
	}
	return append([]schedule.Outcome{{Spec: *host, Instance: in, Err: err, Took: time.Since(start)}}, out...), reattached, rebuilt
}

// request is what RunAll records of o before anything is built.
func (o *Options) request(providers []string) *results.Request {
	return &results.Request{Providers: providers, Labs: o.Labs, Scenarios: o.Scenarios, Profile: o.Profile, Placements: o.Placements,
		Seconds: o.Seconds, Repeats: o.Repeats, UnderlayMTU: o.UnderlayMTU, PinCPUs: o.PinCPUs, Attached: o.RunID != "",
		LabsDir: o.LabsDir, ScenariosDir: o.ScenariosDir}
}

// FromRequest is the options a resume runs with: the killed run's
// request, over set (loaded from the request's definition folders).
func FromRequest(req results.Request, set *config.Set) Options {
	o := Options{Set: set, Labs: req.Labs, Scenarios: req.Scenarios, Profile: req.Profile, Placements: req.Placements,
		Seconds: req.Seconds, Repeats: req.Repeats, UnderlayMTU: req.UnderlayMTU, PinCPUs: req.PinCPUs,
		LabsDir: req.LabsDir, ScenariosDir: req.ScenariosDir}
	return o
}

// qualify names labs per provider when a run has several.
func qualify(ps []lab.Provider, p lab.Provider, names []string) []string {
	if len(ps) == 1 {
		return names
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + " (" + p.Name() + ")"
	}
	return out
}

// scenarioDone reports whether a resume kept measurements of scenario
// name (for a policy scenario: kept only when it had finished).
func scenarioDone(done map[Key]bool, name string) bool {
	for k := range done {
		if k.Scenario == name {
			return true
		}
	}
	return false
}

// removeNamespaces deletes the network namespaces whose names start with
// prefix (which must be one run's: cnl-<id>-...).
func removeNamespaces(prefix string) error {
	if !strings.HasPrefix(prefix, "cnl-") || strings.Count(prefix, "-") < 2 {
		return fmt.Errorf("refusing to remove namespaces with prefix %q", prefix)
	}
	names, err := netplan.ListNamespaces(prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, netplan.DeleteNamespace(n))
	}
	return errors.Join(errs...)
}

// Provision brings one provider's labs up as a run does (a host baseline
// that the provider carries inside its other labs after them), per-lab
// files in dir; `cnilab up` builds kept labs with it.
func Provision(ctx context.Context, p lab.Provider, specs []lab.Spec, dir string) []schedule.Outcome {
	return provision(ctx, p, specs, dir)
}
