package results

// The fidelity section (Document.Fidelity) of a results document.
//
// Design. A run with two providers (`cnilab compare --provider netns,kind`)
// measures each CNI twice: as cnilab's netns datapath model and as the real
// CNI on kind, each beside its own host baseline measured in the same run
// (netns: node namespaces over the fabric bridge; kind: hostNetwork pods on
// the two workers, over the Docker network the pods cross). Absolute
// figures of the two providers are not comparable (a kind node is a
// container behind a Docker bridge), so the check compares ratios:
//
//	model = netns lab median / netns host median   (Summary.RatioToHost)
//	real  = kind lab median  / kind host median
//	error = model / real − 1                       (ErrorPct = 100·error)
//
// Where the document keeps its measurements, the error is paired by
// repeat: the four windows of one repeat (model, model host, real, real
// host) run back to back (schedule.Order), so each repeat gives its own
// error e_r = (model_r/modelhost_r)/(real_r/realhost_r) − 1, which cancels
// what the machine did during that block. ErrorPct is then the median of
// the e_r (it need not equal ModelRatio/RealRatio − 1, which are the
// summaries' ratios of medians, shown for context) and its interval is
// that median's order-statistic interval, with its exact coverage
// (ErrorLevel). A paired interval covering less than 95 % (fewer than six
// pairs) decides nothing. Without measurements the interval is taken from
// the two ratio intervals, at its widest: [model_low/real_high − 1,
// model_high/real_low − 1]. Each ratio interval is the summary's
// RatioCI95Low/High; where a summary has none it is built the same
// conservative way from the lab's and the host's median intervals
// (IntervalFrom says which). A row's verdict:
//
//	holds              |error| ≤ 10 % and the whole interval inside ±15 %
//	differs            the whole interval outside ±10 % (entirely above
//	                   +10 % or entirely below −10 %)
//	undecided (noise)  anything else, including a row without an interval
//
// Both placements are divided by the cross-node host baseline of their
// provider: kind's same-node host pair share one node's namespace and talk
// over loopback, where the netns same-node baseline crosses a veth, while
// the cross-node baselines are the same construction on both providers.
//
// One row per CNI lab × test × placement × metric the run measured on both
// providers: throughput_bps for the iperf3 tests (dts dtm dus dum sts stm
// sus sum), latency_p50_us for the latency tests (drr dcrr ...). A service
// test is divided by the host's direct test, as everywhere (the host has no
// service proxy). A lab the run asked for on kind that could not run there
// (no image source for calico, ...) is listed in Unverified with the
// reason, so its model's label is shown as unverified rather than checked.
//
// NetworkPolicy (scenario policy) is checked per case, not by ratio: a
// model that enforces policy with the CNI's own mechanism (kube-router's
// chains and ipsets) or, faithfully, not at all (flannel) runs the same
// matrix as the real CNI, and each case the two providers both finished
// is one Policy row with both verdicts (pass, fail, not-enforced):
//
//	agrees     the model's verdict is the real CNI's
//	disagrees  it is not (the row names both)
//
// A case only one provider finished has no row; a model that says
// "policy not modelled" finishes none.
type FidelityCheck struct {
	// Model and Real name the providers compared ("netns", "kind").
	Model string `json:"model_provider"`
	Real  string `json:"real_provider"`
	// HoldsPct, HoldsIntervalPct and DiffersPct are the verdict's bounds
	// (10, 15, 10), recorded so a reader need not know the code.
	HoldsPct         float64       `json:"holds_pct"`
	HoldsIntervalPct float64       `json:"holds_interval_pct"`
	DiffersPct       float64       `json:"differs_pct"`
	Rows             []FidelityRow `json:"rows"`
	// Labs is one line per CNI lab: its label and the verdict over its
	// rows (differs if any row differs, holds if every row holds, else
	// undecided).
	Labs       []FidelityLab     `json:"labs"`
	Unverified []FidelityMissing `json:"unverified,omitempty"`
	// Policy is the NetworkPolicy matrix, case by case.
	Policy []FidelityPolicyCase `json:"policy,omitempty"`
}

// Policy case agreement (FidelityPolicyCase.Agreement).
const (
	PolicyAgrees    = "agrees"
	PolicyDisagrees = "disagrees"
)

// FidelityPolicyCase is one policy case of one lab on both providers.
type FidelityPolicyCase struct {
	Lab      string `json:"lab"`
	CNI      string `json:"cni"`
	Case     string `json:"case"`
	Required bool   `json:"required"`
	// ModelVerdict and RealVerdict are the case's verdicts (pass, fail,
	// not-enforced) on the model's provider and the real one.
	ModelVerdict string `json:"model_verdict"`
	RealVerdict  string `json:"real_verdict"`
	Agreement    string `json:"agreement"`
}

