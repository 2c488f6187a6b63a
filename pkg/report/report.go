// Package report turns a results document into text for people: a Markdown
// report (report.md) and the comparison table printed at the end of a run.
// Every figure is printed with the provider and fidelity that produced it.
package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/cnilab/cnilab/pkg/results"
)

// TestTitle explains a test id ("dts": "pod → pod, TCP, 1 stream"), for
// every report format.
func TestTitle(id string) (string, bool) {
	t, ok := testTitles[id]
	return t, ok
}

// testTitles explain the test ids.
var testTitles = map[string]string{
	"idle": "idle (no traffic)",
	"dts":  "pod → pod, TCP, 1 stream",
	"dtm":  "pod → pod, TCP, multi-stream",
	"dus":  "pod → pod, UDP, 1 stream",
	"dum":  "pod → pod, UDP, multi-stream",
	"sts":  "pod → service, TCP, 1 stream",
	"stm":  "pod → service, TCP, multi-stream",
	"sus":  "pod → service, UDP, 1 stream",
	"sum":  "pod → service, UDP, multi-stream",
	"drr":  "pod → pod, request/response on one TCP connection",
	"dcrr": "pod → pod, connect + request/response per transaction",
	"srr":  "pod → service, request/response on one TCP connection",
	"scrr": "pod → service, connect + request/response per transaction",
}

type row struct {
	lab, proxy, provider string
	fidelity             results.Fidelity
	m                    map[string]results.Summary
}

// rows groups a test's summaries per lab.
func rows(doc *results.Document, scenario, test, placement string) []row {
	by := map[string]*row{}
	var names []string
	for _, s := range doc.Summaries {
		if s.Scenario != scenario || s.Test != test || s.Placement != placement || len(s.Params) > 0 {
			continue
		}
		// A lab is its name on its provider (flannel@netns, flannel@kind).
		id := s.Lab + "@" + s.Provider
		r, ok := by[id]
		if !ok {
			r = &row{lab: s.Lab, provider: s.Provider, fidelity: s.Fidelity, proxy: s.Proxy, m: map[string]results.Summary{}}
			by[id] = r
			names = append(names, id)
		}
		r.m[s.Metric] = s
	}
	labOrder := map[string]int{}
	for i, l := range doc.Labs {
		labOrder[l.Name+"@"+l.Provider] = i
	}
	sort.Slice(names, func(i, j int) bool { return labOrder[names[i]] < labOrder[names[j]] })
	out := make([]row, len(names))
	for i, n := range names {
		out[i] = *by[n]
	}
	return out
}

type testKey struct{ scenario, test, placement string }

func tests(doc *results.Document) []testKey {
	seen := map[testKey]bool{}
	var out []testKey
	for _, s := range doc.Summaries {
		if len(s.Params) > 0 {
			continue
		}
		k := testKey{s.Scenario, s.Test, s.Placement}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	rank := func(t string) int {
		order := []string{"idle", "dts", "dtm", "dus", "dum", "sts", "stm", "sus", "sum", "drr", "dcrr", "srr", "scrr"}
		for i, o := range order {
			if o == t {
				return i
			}
		}
		return len(order)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].scenario != out[j].scenario {
			return out[i].scenario < out[j].scenario
		}
		if out[i].placement != out[j].placement {
			return out[i].placement < out[j].placement
		}
		return rank(out[i].test) < rank(out[j].test)
	})
	return out
}

// median prints a summary's headline the one way cnilab prints it: the
// median, the median's own interval and that interval's coverage,
// "7.00 [6.50–7.50] (75 %)". One window has no interval.
func median(s results.Summary, scale float64, format string) string {
	m := fmt.Sprintf(format, s.Median/scale)
	if s.N < 2 {
		return m + " (n=1, no interval)"
	}
	if s.CIMethod == "" {
		// Results written before ci_method carry the mean's t-interval.
		return fmt.Sprintf("%s (older run: mean's 95 %% CI "+format+"–"+format+")", m, s.CI95Low/scale, s.CI95High/scale)
	}
	return fmt.Sprintf("%s ["+format+"–"+format+"] (%s)", m, s.CI95Low/scale, s.CI95High/scale, level(s.CILevel))
}

