// Package results defines cnilab's results document (schema
// cnilab.results/v1) and a store that persists every measurement the moment
// it finishes, so a killed run keeps what it measured. A lab is its name
// on its provider: a run with two providers (netns and kind) holds each
// lab twice, and its fidelity section (Document.Fidelity; the design is
// written out on FidelityCheck) sets each netns model against the real
// CNI.
package results

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// Schema is the version tag of the results document.
const Schema = "cnilab.results/v1"

// Fidelity says how close a measured datapath is to the real CNI.
type Fidelity string

const (
	// Faithful: the CNI's own datapath mechanisms, rebuilt or installed.
	Faithful Fidelity = "faithful"
	// Approximate: a stand-in that models the CNI's cost, labelled as such.
	Approximate Fidelity = "approximate"
	// Real: the CNI itself runs (its own agents and images, on kind or a
	// user's cluster); nothing is modelled.
	Real Fidelity = "real"
	// NotModelled: nothing was measured; the reason is in the lab's error.
	NotModelled Fidelity = "not-modelled"
)

// Lab status values.
const (
	StatusOK          = "ok"
	StatusFailed      = "failed"
	StatusUnavailable = "unavailable" // not reproducible on this machine
)

// Document is the whole results file.
type Document struct {
	Schema       string        `json:"schema"`
	Run          Run           `json:"run"`
	Labs         []Lab         `json:"labs"`
	Measurements []Measurement `json:"measurements"`
	Summaries    []Summary     `json:"summaries"`
	// Fidelity compares each netns model with the real CNI on kind, when
	// the run had both providers (FidelityCheck).
	Fidelity *FidelityCheck `json:"fidelity,omitempty"`
}

// Run describes one cnilab invocation.
type Run struct {
	ID        string     `json:"id"`
	Provider  string     `json:"provider"`
	Profile   string     `json:"profile,omitempty"`
	Scenarios []string   `json:"scenarios,omitempty"`
	Started   time.Time  `json:"started"`
	Finished  *time.Time `json:"finished,omitempty"`
	Host      Host       `json:"host"`
	// Settings records the measurement settings that apply to every figure.
	Settings Settings `json:"settings"`
	// Provisioning times bringing the labs up.
	Provisioning *Provisioning `json:"provisioning,omitempty"`
	// Request is what the run was asked for, recorded before anything is
	// built, so `compare --resume` continues it the same way.
	Request *Request `json:"request,omitempty"`
	// Resumes records each `compare --resume` that continued this run.
	Resumes []Resume `json:"resumes,omitempty"`
}

// Request is a run's invocation as far as it shapes the measurements.
type Request struct {
	Providers  []string `json:"providers"`
	Labs       []string `json:"labs"`
	Scenarios  []string `json:"scenarios"`
	Profile    string   `json:"profile"`
	Placements []string `json:"placements,omitempty"`
	// Seconds and Repeats are the overrides given (0: the profile's).
	Seconds     int  `json:"seconds,omitempty"`
	Repeats     int  `json:"repeats,omitempty"`
	UnderlayMTU int  `json:"underlay_mtu,omitempty"`
	PinCPUs     bool `json:"pin_cpus"`
	// Attached: the run measured labs `cnilab up` built (--run); they are
	// neither built nor removed by the run.
	Attached bool `json:"attached,omitempty"`
	// LabsDir and ScenariosDir are the definition folders ("" embedded).
	LabsDir      string `json:"labs_dir,omitempty"`
	ScenariosDir string `json:"scenarios_dir,omitempty"`
}

