package rank

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/pkg/dataset"
	"github.com/cnilab/cnilab/pkg/facts"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/pkg/stats"
)

// Value is one figure with where it came from, so every printed number
// names its provider and fidelity (or the published source).
type Value struct {
	V      float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	Source string  `json:"source"`
	// Lo and Hi bound the 95% CI where the source has repeats (a cnilab
	// run); both zero when it has none.
	Lo float64 `json:"ci95_low,omitempty"`
	Hi float64 `json:"ci95_high,omitempty"`
	// Level is the interval's actual coverage (Summary.CILevel; 0 when
	// the source does not say).
	Level float64 `json:"ci_level,omitempty"`
	// ModelError is the netns model's measured error against the real
	// CNI for this figure, where a fidelity run measured one.
	ModelError *ModelError `json:"model_error,omitempty"`
}

// RelHalfWidth is half the CI's width relative to the value: the
// run-to-run noise of the figure (0 when unknown).
func (v Value) RelHalfWidth() float64 {
	if v.V == 0 || v.Hi <= v.Lo {
		return 0
	}
	return (v.Hi - v.Lo) / 2 / math.Abs(v.V)
}

// Candidate is one CNI configuration that can be ranked: a lab of a
// results run or a variant of a published dataset.
type Candidate struct {
	Name       string
	CNI        string
	Encryption string // none, wireguard, ipsec, ...
	Services   string // service proxy, where known
	Options    string
	Facts      facts.Capabilities
	// PolicyObserved is a NetworkPolicy test result from the data itself.
	PolicyObserved *dataset.PolicyResult
	metrics        map[string]Value // test/metric
	// leftOut says why a figure the data has is kept out (test/metric):
	// above its host baseline beyond both intervals.
	leftOut     map[string]string
	scale       []ScalePoint
	scaleFailed []ScaleFailure
}

// Metric returns a figure of the candidate.
func (c *Candidate) Metric(test, metric string) (Value, bool) {
	v, ok := c.metrics[test+"/"+metric]
	return v, ok
}

// SetMetric stores a figure (tests build inputs with it).
func (c *Candidate) SetMetric(test, metric string, v Value) {
	if c.metrics == nil {
		c.metrics = map[string]Value{}
	}
	c.metrics[test+"/"+metric] = v
}

// ScalePoint is one services-scale figure: a metric at N services on one
// service proxy.
type ScalePoint struct {
	Lab      string
	Proxy    string
	Services int
	Metric   string
	Value    Value
	CI95Low  float64
	CI95High float64
}

// ScaleFailure is a services-scale window that failed: the proxy tried N
// services and produced no figure there.
type ScaleFailure struct {
	Lab      string
	Proxy    string
	Services int
	// Test is the step that failed (program, first-packet, connect-rate).
	Test   string
	Reason string
}

// Input is everything a ranking reads.
type Input struct {
	// Name is the dataset name or the run id.
	Name string
	// Kind is "published" or "results".
	Kind       string
	Title      string
	Candidates []*Candidate
	// Scale holds every services-scale figure (claims C8–C10 read them).
	Scale []ScalePoint
	// ScaleFailures are the services-scale windows that failed.
	ScaleFailures []ScaleFailure
	Notes         []string
}

// HasCNI reports whether any candidate belongs to the CNI.
func (in *Input) HasCNI(cni string) bool {
	for _, c := range in.Candidates {
		if c.CNI == cni {
			return true
		}
	}
	return false
}

// FromDataset builds an input from a published dataset. The baseline (bare
// metal) is not a candidate.
func FromDataset(d *dataset.Dataset, factsByCNI map[string]facts.Capabilities) *Input {
	in := &Input{Name: d.Name, Kind: "published", Title: d.Title, Notes: d.Notes}
	for i := range d.Variants {
		v := &d.Variants[i]
		if v.Name == d.Baseline || v.CNI == "host" {
			continue
		}
		c := &Candidate{Name: v.Name, CNI: v.CNI, Encryption: v.Encryption, Services: v.Services,
			Options: v.Options, Facts: factsByCNI[v.CNI], PolicyObserved: v.NetworkPolicy}
		for _, t := range v.Tests {
			for metric, val := range t.Metrics() {
				unit := results.Unit(metric)
				if metric == dataset.MemOverheadBytes {
					unit = "bytes"
				}
				c.SetMetric(t.Test, metric, Value{V: val, Unit: unit, Source: aggregationLabel(d, metric)})
			}
		}
		in.Candidates = append(in.Candidates, c)
	}
	return in
}