// level prints a coverage with three significant figures: 0.75 → "75 %",
// 0.9375 → "93.8 %".
func level(l float64) string { return fmt.Sprintf("%.3g %%", 100*l) }

// cov is the CoV with the robust CoV beside it where there is one (n ≥ 6).
func cov(s results.Summary) string {
	if s.RobustCoVPct == nil {
		return fmt.Sprintf("%.1f", s.CoVPct)
	}
	return fmt.Sprintf("%.1f (%.1f)", s.CoVPct, *s.RobustCoVPct)
}

// ratio is the ratio to host with its interval; a figure above its host
// baseline beyond both intervals is marked.
func ratio(s results.Summary) string {
	if s.RatioToHost == nil {
		return "–"
	}
	r := fmt.Sprintf("%.2f", *s.RatioToHost)
	if s.RatioCI95Low != nil && s.RatioCI95High != nil {
		r += fmt.Sprintf(" [%.2f–%.2f]", *s.RatioCI95Low, *s.RatioCI95High)
	}
	if s.AboveHost != nil {
		r += " ⚠ above host"
	}
	return r
}

func fmtOr(s results.Summary, ok bool, f string, scale float64) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf(f, s.Median/scale)
}

// Markdown writes the run report.
func Markdown(w io.Writer, doc *results.Document) error {
	b := &strings.Builder{}
	r := doc.Run
	fmt.Fprintf(b, "# cnilab run %s\n\n", r.ID)
	fmt.Fprintf(b, "- provider: **%s**, profile %s, started %s\n", r.Provider, r.Profile, r.Started.Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(b, "- host: kernel %s, %d CPUs\n", r.Host.Kernel, r.Host.CPUs)
	fmt.Fprintf(b, "- settings: %g s per window after %g s omitted, %d repeats interleaved across labs, statistic: %s\n", r.Settings.DurationSeconds, r.Settings.OmitSeconds, r.Settings.Repeats, r.Settings.Statistic)
	if r.Settings.OrderSeed != 0 {
		fmt.Fprintf(b, "- lab order shuffled per repeat, seed %d\n", r.Settings.OrderSeed)
	}
	b.WriteString(statisticsNote)
	if r.Provider == "netns" {
		b.WriteString("\nThese figures come from **datapath models**: each CNI's forwarding design rebuilt with the same kernel mechanisms in network namespaces, measured with real iperf3. They are not the CNI's own agent; no control plane runs. `faithful` means the same devices, routes and rules as the CNI builds; `approximate` means the mechanism is modelled (see the notes per lab). CPU is machine-wide, all non-idle modes including softirq, over the steady part of each window; windows run one at a time.\n")
	}
	if r.Provider == "kind" {
		b.WriteString("\nThese figures come from the **real CNIs** (their own agents and images) on kind clusters: one control plane and two workers per lab, nodes as containers on one Docker network, measured with iperf3 and cnilab's probe inside bench pods. Windows run one at a time across all labs.\n")
	}
	b.WriteString("\n## Labs\n\n| lab | CNI | provider | fidelity | status | datapath | services | pod MTU | up (s) | notes |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, l := range doc.Labs {
		notes := strings.Join(l.Notes, "; ")
		if l.Error != "" {
			notes = strings.TrimSpace(l.Error + "; " + notes)
			notes = strings.TrimSuffix(notes, ";")
		}
		mtu := "–"
		if l.PodMTU > 0 {
			mtu = fmt.Sprint(l.PodMTU)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %s |\n", l.Name, l.CNI, l.Provider, l.Fidelity, l.Status, dash(l.Datapath), dash(l.Services), mtu, l.UpSeconds, escape(notes))
	}
	b.WriteString(softwareTable(doc.Labs))
	b.WriteString(upTable(doc))
	b.WriteString(footprintTable(doc))
	for _, k := range tests(doc) {
		title := testTitles[k.test]
		fmt.Fprintf(b, "\n## %s — %s (%s, %s)\n\n", k.test, title, k.placement, k.scenario)
		rs := rows(doc, k.scenario, k.test, k.placement)
		if k.test == "idle" {
			b.WriteString("| lab | CPU cores: median [interval] (coverage) | used memory (GiB) | n | provider | fidelity |\n|---|---|---|---|---|---|\n")
			for _, r := range rs {
				c, okc := r.m[results.CPUCores]
				m, okm := r.m[results.MemUsedBytes]
				cores := "–"
				if okc {
					cores = median(c, 1, "%.3f")
				}
				fmt.Fprintf(b, "| %s | %s | %s | %d | %s | %s |\n", r.lab, cores, fmtOr(m, okm, "%.2f", 1<<30), c.N, r.provider, r.fidelity)
			}
			continue
		}
		if strings.HasSuffix(k.test, "rr") {
			b.WriteString("| lab | proxy | p50 µs: median [interval] (coverage) | CoV % (robust) | × host [interval] | p90 µs | p99 µs | transactions/s | n | provider | fidelity |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, r := range rs {
				p50, ok := r.m[results.LatencyP50]
				if !ok {
					continue
				}
				p90, ok90 := r.m[results.LatencyP90]
				p99, ok99 := r.m[results.LatencyP99]
				tr, okt := r.m[results.TransactionRate]
				fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s |\n", r.lab, dash(r.proxy), median(p50, 1, "%.1f"), cov(p50), ratio(p50),
					fmtOr(p90, ok90, "%.1f", 1), fmtOr(p99, ok99, "%.1f", 1), fmtOr(tr, okt, "%.0f", 1), p50.N, r.provider, r.fidelity)
			}
			continue
		}
		udp := len(k.test) == 3 && k.test[1] == 'u'
		extra := "retransmits (median)"
		if udp {
			extra = "UDP loss % (median)"
		}
		fmt.Fprintf(b, "| lab | proxy | Gbit/s: median [interval] (coverage) | CoV %% (robust) | × host [interval] | %s | CPU cores | mCPU per Gbit/s | n | provider | fidelity |\n|---|---|---|---|---|---|---|---|---|---|---|\n", extra)
		for _, r := range rs {
			t, ok := r.m[results.ThroughputBps]
			if !ok {
				continue
			}
			var ex string
			if udp {
				s, ok := r.m[results.UDPLossPct]
				ex = fmtOr(s, ok, "%.2f", 1)
			} else {
				s, ok := r.m[results.Retransmits]
				ex = fmtOr(s, ok, "%.0f", 1)
			}
			c, okc := r.m[results.CPUCores]
			e, oke := r.m[results.MCPUPerGbit]
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s |\n", r.lab, dash(r.proxy), median(t, 1e9, "%.2f"), cov(t), ratio(t), ex,
				fmtOr(c, okc, "%.2f", 1), fmtOr(e, oke, "%.0f", 1), t.N, r.provider, r.fidelity)
		}
	}
	b.WriteString(PolicySection(doc))
	b.WriteString(aboveHostSection(doc))
	b.WriteString(flagsSection(doc))
	var failed []results.Measurement
	for _, m := range doc.Measurements {
		if m.Error != "" {
			failed = append(failed, m)
		}
	}
	if len(failed) > 0 {
		b.WriteString("\n## Failed measurements\n\n| lab | test | placement | repeat | error |\n|---|---|---|---|---|\n")
		for _, m := range failed {
			fmt.Fprintf(b, "| %s | %s | %s | %d | %s |\n", m.Lab, m.Test, m.Placement, m.Repeat, escape(m.Error))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// softwareTable lists what ran in labs where the CNI itself runs, so every
// figure traces to exact versions and images; "" when no lab has any.
func softwareTable(labs []results.Lab) string {
	b := &strings.Builder{}
	for _, l := range labs {
		sw := l.Software
		if sw == nil {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("\n### Software\n\n| lab | Kubernetes | node image | CNI version | CNI image | images |\n|---|---|---|---|---|---|\n")
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", l.Name, dash(sw.Kubernetes), escape(dash(sw.NodeImage)), dash(sw.CNIVersion), escape(dash(sw.CNIImage)), dash(sw.ImageSource))
	}
	return b.String()
}

// upTable times each lab's steps and the provisioning of all labs
// together against one alone; "" when no lab timed its steps.
func upTable(doc *results.Document) string {
	b := &strings.Builder{}
	for _, l := range doc.Labs {
		st := l.UpSteps
		if st == nil {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("\n### Bringing the labs up\n\nSteps run one after another inside each lab (create: nodes up and joined; CNI ready: from the CNI install until every node is Ready, the agents run everywhere and CoreDNS is available; workloads ready: bench pods running and reaching each other across nodes); the labs themselves come up in parallel.\n\n| lab | create (s) | load images (s) | CNI ready (s) | workloads ready (s) | up (s) |\n|---|---|---|---|---|---|\n")
		}
		fmt.Fprintf(b, "| %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n", l.Name, st.CreateSeconds, st.LoadImagesSeconds, st.CNIReadySeconds, st.WorkloadsReadySeconds, l.UpSeconds)
	}
	p := doc.Run.Provisioning
	if p == nil || (b.Len() == 0 && p.Solo == nil) {
		return b.String()
	}
	fmt.Fprintf(b, "\nAll %d labs together: **%.1f s** wall time until the last was up.", p.Labs, p.WallSeconds)
	switch {
	case p.Solo == nil:
		b.WriteString(" No lab was brought up alone in this run (`--solo-baseline LAB` does), so there is no parallel-vs-one ratio.\n")
	case p.Solo.Error != "":
		fmt.Fprintf(b, " %s alone failed (%s): no ratio.\n", p.Solo.Lab, escape(p.Solo.Error))
	default:
		fmt.Fprintf(b, " %s alone, earlier in the same run: **%.1f s**. Parallel-vs-one ratio = wall time of all together / up time of %s alone = **%.2f×**", p.Solo.Lab, p.Solo.UpSeconds, p.Solo.Lab, p.Ratio())
		if st := p.Solo.UpSteps; st != nil {
			fmt.Fprintf(b, " (alone: create %.1f s, images %.1f s, CNI ready %.1f s, workloads %.1f s)", st.CreateSeconds, st.LoadImagesSeconds, st.CNIReadySeconds, st.WorkloadsReadySeconds)
		}
		b.WriteString(". 1× would mean parallel provisioning costs nothing; the ratio overstates the cost when the solo lab is not the slowest to come up.\n")
	}
	return b.String()
}

// footprintTable shows what the CNI's own pods used, per lab and
// component, idle and under the heaviest load test measured, with the
// lab's nodes as a whole beside them; "" when no lab measured it.
func footprintTable(doc *results.Document) string {
	// Summaries per lab, test and metric at one placement (cross-node
	// first).
	type key struct{ lab, test, metric string }
	sums := map[key]results.Summary{}
	for _, s := range doc.Summaries {
		if s.Scenario != "throughput" || len(s.Params) > 0 {
			continue
		}
		k := key{s.Lab, s.Test, s.Metric}
		if prev, ok := sums[k]; ok && (prev.Placement == "cross-node" || s.Placement != "cross-node") {
			continue
		}
		sums[k] = s
	}
	load := ""
	for _, t := range []string{"dtm", "stm", "dts", "sts", "dum", "dus", "sum", "sus"} {
		for _, l := range doc.Labs {
			if _, ok := sums[key{l.Name, t, results.AgentCPUCores}]; ok && load == "" {
				load = t
			}
		}
	}
	b := &strings.Builder{}
	cell := func(lab, test, metric string, scale float64, format string) string {
		s, ok := sums[key{lab, test, metric}]
		if !ok {
			return "–"
		}
		return fmt.Sprintf(format, s.Median/scale)
	}
	for _, l := range doc.Labs {
		if _, ok := sums[key{l.Name, "idle", results.AgentCPUCores}]; !ok || len(l.Footprint) == 0 {
			continue
		}
		if b.Len() == 0 {
			loadHead := "under load"
			if load != "" {
				loadHead = "under " + load + " (" + testTitles[load] + ")"
			}
			fmt.Fprintf(b, "\n## Agent footprint (the CNI's own pods)\n\nRead from each pod's kubepods cgroup inside the node containers at the start and end of a window: CPU is cumulative CPU time (all modes) over elapsed time, in cores; memory is the working set (usage minus inactive file pages, as the kubelet counts it), mean of the two readings, in MiB. Each figure is the sum over the component's pods on all nodes, median over repeats. *CNI total* sums the CNI's own workloads; kube-proxy, where it runs, is shown beside and not in the total. *All nodes* is the lab's node containers as a whole (kubelet, containerd, control plane, every pod).\n\n| lab | component | role | idle CPU (cores) | idle memory (MiB) | %s CPU (cores) | %s memory (MiB) |\n|---|---|---|---|---|---|---|\n", loadHead, loadHead)
		}
		const mib = 1 << 20
		for _, c := range l.Footprint {
			cpu, mem := results.ComponentMetric(results.PodsCPUCores, c.Name), results.ComponentMetric(results.PodsMemBytes, c.Name)
			fmt.Fprintf(b, "| %s | %s %s | %s | %s | %s | %s | %s |\n", l.Name, c.Kind, c.Name, c.Role,
				cell(l.Name, "idle", cpu, 1, "%.4f"), cell(l.Name, "idle", mem, mib, "%.1f"), cell(l.Name, load, cpu, 1, "%.4f"), cell(l.Name, load, mem, mib, "%.1f"))
		}
		fmt.Fprintf(b, "| %s | **CNI total** | cni | **%s** | **%s** | **%s** | **%s** |\n", l.Name,
			cell(l.Name, "idle", results.AgentCPUCores, 1, "%.4f"), cell(l.Name, "idle", results.AgentMemBytes, mib, "%.1f"), cell(l.Name, load, results.AgentCPUCores, 1, "%.4f"), cell(l.Name, load, results.AgentMemBytes, mib, "%.1f"))
		fmt.Fprintf(b, "| %s | all nodes | node total | %s | %s | %s | %s |\n", l.Name,
			cell(l.Name, "idle", results.NodeCPUCores, 1, "%.3f"), cell(l.Name, "idle", results.NodeMemBytes, mib, "%.0f"), cell(l.Name, load, results.NodeCPUCores, 1, "%.3f"), cell(l.Name, load, results.NodeMemBytes, mib, "%.0f"))
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func escape(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ") }

// Table prints the comparison table of throughput tests for a terminal.
func Table(w io.Writer, doc *results.Document) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if len(tests(doc)) == 0 {
		return nil
	}
	fmt.Fprintf(tw, "LAB\tPROVIDER\tFIDELITY\tSTATUS\tDATAPATH\tPOD MTU\tUP (S)\n")
	for _, l := range doc.Labs {
		mtu := "–"
		if l.PodMTU > 0 {
			mtu = fmt.Sprint(l.PodMTU)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n", l.Name, l.Provider, l.Fidelity, l.Status, dash(l.Datapath), mtu, l.UpSeconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TEST\tPLACEMENT\tLAB\tPROXY\tGBIT/S MEDIAN [INTERVAL] (COVERAGE)\tCOV%% (ROBUST)\t×HOST [INTERVAL]\tMCPU/GBIT\tN\tPROVIDER/FIDELITY\tFLAGS\n")
	for _, k := range tests(doc) {
		if k.test == "idle" {
			continue
		}
		for _, r := range rows(doc, k.scenario, k.test, k.placement) {
			t, ok := r.m[results.ThroughputBps]
			if !ok {
				continue
			}
			e, oke := r.m[results.MCPUPerGbit]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s/%s\t%s\n", k.test, k.placement, r.lab, dash(r.proxy), median(t, 1e9, "%.2f"), cov(t), ratio(t), fmtOr(e, oke, "%.0f", 1), t.N, r.provider, r.fidelity, flagCount(t))
		}
	}
	for _, l := range doc.Labs {
		if l.Status != results.StatusOK {
			fmt.Fprintf(tw, "%s\t\t%s\t\t%s\t%s\t\t\t\t%s/%s\t\n", "–", l.Name, l.Status, l.Error, l.Provider, l.Fidelity)
		}
	}
	return tw.Flush()
}

// Lines prints extra summary lines (e.g. the services-scale shape) under the
// table.
func Lines(w io.Writer, title string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "\n%s\n", title); err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "  %s\n", l); err != nil {
			return err
		}
	}
	return nil
}

// statisticsNote says once what every "median [interval] (coverage)"
// means, so no reader takes the interval for a 95 % one around a mean.
const statisticsNote = "- statistics: every figure is *median [interval] (coverage)*. The interval is the median's own distribution-free order-statistic interval; its coverage is exact, not nominal: 75 % with 3 windows, 93.8 % with 5, at least 95 % from 6 (the narrowest such interval). CoV is the standard deviation over the mean; the robust CoV (1.4826·MAD over the median) is shown only from 6 windows. *× host* is the ratio of medians with the interval [low / host high, high / host low], which holds whenever both medians' intervals do; it is given for rates and latencies only.\n"

// aboveHostSection lists the figures that beat their host baseline: those
// beyond both intervals (impossible for a datapath: an artefact of
// placement or noise, kept out of rankings until explained) and those
// above it inside the noise, each with the per-CPU evidence of the
// windows; "" when there are none.
func aboveHostSection(doc *results.Document) string {
	b := &strings.Builder{}
	var noise []string
	for _, s := range doc.Summaries {
		if s.AboveHost != nil {
			if b.Len() == 0 {
				b.WriteString("\n## Figures above their host baseline\n\nA CNI cannot beat the path it is built on. These figures lie above their host baseline beyond both intervals: they depend on where client, server and softirq ran (see the per-CPU view of each window), not on the datapath, and are kept out of rankings until explained.\n\n| lab | test | placement | metric | median [interval] (coverage) | host median [interval] | × host [interval] | n | provider | fidelity | evidence |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
			}
			a := s.AboveHost
			scale, format := figureScale(s)
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | "+format+" ["+format+"–"+format+"] | %s | %d | %s | %s | %s |\n", s.Lab, s.Test, s.Placement, s.Metric, median(s, scale, format),
				a.HostMedian/scale, a.HostCI95Low/scale, a.HostCI95High/scale, ratio(s), s.N, s.Provider, s.Fidelity, escape(a.Evidence))
		}
		for _, f := range s.Flags {
			if strings.HasPrefix(f, results.FlagAboveHostWithinNoise) {
				noise = append(noise, fmt.Sprintf("- **%s %s %s** (%s, %s/%s): %s\n", s.Lab, s.Test, s.Placement, s.Metric, s.Provider, s.Fidelity, f))
			}
		}
	}
	if len(noise) > 0 {
		if b.Len() == 0 {
			b.WriteString("\n## Figures above their host baseline\n\nNo figure lies above its host baseline beyond both intervals.\n")
		}
		b.WriteString("\nAbove the host's median by more than 5 %, but inside the noise (the intervals overlap): read these as \"about the host's figure\", and look at the per-CPU view of the windows before reading anything else into them.\n\n")
		for _, l := range noise {
			b.WriteString(l)
		}
	}
	return b.String()
}

// flagsSection lists the doubts carried from the windows (other than the
// above-host ones, shown with their evidence), once per lab × test ×
// placement rather than once per metric; "" when there are none.
func flagsSection(doc *results.Document) string {
	type where struct{ lab, scenario, test, placement, proxy string }
	seen := map[where]map[string]bool{}
	var order []where
	var flags = map[where][]string{}
	for _, s := range doc.Summaries {
		if len(s.Params) > 0 {
			continue
		}
		w := where{s.Lab, s.Scenario, s.Test, s.Placement, s.Proxy}
		for _, f := range s.Flags {
			if strings.HasPrefix(f, results.FlagAboveHostWithinNoise) {
				continue
			}
			if seen[w] == nil {
				seen[w] = map[string]bool{}
				order = append(order, w)
			}
			if !seen[w][f] {
				seen[w][f] = true
				flags[w] = append(flags[w], f)
			}
		}
	}
	if len(order) == 0 {
		return ""
	}
	b := &strings.Builder{}
	b.WriteString("\n## Flags\n\nDoubts about figures whose windows did not fail.\n\n| lab | scenario | test | placement | proxy | flags |\n|---|---|---|---|---|---|\n")
	for _, w := range order {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", w.lab, w.scenario, w.test, dash(w.placement), dash(w.proxy), escape(strings.Join(flags[w], "; ")))
	}
	return b.String()
}

// figureScale is how a metric is printed: bit rates in Gbit/s.
func figureScale(s results.Summary) (float64, string) {
	if s.Unit == "bit/s" {
		return 1e9, "%.2f"
	}
	return 1, "%.4g"
}

// flagCount is the terminal table's pointer to the report's flags.
func flagCount(s results.Summary) string {
	switch {
	case s.AboveHost != nil:
		return "ABOVE HOST (see report.md)"
	case len(s.Flags) > 0:
		return fmt.Sprintf("%d flag(s) (see report.md)", len(s.Flags))
	}
	return ""
}
