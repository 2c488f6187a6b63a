package results

import "strings"

// Metric names used in measurements and summaries, with their units. Every
// figure cnilab writes uses one of these names; rank and report read them.
const (
	ThroughputBps  = "throughput_bps"     // received bits per second
	SentBps        = "sent_bps"           // sender's bits per second
	Retransmits    = "retransmits"        // TCP sender retransmits in the window
	UDPLossPct     = "udp_loss_pct"       // datagrams lost, percent
	UDPJitterMs    = "udp_jitter_ms"      // receiver jitter, milliseconds
	CPUCores       = "cpu_cores"          // machine-wide non-idle CPU, cores
	SoftirqCores   = "softirq_cores"      // the softirq part of cpu_cores
	MCPUPerGbit    = "mcpu_per_gbit"      // CPU millicores per Gbit/s received
	MemUsedBytes   = "mem_used_bytes"     // machine used memory during the window
	PodMTU         = "pod_mtu"            // MTU of the client pod's eth0
	ProgramSeconds = "program_all_s"      // services-scale: program all N services
	AddOneSeconds  = "add_one_s"          // services-scale: add one service at N
	RuleCount      = "rule_count"         // services-scale: rules or map entries
	RulesPerEP     = "rules_per_endpoint" // services-scale: rules (or map entries) one more endpoint adds
	FirstPacketP01 = "first_packet_p01_us"
	FirstPacketP50 = "first_packet_p50_us"
	FirstPacketP90 = "first_packet_p90_us"
	FirstPacketP99 = "first_packet_p99_us"
	ConnectRate    = "connects_per_s"
	// Latency scenario: request/response round trips (rr) or whole
	// connect/request/response transactions (crr), microseconds.
	LatencyP50      = "latency_p50_us"
	LatencyP90      = "latency_p90_us"
	LatencyP99      = "latency_p99_us"
	TransactionRate = "transactions_per_s"

	// services-scale additions.
	AddOnePartialSeconds = "add_one_partial_s" // iptables: add one service at N with a partial sync (KEP-3453)
	ChainCount           = "chain_count"       // iptables/nft chains owned by the proxy
	MapEntryCount        = "map_entry_count"   // nft set/map elements or BPF map entries
	ConnectFailed        = "connect_failed"    // connects that did not complete in a probe window
	ConnectSamples       = "connect_samples"   // successful connects behind a percentile

	// Footprint of a lab where the CNI's own pods run (kind): read from the
	// pods' cgroups over the window, CPU as cores (all modes), memory as
	// the working set (usage minus inactive file pages, as the kubelet
	// counts it), mean of the window's two readings.
	AgentCPUCores = "agent_cpu_cores" // the CNI's own pods (agents, operators), summed over all nodes
	AgentMemBytes = "agent_mem_bytes" // their working set, summed
	NodeCPUCores  = "node_cpu_cores"  // the lab's node containers as a whole (kubelet, runtime, every pod), summed
	NodeMemBytes  = "node_mem_bytes"  // their working set, summed
	// Per component (one workload's pods), named ComponentMetric(base,
	// workload): pods_cpu_cores:kube-flannel-ds, pods_mem_bytes:kube-proxy.
	PodsCPUCores = "pods_cpu_cores"
	PodsMemBytes = "pods_mem_bytes"

	// NetworkPolicy scenario (pkg/scenario/policy).
	PolicyCasePass       = "policy_case_pass"          // 1 when the matrix case passed, else 0
	PolicyChecks         = "policy_checks"             // checks of the case
	PolicyChecksHeld     = "policy_checks_held"        // checks that held
	PolicyConvergeS      = "policy_converge_s"         // policies applied until every check held
	PolicyUpdateAllowS   = "policy_update_allow_s"     // an allow added to a deny, until traffic passes
	PolicyUpdateDenyS    = "policy_update_deny_s"      // the allow removed, until traffic is denied again
	PolicyDenyS          = "policy_deny_s"             // a deny applied, until new connections are denied
	PolicyProbeRoundS    = "policy_probe_round_s"      // one probe round: the resolution of the times above
	PolicyApplyS         = "policy_apply_s"            // API time to create K policies
	PolicyProgramS       = "policy_program_s"          // first create until the allowed/denied pair holds
	PolicyProgramAfterS  = "policy_program_after_s"    // last create until the allowed/denied pair holds: the agent's own lag
	PolicyCasesPassedPct = "policy_cases_passed_pct"   // matrix cases passed, percent of those that ran
	PolicyRequiredFailed = "policy_required_failed"    // required matrix cases that did not pass
	FirstPacketP50RatioK = "first_packet_p50_ratio_k0" // first-packet p50 at K policies over p50 with none
	SetCount             = "set_count"                 // ipsets an agent made
	EstablishedOK        = "established_transactions_ok"
	EstablishedFailed    = "established_transactions_failed"
)

// ComponentMetric names a per-component figure: base:component.
func ComponentMetric(base, component string) string { return base + ":" + component }