// aggregationLabel is the attribution printed next to a published figure.
// The dataset's attribution names its headline rule (2024: max of 3 runs
// for bandwidth); other metrics name their own rule when it differs.
func aggregationLabel(d *dataset.Dataset, metric string) string {
	rule, ok := d.Aggregation[metric]
	if !ok || metric == "throughput_bps" {
		return d.Attribution
	}
	return fmt.Sprintf("published: %s, %s", d.Name, rule)
}

// oneProvider narrows a run that measured a CNI on several providers
// (netns models beside the real CNIs on kind) to one, so a lab's figures
// are never a mix of its model and the real CNI: the real provider's when
// there is one (the better evidence; the models' are weighed against it in
// the fidelity section), else the first. note says which, "" when the
// document has one provider.
func oneProvider(doc *results.Document) (*results.Document, string) {
	seen := map[string]string{}
	twice := false
	for _, l := range doc.Labs {
		if p, ok := seen[l.Name]; ok && p != l.Provider {
			twice = true
		}
		seen[l.Name] = l.Provider
	}
	if !twice {
		return doc, ""
	}
	split := doc.ByProvider()
	keep := split[0]
	for _, d := range split {
		if d.Run.Provider == "kind" || d.Run.Provider == "cluster" {
			keep = d
		}
	}
	var others []string
	for _, d := range split {
		if d == keep {
			continue
		}
		others = append(others, d.Run.Provider)
		// services-scale measures the proxies in a topology of its own,
		// not a provider's labs: its figures stay.
		for _, s := range d.Summaries {
			if s.Scenario == "services-scale" {
				keep.Summaries = append(keep.Summaries, s)
			}
		}
	}
	// The run's own provider list stays, so the title and the model-error
	// rule (a run that is not the model's) still see what was measured.
	keep.Run.Provider = doc.Run.Provider
	return keep, fmt.Sprintf("ranked from the %s provider's figures (this run also measured %s; the models are weighed against the real CNIs in its fidelity section)", keep.Labs[0].Provider, strings.Join(others, ", "))
}