// Resume is one continuation of a killed run.
type Resume struct {
	At time.Time `json:"at"`
	// Kept measurements were read back from measurements.jsonl and not
	// measured again; Remeasured were measured by the resume.
	Kept       int `json:"kept"`
	Remeasured int `json:"remeasured"`
	// Dropped are lines of measurements.jsonl that were not kept (a line
	// torn by the kill, a partial services-scale repeat).
	Dropped int `json:"dropped,omitempty"`
	// Reattached and Rebuilt name the labs found still up and the ones
	// built again.
	Reattached []string `json:"reattached,omitempty"`
	Rebuilt    []string `json:"rebuilt,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// Settings are the knobs a reader needs to interpret the figures.
type Settings struct {
	DurationSeconds float64 `json:"duration_s"`
	OmitSeconds     float64 `json:"omit_s"`
	Repeats         int     `json:"repeats"`
	UnderlayMTU     int     `json:"underlay_mtu,omitempty"`
	Statistic       string  `json:"statistic"`
	// OrderSeed shuffles the labs' order per repeat (schedule.Order); the
	// same seed replays the same order.
	OrderSeed uint64 `json:"order_seed,omitempty"`
}

// Host describes the machine the run happened on.
type Host struct {
	Kernel       string       `json:"kernel"`
	CPUs         int          `json:"cpus"`
	Capabilities []Capability `json:"capabilities,omitempty"`
}

// Capability is one detected kernel feature.
type Capability struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	// Config is the kernel option that provides it (CONFIG_VXLAN, ...).
	Config string `json:"config,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Lab is one lab (one CNI variant) in a run.
type Lab struct {
	Name     string   `json:"name"`
	CNI      string   `json:"cni"`
	Provider string   `json:"provider"`
	Fidelity Fidelity `json:"fidelity"`
	Status   string   `json:"status"`
	Error    string   `json:"error,omitempty"`
	// Datapath names the modelled forwarding mode (vxlan, host-gw, bgp, ...).
	Datapath string `json:"datapath,omitempty"`
	// Services names the service proxy in use, after any fallback.
	Services string `json:"services,omitempty"`
	PodMTU   int    `json:"pod_mtu,omitempty"`
	// Notes are plain statements about what was and was not reproduced,
	// e.g. "not reproducible here: CONFIG_IP_VS missing; fell back to iptables".
	Notes []string `json:"notes,omitempty"`
	// NoFootprint, when set, says why the lab's idle CPU and memory are not
	// the CNI's own (no CNI agent runs in a datapath model), so nothing
	// reads them as the CNI's footprint.
	NoFootprint string `json:"no_footprint,omitempty"`
	// UpSeconds is how long provisioning took.
	UpSeconds float64 `json:"up_s,omitempty"`
	// UpSteps splits UpSeconds where the provider times its steps (kind).
	UpSteps *UpSteps `json:"up_steps,omitempty"`
	// Footprint lists the workloads whose pods the footprint figures
	// (agent_*, pods_*) count, where the CNI's own pods run.
	Footprint []Component `json:"footprint_components,omitempty"`
	// Software is what ran, where the CNI itself runs (kind, cluster).
	Software *Software `json:"software,omitempty"`
	// IPerf3 is the iperf3 version the lab's pods run ("3.12").
	IPerf3 string `json:"iperf3,omitempty"`
	// Detected is what an existing cluster runs, as cnilab found it
	// (provider cluster: nothing was installed, so nothing is assumed).
	Detected *Detected `json:"detected,omitempty"`
}

// Detected is the CNI of an existing cluster and how cnilab knows it.
type Detected struct {
	CNI     string `json:"cni"`
	Version string `json:"version"`
	// Mode is the forwarding mode in the lab definitions' terms (vxlan,
	// host-gw, tunnel, native, ...), "" where not visible.
	Mode string `json:"mode,omitempty"`
	// Proxy is the service proxy (kube-proxy iptables, cilium eBPF, ...).
	Proxy string `json:"proxy,omitempty"`
	// How lists the evidence: objects read and what they said.
	How []string `json:"how"`
	// Nodes are the nodes the bench pods ran on (client, server) and why
	// those.
	Nodes    []string `json:"nodes,omitempty"`
	NodesHow string   `json:"nodes_how,omitempty"`
}

// UpSteps are the timed steps of bringing a lab up, in order; each runs
// from the end of the one before.
type UpSteps struct {
	// CreateSeconds: the cluster's nodes up and joined (kind create).
	CreateSeconds float64 `json:"create_s"`
	// LoadImagesSeconds: images loaded into the nodes.
	LoadImagesSeconds float64 `json:"load_images_s,omitempty"`
	// CNIReadySeconds: from the CNI install until every node is Ready, the
	// CNI's agents run everywhere and CoreDNS is available.
	CNIReadySeconds float64 `json:"cni_ready_s"`
	// WorkloadsReadySeconds: the bench pods running and one reaching
	// another across nodes.
	WorkloadsReadySeconds float64 `json:"workloads_ready_s"`
}

// Component is a workload whose pods a footprint counts.
type Component struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // DaemonSet, Deployment
	// Role is "cni" (summed into agent_*) or "service-proxy" (kube-proxy,
	// shown beside).
	Role string `json:"role"`
}