// SplitComponent splits a per-component metric name; component is "" for
// a plain metric.
func SplitComponent(metric string) (base, component string) {
	if i := strings.IndexByte(metric, ':'); i >= 0 {
		return metric[:i], metric[i+1:]
	}
	return metric, ""
}

// Units maps metric names to their units.
var units = map[string]string{
	ThroughputBps:   "bit/s",
	Retransmits:     "count",
	UDPLossPct:      "%",
	UDPJitterMs:     "ms",
	CPUCores:        "cores",
	SoftirqCores:    "cores",
	MCPUPerGbit:     "mCPU/(Gbit/s)",
	MemUsedBytes:    "bytes",
	PodMTU:          "bytes",
	ProgramSeconds:  "s",
	AddOneSeconds:   "s",
	RuleCount:       "count",
	RulesPerEP:      "count",
	FirstPacketP01:  "µs",
	FirstPacketP50:  "µs",
	FirstPacketP90:  "µs",
	FirstPacketP99:  "µs",
	ConnectRate:     "1/s",
	LatencyP50:      "µs",
	LatencyP90:      "µs",
	LatencyP99:      "µs",
	TransactionRate: "1/s",

	AddOnePartialSeconds: "s",
	ChainCount:           "count",
	MapEntryCount:        "count",
	ConnectFailed:        "count",
	ConnectSamples:       "count",

	AgentCPUCores: "cores",
	AgentMemBytes: "bytes",
	NodeCPUCores:  "cores",
	NodeMemBytes:  "bytes",
	PodsCPUCores:  "cores",
	PodsMemBytes:  "bytes",

	PolicyCasePass: "bool", PolicyChecks: "count", PolicyChecksHeld: "count", PolicyConvergeS: "s", PolicyUpdateAllowS: "s",
	PolicyUpdateDenyS: "s", PolicyDenyS: "s", PolicyProbeRoundS: "s", PolicyApplyS: "s", PolicyProgramS: "s", PolicyProgramAfterS: "s",
	PolicyCasesPassedPct: "%", PolicyRequiredFailed: "count", FirstPacketP50RatioK: "ratio", SetCount: "count",
	EstablishedOK: "count", EstablishedFailed: "count",
}

// Unit returns the unit of a metric (per-component ones included), or ""
// when it is not a known metric.
func Unit(metric string) string {
	base, _ := SplitComponent(metric)
	return units[base]
}

// Direction says which way a metric is better.
type Direction string

const (
	Higher Direction = "higher"
	Lower  Direction = "lower"
	// Neutral metrics describe a setup rather than its performance
	// (pod_mtu, rule counts, the sender's rate, how many samples a
	// percentile rests on): a change is news, neither a regression nor an
	// improvement.
	Neutral Direction = "neutral"
)

// better lists every metric with a direction; the rest are Neutral.
var better = map[string]Direction{
	ThroughputBps: Higher, ConnectRate: Higher, TransactionRate: Higher,

	Retransmits: Lower, UDPLossPct: Lower, UDPJitterMs: Lower,
	CPUCores: Lower, SoftirqCores: Lower, MCPUPerGbit: Lower, MemUsedBytes: Lower,
	ProgramSeconds: Lower, AddOneSeconds: Lower, AddOnePartialSeconds: Lower,
	FirstPacketP01: Lower, FirstPacketP50: Lower, FirstPacketP90: Lower, FirstPacketP99: Lower,
	LatencyP50: Lower, LatencyP90: Lower, LatencyP99: Lower, ConnectFailed: Lower,
	AgentCPUCores: Lower, AgentMemBytes: Lower, NodeCPUCores: Lower, NodeMemBytes: Lower,
	PodsCPUCores: Lower, PodsMemBytes: Lower,

	SentBps: Neutral, PodMTU: Neutral, RuleCount: Neutral, RulesPerEP: Neutral,
	ChainCount: Neutral, MapEntryCount: Neutral, ConnectSamples: Neutral,

	PolicyCasesPassedPct: Higher, PolicyCasePass: Higher, PolicyChecksHeld: Higher,
	PolicyRequiredFailed: Lower, FirstPacketP50RatioK: Lower, PolicyConvergeS: Lower, PolicyUpdateAllowS: Lower,
	PolicyUpdateDenyS: Lower, PolicyDenyS: Lower, PolicyApplyS: Lower, PolicyProgramS: Lower, PolicyProgramAfterS: Lower,
	PolicyChecks: Neutral, SetCount: Neutral, EstablishedOK: Neutral, EstablishedFailed: Neutral, PolicyProbeRoundS: Neutral,
}

// Better is the direction of a metric (per-component ones by their base);
// an unknown metric is Neutral, never silently "lower is better".
func Better(metric string) Direction {
	base, _ := SplitComponent(metric)
	if d, ok := better[base]; ok {
		return d
	}
	return Neutral
}

// LowerIsBetter says the metric is better lower; false for higher-is-better
// and for neutral metrics.
func LowerIsBetter(metric string) bool { return Better(metric) == Lower }