// FromResults builds an input from a cnilab results document: one
// candidate per lab that finished (the host baseline is not a candidate),
// figures from the summaries' medians, services-scale figures kept apart.
func FromResults(doc *results.Document, factsByCNI map[string]facts.Capabilities) *Input {
	in := &Input{Name: doc.Run.ID, Kind: "results", Title: fmt.Sprintf("cnilab run %s (%s provider, kernel %s)", doc.Run.ID, doc.Run.Provider, doc.Run.Host.Kernel)}
	if d, note := oneProvider(doc); note != "" {
		doc = d
		in.Notes = append(in.Notes, note)
	}
	byLab := map[string]*Candidate{}
	hostLab := ""
	for _, l := range doc.Labs {
		if l.CNI == "host" {
			hostLab = l.Name
			continue
		}
		if l.Status != results.StatusOK {
			reason := l.Error
			if reason == "" {
				reason = "no reason recorded"
			}
			in.Notes = append(in.Notes, fmt.Sprintf("lab %s (%s) not ranked: %s: %s", l.Name, l.CNI, l.Status, reason))
			continue
		}
		c := &Candidate{Name: l.Name, CNI: l.CNI, Encryption: "none", Services: l.Services, Options: l.Datapath, Facts: factsByCNI[l.CNI]}
		if servicesBackend(l.Services) == "iptables" {
			in.Notes = append(in.Notes, fmt.Sprintf("lab %s records its service proxy as %q without the backend (%s or %s): no services-scale figures reach it", l.Name, l.Services, IPTablesNFT, IPTablesLegacy))
		}
		byLab[l.Name] = c
		in.Candidates = append(in.Candidates, c)
	}
	applyMeasuredPolicy(in, doc, byLab)
	hostMem := map[string]float64{}
	idleNoted := false
	measured := agentFootprints(doc)
	var measuredLabs []string
	for _, s := range doc.Summaries {
		src := fmt.Sprintf("%s, %s, median of %d", s.Provider, s.Fidelity, s.N)
		v := Value{V: s.Median, Unit: s.Unit, Source: src, Lo: s.CI95Low, Hi: s.CI95High, Level: s.CILevel}
		if v.Unit == "" {
			v.Unit = results.Unit(s.Metric)
		}
		if fp, ok := measured[s.Lab]; ok && s.Test == "idle" && (s.Metric == results.CPUCores || s.Metric == results.MemUsedBytes) && s.Placement == fp.placement {
			// Where the CNI's own pods were measured, idle CPU and memory
			// are theirs: the machine's figures hold every lab of the run
			// (and whatever else the host runs).
			continue
		}
		if n, ok := s.Params["services"]; ok {
			services, err := strconv.Atoi(n)
			if err != nil {
				in.Notes = append(in.Notes, fmt.Sprintf("summary %s/%s/%s: services=%q is not a count; ignored", s.Lab, s.Test, s.Metric, n))
				continue
			}
			proxy := s.Params["proxy"]
			if proxy == "" {
				proxy = s.Proxy
			}
			proxy = scaleBackend(proxy, s.Params)
			in.Scale = append(in.Scale, ScalePoint{Lab: s.Lab, Proxy: proxy, Services: services, Metric: s.Metric, Value: v, CI95Low: s.CI95Low, CI95High: s.CI95High})
			continue
		}
		if s.Placement != "" && s.Placement != "cross-node" {
			continue // rankings compare the cross-node figures, as the published benchmarks did
		}
		if l, ok := doc.LabByName(s.Lab); ok && s.Test == "idle" && l.NoFootprint != "" {
			// The lab says its idle figures are not the CNI's (a datapath
			// model runs no agent): they must not rank anyone.
			if !idleNoted {
				in.Notes = append(in.Notes, "idle CPU and memory left out: "+l.NoFootprint)
				idleNoted = true
			}
			continue
		}
		if s.AboveHost != nil {
			// A datapath cannot beat the path it is built on: the figure
			// is an artefact (placement, noise) until explained, and no
			// place may rest on it.
			if c, ok := byLab[s.Lab]; ok {
				why := "above its host baseline beyond both intervals — see report"
				if c.leftOut == nil {
					c.leftOut = map[string]string{}
				}
				c.leftOut[s.Test+"/"+s.Metric] = why
				in.Notes = append(in.Notes, fmt.Sprintf("lab %s: %s %s left out: %s (%s vs host %s)", s.Lab, s.Test, s.Metric, why,
					Format(s.Metric, s.Median), Format(s.Metric, s.AboveHost.HostMedian)))
			}
			continue
		}
		if s.Lab == hostLab && s.Metric == results.MemUsedBytes {
			hostMem[s.Test] = s.Median
		}
		if c, ok := byLab[s.Lab]; ok {
			c.SetMetric(s.Test, s.Metric, v)
		}
	}
	for _, l := range doc.Labs {
		fp, ok := measured[l.Name]
		c, ranked := byLab[l.Name]
		if !ok || !ranked {
			continue
		}
		measuredLabs = append(measuredLabs, l.Name)
		c.SetMetric("idle", results.CPUCores, fp.cpu)
		c.SetMetric("idle", results.MemUsedBytes, fp.mem)
	}
	if len(measuredLabs) > 0 {
		in.Notes = append(in.Notes, fmt.Sprintf("idle CPU and memory of %s are the CNI's own pods (agent_cpu_cores, agent_mem_bytes: their kubepods cgroups, working set as the kubelet counts it), not the machine's", strings.Join(measuredLabs, ", ")))
	}
	// Memory overhead against the host baseline of the same run, as the
	// 2024 benchmark computed it against bare metal.
	for _, c := range in.Candidates {
		for test, base := range hostMem {
			if m, ok := c.Metric(test, results.MemUsedBytes); ok {
				c.SetMetric(test, dataset.MemOverheadBytes, Value{V: m.V - base, Unit: "bytes", Source: m.Source + " minus the host baseline"})
			}
		}
	}
	for _, m := range doc.Measurements {
		if m.Scenario != "services-scale" || m.Error == "" {
			continue
		}
		n, err := strconv.Atoi(m.Params["services"])
		if err != nil {
			continue
		}
		in.ScaleFailures = append(in.ScaleFailures, ScaleFailure{Lab: m.Lab, Proxy: scaleBackend(m.Proxy, m.Params), Services: n, Test: m.Test, Reason: m.Error})
	}
	for _, f := range in.ScaleFailures {
		if c, ok := byLab[f.Lab]; ok {
			c.scaleFailed = append(c.scaleFailed, f)
			continue
		}
		for _, c := range in.Candidates {
			if hasBackend(c.Services) && servicesBackend(c.Services) == f.Proxy {
				c.scaleFailed = append(c.scaleFailed, f)
			}
		}
	}
	for _, p := range in.Scale {
		if c, ok := byLab[p.Lab]; ok {
			c.scale = append(c.scale, p)
			continue
		}
		// services-scale measures the proxies on a topology of its own (not
		// a CNI lab): each CNI lab takes the figures of the proxy it runs.
		for _, c := range in.Candidates {
			if hasBackend(c.Services) && servicesBackend(c.Services) == p.Proxy {
				q := p
				q.Value.Source += ", " + p.Proxy + " measured by services-scale"
				c.scale = append(c.scale, q)
			}
		}
	}
	sort.SliceStable(in.Scale, func(i, j int) bool {
		a, b := in.Scale[i], in.Scale[j]
		if a.Proxy != b.Proxy {
			return a.Proxy < b.Proxy
		}
		if a.Metric != b.Metric {
			return a.Metric < b.Metric
		}
		return a.Services < b.Services
	})
	applyModelError(in, doc)
	return in
}