// Provisioning is how long bringing the run's labs up took, and the same
// against one lab alone when the run measured that.
type Provisioning struct {
	// Labs is how many labs were provisioned together.
	Labs int `json:"labs"`
	// WallSeconds runs from the start of provisioning until the last lab
	// was up (or failed), all labs together.
	WallSeconds float64 `json:"wall_s"`
	// Solo is one lab brought up alone, before the others, in this run.
	Solo *SoloUp `json:"solo,omitempty"`
}

// SoloUp is one lab provisioned alone (then removed) as the yardstick for
// the parallel provisioning.
type SoloUp struct {
	Lab       string   `json:"lab"`
	UpSeconds float64  `json:"up_s"`
	UpSteps   *UpSteps `json:"up_steps,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Ratio is WallSeconds over the solo lab's up time: how much longer all
// labs together took than the one alone (1 = no cost of parallelism). 0
// when no solo lab was measured.
func (p Provisioning) Ratio() float64 {
	if p.Solo == nil || p.Solo.Error != "" || p.Solo.UpSeconds <= 0 {
		return 0
	}
	return p.WallSeconds / p.Solo.UpSeconds
}

// Software names what a lab with a real CNI ran, so a figure can be traced
// to the exact images behind it.
type Software struct {
	Kubernetes string `json:"kubernetes,omitempty"`
	// NodeImage is the kind node image with its local ID or digest.
	NodeImage  string `json:"node_image,omitempty"`
	CNIVersion string `json:"cni_version,omitempty"`
	// CNIImage is the CNI's image with its digest or local ID.
	CNIImage string `json:"cni_image,omitempty"`
	// ImageSource is "offline" (built here by `cnilab images build`) or
	// "upstream" (pinned public images).
	ImageSource string `json:"image_source,omitempty"`
}

// Measurement is one measurement window.
type Measurement struct {
	Lab       string    `json:"lab"`
	Scenario  string    `json:"scenario"`
	Test      string    `json:"test"`
	Repeat    int       `json:"repeat"`
	Placement string    `json:"placement,omitempty"`
	Provider  string    `json:"provider"`
	Fidelity  Fidelity  `json:"fidelity"`
	Proxy     string    `json:"proxy,omitempty"`
	Started   time.Time `json:"started"`
	// Params are scenario parameters of this window (services count, ...).
	Params map[string]string `json:"params,omitempty"`
	// Metrics hold the figures; names and units are listed in Metrics.
	Metrics map[string]float64 `json:"metrics"`
	// Samples keeps raw per-sample values where a window produces many
	// (e.g. connect latencies), for later re-analysis.
	Samples map[string][]float64 `json:"samples,omitempty"`
	Error   string               `json:"error,omitempty"`
	// Flags are doubts about a figure that did not fail the window (a TCP
	// sender and receiver rate more than 2 % apart, ...).
	Flags []string `json:"flags,omitempty"`
	// CPUs is the per-CPU view of the window (busy and softirq share of
	// each CPU, from /proc/stat and /proc/softirqs), so a figure that
	// depends on where client, server and softirq ran can be shown with its
	// placement. These are machine-wide readings: everything else on the
	// machine is in them too, and on kind every node shares this kernel,
	// so they are the machine's CPUs, not one node's.
	CPUs []CPUWindow `json:"cpus,omitempty"`
	// Pinning says how the window's processes were placed on CPUs
	// ("client cpu0, server cpu1", "unpinned").
	Pinning string `json:"pinning,omitempty"`
	// Focus says which of the run's other kind node containers were held
	// at the lowest CPU weight during the window (pkg/cpufocus), so their
	// control planes and agents did not land in it; empty when the run had
	// none, or "not focused: why" when lowering them failed.
	Focus string `json:"focus,omitempty"`
	// NotReproducible, when set, says why nothing could be measured on this
	// machine ("not reproducible here: CONFIG_IP_VS missing"). It is not a
	// failure: the result records what the kernel lacks.
	NotReproducible string `json:"not_reproducible,omitempty"`
}

// CPUWindow is one CPU over one measurement window.
type CPUWindow struct {
	CPU int `json:"cpu"`
	// BusyPct is the share of the window the CPU was not idle (softirq
	// included), in percent of that CPU.
	BusyPct float64 `json:"busy_pct"`
	// SoftirqPct is the share spent in softirq, in percent of that CPU.
	SoftirqPct float64 `json:"softirq_pct"`
	// NetRx and NetTx are the NET_RX / NET_TX softirqs the CPU handled
	// in the window (/proc/softirqs).
	NetRx uint64 `json:"net_rx"`
	NetTx uint64 `json:"net_tx"`
}

// AboveHost records a lab figure that beats the host baseline it is built
// on beyond both intervals: impossible for a datapath, so it is an
// artefact (placement, noise) and kept out of rankings until explained.
type AboveHost struct {
	HostMedian   float64 `json:"host_median"`
	HostCI95Low  float64 `json:"host_ci95_low"`
	HostCI95High float64 `json:"host_ci95_high"`
	// Evidence is the per-CPU placement of the lab's and the host's
	// windows (busy and softirq per CPU), in words.
	Evidence string `json:"evidence"`
}

// FlagAboveHostWithinNoise starts the Summary flag of a throughput figure
// whose median is well above its host baseline's while the two intervals
// overlap: not shown to be impossible, but not to be read as "faster than
// the host" either.
const FlagAboveHostWithinNoise = "above host within noise"

// Summary aggregates one metric of one lab × test over repeats.
type Summary struct {
	Lab       string            `json:"lab"`
	Scenario  string            `json:"scenario"`
	Test      string            `json:"test"`
	Placement string            `json:"placement,omitempty"`
	Params    map[string]string `json:"params,omitempty"`
	Metric    string            `json:"metric"`
	Unit      string            `json:"unit"`
	// Median is the headline figure; CI95Low/High is the median's own
	// distribution-free (order-statistic) interval, whose actual coverage
	// is CILevel (below 0.95 when there are too few repeats for 95 %).
	Median   float64 `json:"median"`
	CI95Low  float64 `json:"ci95_low"`
	CI95High float64 `json:"ci95_high"`
	// CILevel is the coverage of [CI95Low, CI95High] (0.75 at n = 3,
	// 0.9375 at n = 5, ≥ 0.95 from n = 6).
	CILevel float64 `json:"ci_level"`
	// CIMethod names how the interval was found ("order-statistic").
	CIMethod string `json:"ci_method"`
	// Mean, StdDev and the mean's Student-t interval, for Welch's test.
	Mean         float64 `json:"mean"`
	StdDev       float64 `json:"stddev"`
	MeanCI95Low  float64 `json:"mean_ci95_low"`
	MeanCI95High float64 `json:"mean_ci95_high"`
	CoVPct       float64 `json:"cov_pct"`
	// RobustCoVPct is 1.4826·MAD/median in percent, only from n = 6: below
	// that the MAD is one of the deviations and says nothing.
	RobustCoVPct *float64 `json:"robust_cov_pct,omitempty"`
	N            int      `json:"n"`
	// RatioToHost is median / the host baseline's median for the same test
	// and metric, when the baseline ran; RatioCI95Low/High is its
	// interval, from the two medians' intervals (conservative).
	RatioToHost   *float64 `json:"ratio_to_host,omitempty"`
	RatioCI95Low  *float64 `json:"ratio_ci95_low,omitempty"`
	RatioCI95High *float64 `json:"ratio_ci95_high,omitempty"`
	// AboveHost is set when the figure beats its host baseline beyond both
	// intervals; such a figure is flagged and kept out of rankings.
	AboveHost *AboveHost `json:"above_host,omitempty"`
	// Flags are doubts carried from the windows (sent/received gap, ...).
	Flags    []string `json:"flags,omitempty"`
	Provider string   `json:"provider"`
	Fidelity Fidelity `json:"fidelity"`
	Proxy    string   `json:"proxy,omitempty"`
}

// Decode reads and checks a results document.
func Decode(r io.Reader) (*Document, error) {
	dec := json.NewDecoder(r)
	var d Document
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	if d.Schema != Schema {
		return nil, fmt.Errorf("schema %q, want %q", d.Schema, Schema)
	}
	return &d, nil
}

// ReadFile reads a results document from a file.
func ReadFile(path string) (*Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// LabByName returns the first lab entry with that name (in a run with
// two providers a name appears once per provider: see LabOf).
func (d *Document) LabByName(name string) (Lab, bool) {
	for _, l := range d.Labs {
		if l.Name == name {
			return l, true
		}
	}
	return Lab{}, false
}

// LabOf returns the lab entry with that name on that provider.
func (d *Document) LabOf(name, provider string) (Lab, bool) {
	for _, l := range d.Labs {
		if l.Name == name && l.Provider == provider {
			return l, true
		}
	}
	return Lab{}, false
}