// FidelityVerdict is a row's (or a lab's) verdict.
type FidelityVerdict string

// Verdicts.
const (
	FidelityHolds     FidelityVerdict = "holds"
	FidelityDiffers   FidelityVerdict = "differs"
	FidelityUndecided FidelityVerdict = "undecided (noise)"
)

// FidelityRow is one lab × test × placement × metric.
type FidelityRow struct {
	Lab       string `json:"lab"`
	CNI       string `json:"cni"`
	Scenario  string `json:"scenario"`
	Test      string `json:"test"`
	Placement string `json:"placement,omitempty"`
	Metric    string `json:"metric"`
	// Label is the model's claimed fidelity (faithful | approximate).
	Label Fidelity `json:"label"`
	// ModelRatio is the netns lab's ratio to the netns host, with its
	// interval; RealRatio the kind lab's to the kind host.
	ModelRatio     float64 `json:"model_ratio"`
	ModelRatioLow  float64 `json:"model_ratio_low"`
	ModelRatioHigh float64 `json:"model_ratio_high"`
	RealRatio      float64 `json:"real_ratio"`
	RealRatioLow   float64 `json:"real_ratio_low"`
	RealRatioHigh  float64 `json:"real_ratio_high"`
	// ErrorPct is 100·(model/real − 1); ErrorLowPct/HighPct its interval
	// (nil when either ratio has no interval).
	ErrorPct     float64  `json:"error_pct"`
	ErrorLowPct  *float64 `json:"error_low_pct,omitempty"`
	ErrorHighPct *float64 `json:"error_high_pct,omitempty"`
	// IntervalFrom says where the error's interval came from: "paired by
	// repeat: …" (the median of the per-repeat errors, with its
	// order-statistic interval; ErrorLevel is its coverage, Pairs the
	// repeats behind it), else "ratio interval" (Summary.RatioCI95Low/High)
	// or "median intervals" (built from the lab's and host's CI95Low/High).
	IntervalFrom string `json:"interval_from,omitempty"`
	// ErrorLevel is the exact coverage of a paired interval (0.969 at six
	// pairs); 0 for the stacked intervals, whose coverage is only bounded
	// below by the product of the four levels.
	ErrorLevel float64 `json:"error_level,omitempty"`
	// Pairs is the number of repeats with all four windows measured.
	Pairs   int             `json:"pairs,omitempty"`
	Verdict FidelityVerdict `json:"verdict"`
	// Why explains an undecided verdict ("no interval: n=1", ...).
	Why string `json:"why,omitempty"`
	// N are the repeats behind the model and the real figure.
	ModelN int `json:"model_n"`
	RealN  int `json:"real_n"`
	// ModelAdded and RealAdded, on cross-node latency rows, are the pod
	// path's median minus its own host's, in the metric's unit (µs): the
	// time the CNI adds per transaction on each provider. The verdict is
	// the ratios'; these are shown beside it because the two providers'
	// hosts are not equally fast (kind's nodes talk over Docker's bridge
	// with br_netfilter, the netns nodes over a plain bridge: run 4c6d17's
	// dcrr host p50 was 278 µs on kind and 132 µs on netns), and a ratio
	// to a slower host makes the same added time look smaller.
	ModelAdded *float64 `json:"model_added,omitempty"`
	RealAdded  *float64 `json:"real_added,omitempty"`
}

// FidelityLab is one CNI lab's verdict over its rows.
type FidelityLab struct {
	Lab     string          `json:"lab"`
	CNI     string          `json:"cni"`
	Label   Fidelity        `json:"label"`
	Verdict FidelityVerdict `json:"verdict"`
	// Holds, Differs and Undecided count its rows.
	Holds     int `json:"holds"`
	Differs   int `json:"differs"`
	Undecided int `json:"undecided"`
	// MaxAbsErrorPct is the largest |error| among rows that differ (or,
	// when none differs, among all rows): the figure a downgraded label
	// quotes.
	MaxAbsErrorPct float64 `json:"max_abs_error_pct"`
}

// FidelityMissing is a lab whose model could not be checked here.
type FidelityMissing struct {
	Lab string `json:"lab"`
	// Why is "unverified here: ..." with the reason (no image source for
	// calico, ...).
	Why string `json:"why"`
}