// agentFootprint is a lab's measured idle footprint, as rank inputs.
type agentFootprint struct {
	placement string
	cpu, mem  Value
}

// agentFootprints finds the labs whose idle windows measured the CNI's own
// pods (agent_cpu_cores and agent_mem_bytes on idle), preferring the
// cross-node windows. A lab that says it has no footprint has none.
func agentFootprints(doc *results.Document) map[string]agentFootprint {
	type key struct{ lab, placement string }
	found := map[key]*agentFootprint{}
	for _, s := range doc.Summaries {
		if s.Test != "idle" || (s.Metric != results.AgentCPUCores && s.Metric != results.AgentMemBytes) {
			continue
		}
		if l, ok := doc.LabByName(s.Lab); !ok || l.NoFootprint != "" {
			continue
		}
		k := key{s.Lab, s.Placement}
		if found[k] == nil {
			found[k] = &agentFootprint{placement: s.Placement}
		}
		v := Value{V: s.Median, Unit: results.Unit(s.Metric), Lo: s.CI95Low, Hi: s.CI95High,
			Source: fmt.Sprintf("%s, %s, median of %d; %s", s.Provider, s.Fidelity, s.N, componentsOf(doc, s.Lab))}
		if s.Metric == results.AgentCPUCores {
			found[k].cpu = v
		} else {
			found[k].mem = v
		}
	}
	out := map[string]agentFootprint{}
	for k, fp := range found {
		if fp.cpu.Unit == "" || fp.mem.Unit == "" {
			continue // half a footprint is none
		}
		if prev, ok := out[k.lab]; ok && prev.placement == "cross-node" {
			continue
		}
		out[k.lab] = *fp
	}
	return out
}

// componentsOf names the workloads a lab's agent figures sum.
func componentsOf(doc *results.Document, lab string) string {
	l, _ := doc.LabByName(lab)
	var names []string
	for _, c := range l.Footprint {
		if c.Role == "cni" {
			names = append(names, c.Kind+" "+c.Name)
		}
	}
	if len(names) == 0 {
		return "the CNI's own pods"
	}
	return "the CNI's own pods: " + strings.Join(names, ", ")
}

// scaleFailureApplies says whether a failed services-scale window takes
// out a metric: a failed programming step ends the proxy's run at that
// size (every metric), a failed probe only the figures it would have made.
func scaleFailureApplies(f ScaleFailure, metric string) bool {
	switch f.Test {
	case "first-packet":
		return strings.HasPrefix(metric, "first_packet_")
	case "connect-rate":
		return metric == results.ConnectRate
	}
	return true
}

// scaleSizes is every service count the candidate's proxy reached for a
// metric: measured there, or tried there and failed.
func (c *Candidate) scaleSizes(metric string) map[int]bool {
	out := map[int]bool{}
	for _, p := range c.scale {
		if p.Metric == metric {
			out[p.Services] = true
		}
	}
	for _, f := range c.scaleFailed {
		if scaleFailureApplies(f, metric) {
			out[f.Services] = true
		}
	}
	return out
}

// scaleFailure returns why the candidate's proxy has no figure for a metric
// at n services, when it tried and failed there.
func (c *Candidate) scaleFailure(metric string, n int) (string, bool) {
	for _, f := range c.scaleFailed {
		if f.Services == n && scaleFailureApplies(f, metric) {
			return f.Reason, true
		}
	}
	return "", false
}

// scaleAt returns the candidate's services-scale figure for a metric at n
// services. Several points can share a size (the real service placed
// first, middle and last); their median is the figure, and its interval
// is the median point's (the mean of the two middle ones' ends for an even
// count).
func (c *Candidate) scaleAt(metric string, n int) (ScalePoint, bool) {
	var at []ScalePoint
	for _, p := range c.scale {
		if p.Metric == metric && p.Services == n {
			at = append(at, p)
		}
	}
	if len(at) == 0 {
		return ScalePoint{}, false
	}
	sort.SliceStable(at, func(i, j int) bool { return at[i].Value.V < at[j].Value.V })
	pt := at[len(at)/2]
	vals := make([]float64, len(at))
	for i, p := range at {
		vals[i] = p.Value.V
	}
	pt.Value.V = stats.Median(vals)
	if len(at)%2 == 0 {
		a, b := at[len(at)/2-1].Value, at[len(at)/2].Value
		pt.Value.Lo, pt.Value.Hi = (a.Lo+b.Lo)/2, (a.Hi+b.Hi)/2
	}
	if len(at) > 1 {
		pt.Value.Source += fmt.Sprintf(", median of %d placements", len(at))
	}
	return pt, true
}

// scaleMetric returns the candidate's figure at the largest size it
// measured ("max") or at the size named; claims and tests read it.
func (c *Candidate) scaleMetric(metric, services string) (ScalePoint, bool) {
	want := -1
	for _, p := range c.scale {
		if p.Metric != metric {
			continue
		}
		if services == "max" {
			want = max(want, p.Services)
		} else if strconv.Itoa(p.Services) == services {
			want = p.Services
		}
	}
	if want < 0 {
		return ScalePoint{}, false
	}
	return c.scaleAt(metric, want)
}

// Proxy backend names (the identity a services-scale figure carries).
const (
	IPTablesLegacy = "iptables-legacy"
	IPTablesNFT    = "iptables-nft"
)

// isIPTables says whether a proxy name is one of the iptables backends
// (or an older result's bare "iptables").
func isIPTables(p string) bool { return p == "iptables" || strings.HasPrefix(p, "iptables-") }

// hasBackend says whether a lab's service proxy names a backend that
// services-scale figures can belong to: not empty, and not a bare
// "iptables", which may be either iptables backend (older results measured
// services-scale on iptables-legacy while the labs ran iptables-nft).
func hasBackend(services string) bool {
	b := servicesBackend(services)
	return b != "" && b != "iptables"
}

// servicesBackend is the proxy backend a lab's recorded service proxy
// runs: a kind lab records kube-proxy with its mode or backend
// ("kube-proxy iptables-nft"), and services-scale's figures of that
// backend belong to it as they do to a netns lab that runs it.
func servicesBackend(services string) string {
	if b, ok := strings.CutPrefix(services, "kube-proxy "); ok {
		return b
	}
	return services
}

// scaleBackend is the backend identity of a services-scale figure. Older
// results name the proxy "iptables" and the binaries in the "iptables"
// parameter; newer ones name the backend itself.
func scaleBackend(proxy string, params map[string]string) string {
	if proxy == "iptables" {
		switch b := params["iptables"]; b {
		case IPTablesLegacy, IPTablesNFT:
			return b
		}
	}
	return proxy
}
