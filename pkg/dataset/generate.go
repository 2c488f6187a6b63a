package dataset

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The generator turns the per-run CSVs re-extracted from InfraBuilder's raw
// data repositories (shared/published-benchmarks) into datasets, applying
// each edition's own aggregation rule. It is deterministic: the same CSV
// gives byte-identical YAML, so the committed files can be checked.

// GenerateCommand regenerates reports/published from the repository root.
const GenerateCommand = "go run ./pkg/dataset/gen"

// row is one CSV record by column name.
type row map[string]string

func readCSV(r io.Reader) ([]row, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("no data rows")
	}
	head := recs[0]
	var rows []row
	for _, rec := range recs[1:] {
		m := row{}
		for i, h := range head {
			if i < len(rec) {
				m[h] = strings.TrimSpace(rec[i])
			}
		}
		rows = append(rows, m)
	}
	return rows, nil
}

// num parses a cell; ok is false for an empty cell (no result).
func (r row) num(col string) (float64, bool, error) {
	s := r[col]
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("variant %s run %s test %s: %s: %w", r["variant"], r["run"], r["test"], col, err)
	}
	return v, true, nil
}

func maxOf(v []float64) float64 { return slices.Max(v) }

func meanOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// round keeps d decimals so the YAML is stable and readable.
func round(v float64, d int) *Num {
	p := math.Pow(10, float64(d))
	n := Num(math.Round(v*p) / p)
	return &n
}

// variant2024 describes a 2024 variant (FOUND-RAW in the reference notes,
// from the setup/cni-configs scripts of the raw-data repository).
type variant2024 struct {
	cni, version, options, encryption, services string
}

var variants2024 = map[string]variant2024{
	"baremetal":          {"host", "", "no CNI: host-to-host reference, direct tests only", "none", ""},
	"antrea":             {"antrea", "1.15.0", "defaults (Geneve encap)", "none", "kube-proxy"},
	"antrea-noencap":     {"antrea", "1.15.0", "trafficEncapMode=noEncap", "none", "kube-proxy"},
	"antrea-wg":          {"antrea", "1.15.0", "trafficEncryptionMode=wireGuard", "wireguard", "kube-proxy"},
	"antrea-ipsec":       {"antrea", "1.15.0", "trafficEncryptionMode=ipsec", "ipsec", "kube-proxy"},
	"calico":             {"calico", "3.27.2", "iptables dataplane, VXLANCrossSubnet", "none", "kube-proxy"},
	"calico-ebpf":        {"calico", "3.27.2", "eBPF dataplane, kube-proxy disabled", "none", "ebpf"},
	"calico-wg":          {"calico", "3.27.2", "iptables dataplane + WireGuard", "wireguard", "kube-proxy"},
	"calico-ebpf-wg":     {"calico", "3.27.2", "eBPF dataplane + WireGuard, kube-proxy disabled", "wireguard", "ebpf"},
	"calico-vpp":         {"calico-vpp", "3.27.2 + vpp-dataplane v3.27.0", "VPP dataplane, no hugepages (calico-vpp-nohuge)", "none", "kube-proxy"},
	"calico-vpp-wg":      {"calico-vpp", "3.27.2 + vpp-dataplane v3.27.0", "VPP dataplane + WireGuard, no hugepages", "wireguard", "kube-proxy"},
	"calico-vpp-ipsec":   {"calico-vpp", "3.27.2 + vpp-dataplane v3.27.0", "VPP dataplane + IPsec (IKEv2 PSK), no hugepages", "ipsec", "kube-proxy"},
	"canal":              {"canal", "Calico v3.27.2 canal.yaml", "flannel networking + Calico policy", "none", "kube-proxy"},
	"cilium":             {"cilium", "1.15.2", "helm defaults (VXLAN tunnel, Hubble on)", "none", "kube-proxy"},
	"cilium-nohubble":    {"cilium", "1.15.2", "hubble.enabled=false", "none", "kube-proxy"},
	"cilium-hubble-full": {"cilium", "1.15.2", "Hubble relay + UI", "none", "kube-proxy"},
	"cilium-nokproxy":    {"cilium", "1.15.2", "kubeProxyReplacement=true, kube-proxy disabled", "none", "ebpf"},
	"cilium-wg":          {"cilium", "1.15.2", "encryption.type=wireguard", "wireguard", "kube-proxy"},
	"cilium-ipsec":       {"cilium", "1.15.2", "encryption.type=ipsec, rfc4106(gcm(aes)) 128", "ipsec", "kube-proxy"},
	"flannel":            {"flannel", "v0.24.2", "default (VXLAN)", "none", "kube-proxy"},
	"kubeovn":            {"kube-ovn", "v1.12.8", "defaults", "none", "kube-proxy"},
	"kuberouter":         {"kube-router", "v2.1.0 manifest", "--run-router --run-firewall, no service proxy", "none", "kube-proxy"},
	"kuberouter-all":     {"kube-router", "master all-features manifest", "router + firewall + IPVS service proxy, kube-proxy disabled", "none", "ipvs"},
}

var tests2024 = []string{"idle", "dts", "dtm", "dus", "dum", "sts", "stm", "sus", "sum"}

// runKey is one variant's one test; its rows are the runs.
type runKey struct{ variant, test string }

// groupRuns collects the runs of each variant × test, and the variants in
// the order the CSV first names them.
func groupRuns(rows []row) (order []string, byKey map[runKey][]row) {
	byKey = map[runKey][]row{}
	for _, rw := range rows {
		v := rw["variant"]
		if !slices.Contains(order, v) {
			order = append(order, v)
		}
		k := runKey{v, rw["test"]}
		byKey[k] = append(byKey[k], rw)
	}
	return order, byKey
}

// Generate2024 builds the 2024 dataset from infrabuilder-2024-runs.csv with
// the Grafana dashboard's rules: bandwidth = max of 3 runs; CPU = max over
// runs of the mean of the two benchmark nodes; memory = max over nodes and
// runs, and its overhead against bare metal on the matching direct test.
func Generate2024(r io.Reader) (*Dataset, error) {
	rows, err := readCSV(r)
	if err != nil {
		return nil, err
	}
	for _, rw := range rows {
		if _, ok := variants2024[rw["variant"]]; !ok {
			return nil, fmt.Errorf("variant %q is not described in variants2024", rw["variant"])
		}
	}
	order, byKey := groupRuns(rows)
	// Bare metal first (the baseline), then the source's order.
	slices.SortStableFunc(order, func(a, b string) int {
		switch {
		case a == "baremetal":
			return -1
		case b == "baremetal":
			return 1
		}
		return 0
	})
	memMax := func(rs []row) (float64, bool, error) {
		var vals []float64
		for _, rw := range rs {
			for _, col := range []string{"client_mem_used_bytes", "server_mem_used_bytes"} {
				v, ok, err := rw.num(col)
				if err != nil {
					return 0, false, err
				}
				if ok {
					vals = append(vals, v)
				}
			}
		}
		if len(vals) == 0 {
			return 0, false, nil
		}
		return maxOf(vals), true, nil
	}
	d := &Dataset{
		Schema:      Schema,
		Name:        "infrabuilder-2024",
		Title:       "InfraBuilder Kubernetes CNI benchmark 2024 (40 Gbit/s bare metal)",
		GeneratedBy: GenerateCommand + " (from shared/published-benchmarks/infrabuilder-2024-runs.csv)",
		Sources: []Source{
			{ID: "S1", What: "article, published 2024-04-24", URL: "https://itnext.io/benchmark-results-of-kubernetes-network-plugins-cni-over-40gbit-s-network-2024-156f085a5e4e"},
			{ID: "S2", What: "raw data, scripts and Grafana dashboards (results/<variant>/<run>/all.results)", URL: "https://github.com/InfraBuilder/benchmark-k8s-cni-2024-01", Commit: "3a5c159"},
		},
		Setup: "3 bare-metal nodes (control plane, iperf3 server, iperf3 client), 40 Gbit/s Intel XL710, jumbo frames (MTU 9000), " +
			"RKE2 v1.26.12, Ubuntu 22.04, untuned; iperf3 3.16, 60 s per test with -O 1, inter-node only; 3 runs per variant, OS and cluster re-installed each run",
		Aggregation: map[string]string{
			"throughput_bps":     "max of 3 runs (the dashboard's rule)",
			"retransmits":        "mean of runs",
			"udp_loss_pct":       "mean of runs",
			"udp_jitter_ms":      "mean of runs",
			"cpu_cores":          "max over runs of the mean of client and server node, user+system only",
			"mcpu_per_gbit":      "cpu_cores x 1000 / (throughput_bps / 1e9); user+system only, so not the article's figure",
			"mem_used_bytes":     "max over runs and the two nodes of statexec's mean host used memory",
			"mem_overhead_bytes": "mem_used_bytes minus baremetal's on the matching direct test (idle -> idle, s?? -> d??)",
		},
		Attribution: "published: infrabuilder-2024, max of 3 runs",
		Notes: []string{
			"CPU is user+system only: the per-second statexec files with softirq/irq are not in the surviving raw data, so cpu_cores and mcpu_per_gbit are approximations, not the article's CPU or efficiency figures.",
			"CPU and memory are host-wide on the two benchmark nodes: CNI agents (Hubble, VPP, OVS) are counted with the datapath.",
			"Multi-stream TCP (dtm, stm) runs at line rate (~39 Gbit/s) for every unencrypted non-VPP variant and cannot separate CNIs.",
			"UDP throughput is the received rate: read it with udp_loss_pct.",
			"antrea-ipsec sts failed in all runs (Service name did not resolve); calico-wg run 3 dts has no result. Failed runs are left out of every aggregate.",
			"calico-vpp variants ran the no-hugepages manifest without DPDK tuning.",
			"Weave Net was not part of the 2024 benchmark.",
		},
		Baseline: "baremetal",
	}
	baseMem := map[string]float64{}
	if rs, ok := byKey[runKey{"baremetal", "idle"}]; ok {
		if v, ok, err := memMax(rs); err != nil {
			return nil, err
		} else if ok {
			baseMem["idle"] = v
		}
	}
	for _, t := range tests2024[1:] {
		if t[0] != 'd' {
			continue
		}
		if v, ok, err := memMax(byKey[runKey{"baremetal", t}]); err != nil {
			return nil, err
		} else if ok {
			baseMem[t] = v
		}
	}
	for _, name := range order {
		meta := variants2024[name]
		v := Variant{Name: name, CNI: meta.cni, Version: meta.version, Options: meta.options, Encryption: meta.encryption, Services: meta.services}
		runs := map[string]bool{}
		for _, t := range tests2024 {
			rs := byKey[runKey{name, t}]
			if len(rs) == 0 {
				continue
			}
			fig := TestFigures{Test: t}
			var bw, retr, loss, jit, cpu []float64
			for _, rw := range rs {
				runs[rw["run"]] = true
				if err := v.noteRow(rw); err != nil {
					return nil, err
				}
				b, hasBW, err := rw.num("bw_bps")
				if err != nil {
					return nil, err
				}
				if t != "idle" && !hasBW {
					continue // failed run: out of every aggregate
				}
				if hasBW {
					bw = append(bw, b)
				}
				for _, c := range []struct {
					col string
					dst *[]float64
				}{{"tcp_retransmits", &retr}, {"udp_lost_pct", &loss}, {"udp_jitter_ms", &jit}} {
					x, ok, err := rw.num(c.col)
					if err != nil {
						return nil, err
					}
					if ok {
						*c.dst = append(*c.dst, x)
					}
				}
				var sum float64
				var n int
				for _, side := range []string{"client", "server"} {
					sys, ok1, err := rw.num(side + "_cpu_system_cores")
					if err != nil {
						return nil, err
					}
					usr, ok2, err := rw.num(side + "_cpu_user_cores")
					if err != nil {
						return nil, err
					}
					if ok1 && ok2 {
						sum += sys + usr
						n++
					}
				}
				if n == 2 {
					cpu = append(cpu, sum/2)
				}
				fig.RunsWithResult++
			}
			if len(bw) > 0 {
				fig.ThroughputBps = round(maxOf(bw), 0)
			}
			if len(retr) > 0 {
				fig.Retransmits = round(meanOf(retr), 1)
			}
			if len(loss) > 0 {
				fig.UDPLossPct = round(meanOf(loss), 4)
			}
			if len(jit) > 0 {
				fig.UDPJitterMs = round(meanOf(jit), 6)
			}
			if len(cpu) > 0 {
				c := maxOf(cpu)
				fig.CPUCores = round(c, 6)
				if len(bw) > 0 {
					fig.MCPUPerGbit = round(c*1000/(maxOf(bw)/1e9), 3)
				}
			}
			var okRuns []row
			for _, rw := range rs {
				if _, has, _ := rw.num("bw_bps"); has || t == "idle" {
					okRuns = append(okRuns, rw)
				}
			}
			if m, ok, err := memMax(okRuns); err != nil {
				return nil, err
			} else if ok {
				fig.MemUsedBytes = round(m, 0)
				baseTest := t
				if t != "idle" {
					baseTest = "d" + t[1:]
				}
				if b, ok := baseMem[baseTest]; ok {
					fig.MemOverheadBytes = round(m-b, 0)
				}
			}
			v.Tests = append(v.Tests, fig)
		}
		v.Runs = len(runs)
		d.Variants = append(d.Variants, v)
	}
	return d, nil
}

// 2020 test ids map onto the 2024 ids so environments read both editions
// with the same names: knb ran single-stream tests only.
var tests2020 = []struct{ id, source string }{
	{"idle", "idle"}, {"dts", "p2p_tcp"}, {"dus", "p2p_udp"}, {"sts", "p2s_tcp"}, {"sus", "p2s_udp"},
}

// hostThreads2020 converts knb's host CPU percent to cores: the 2020 nodes'
// Xeon E5-1630 v3 has 4 cores / 8 threads, and knb's % is of the whole host.
const hostThreads2020 = 8

// variant2020 derives CNI, encryption and config from a 2020 directory name
// such as tuning-calico-3.16-mtu-encryption.u18.04-hwe.
func variant2020(dir string) (Variant, error) {
	base, osPart, _ := strings.Cut(dir, ".u")
	v := Variant{Name: dir, Encryption: "none", Services: "kube-proxy"}
	cfg, rest, _ := strings.Cut(base, "-")
	switch {
	case strings.HasPrefix(rest, "antrea"):
		v.CNI, v.Version = "antrea", "v0.9.1"
	case strings.HasPrefix(rest, "calico"):
		v.CNI, v.Version = "calico", "v3.16.0"
		if rest == "calico" {
			v.Version = "v3.15.2"
		}
	case strings.HasPrefix(rest, "canal"):
		v.CNI, v.Version = "canal", "calico v3.16.0 + flannel v0.12.0"
	case strings.HasPrefix(rest, "cilium"):
		v.CNI, v.Version = "cilium", "v1.8.2"
	case strings.HasPrefix(rest, "flannel"):
		v.CNI, v.Version = "flannel", "v0.12.0"
	case strings.HasPrefix(rest, "kube-ovn"):
		v.CNI, v.Version = "kube-ovn", "v1.3.0"
	case strings.HasPrefix(rest, "kuberouter"):
		v.CNI, v.Version = "kube-router", "untagged image, Aug 2020"
	case strings.HasPrefix(rest, "weavenet"):
		v.CNI, v.Version = "weave", "2.7.0"
	default:
		return v, fmt.Errorf("variant %q: unknown CNI", dir)
	}
	if strings.Contains(rest, "encryption") {
		switch v.CNI {
		case "calico":
			v.Encryption = "wireguard"
		case "antrea", "cilium":
			v.Encryption = "ipsec"
		case "weave":
			v.Encryption = "weave-password"
		}
	}
	var opts []string
	switch cfg {
	case "doc":
		opts = append(opts, "vendor-documented install")
	case "tuning":
		opts = append(opts, "author-tuned")
	case "custom":
		opts = append(opts, "custom configuration")
	}
	for _, o := range []struct{ tag, text string }{{"mtu", "MTU set for jumbo frames"}, {"ebpf", "eBPF dataplane"}, {"encryption", "encryption on"}, {"wo-mirror", "without traffic mirror"}} {
		if strings.Contains(rest, o.tag) {
			opts = append(opts, o.text)
		}
	}
	switch osPart {
	case "18.04-default":
		opts = append(opts, "Ubuntu 18.04, kernel 4.15")
	case "18.04-hwe":
		opts = append(opts, "Ubuntu 18.04 HWE, kernel 5.4")
	case "20.04-default", "20.04":
		opts = append(opts, "Ubuntu 20.04, kernel 5.4")
	}
	if v.CNI == "calico" && strings.Contains(rest, "ebpf") {
		v.Services = "ebpf"
	}
	v.Options = strings.Join(opts, "; ")
	return v, nil
}

// Generate2020 builds the 2020 dataset from infrabuilder-2020-runs.csv with
// the source's stated rule: the mean of the 3 runs for every figure.
func Generate2020(r io.Reader) (*Dataset, error) {
	rows, err := readCSV(r)
	if err != nil {
		return nil, err
	}
	order, byKey := groupRuns(rows)
	d := &Dataset{
		Schema:      Schema,
		Name:        "infrabuilder-2020",
		Title:       "InfraBuilder Kubernetes CNI benchmark August 2020 (10 Gbit/s bare metal)",
		GeneratedBy: GenerateCommand + " (from shared/published-benchmarks/infrabuilder-2020-runs.csv)",
		Sources: []Source{
			{ID: "S3", What: "article, published 2020-09-08", URL: "https://itnext.io/benchmark-results-of-kubernetes-network-plugins-cni-over-10gbit-s-network-updated-august-2020-6e1b757b9e49"},
			{ID: "S4", What: "raw data (knb .knbdata per run)", URL: "https://github.com/InfraBuilder/benchmark-k8s-cni-2020-08", Commit: "d5fa3ef"},
			{ID: "S5", What: "knb measurement tool (v1.4.1 used)", URL: "https://github.com/InfraBuilder/k8s-bench-suite"},
		},
		Setup: "3 Supermicro bare-metal nodes (Xeon E5-1630 v3, 4 cores / 8 threads), 10 Gbit/s switch, MTU 9000 underlay, kubeadm v1.19, " +
			"Ubuntu 18.04/20.04; knb 1.4.1, single-stream iperf3, 10 s per test, inter-node only; 3 runs per variant",
		Aggregation: map[string]string{
			"throughput_bps": "mean of 3 runs (the source: \"we retain the mean value\"), iperf3 receiver Mbit/s x 1e6",
			"cpu_cores":      "mean of runs of the mean of server and client host CPU %, user+nice+system+iowait+steal, x 8 threads / 100",
			"mcpu_per_gbit":  "cpu_cores x 1000 / (throughput_bps / 1e9)",
			"mem_used_bytes": "mean of runs of the mean of server and client `free -m` used MiB, x 1048576",
		},
		Attribution: "published: infrabuilder-2020, mean of 3 runs",
		Notes: []string{
			"Test ids follow the 2024 names: dts = knb p2p_tcp, dus = p2p_udp, sts = p2s_tcp, sus = p2s_udp (all single stream).",
			"Tests ran 10 s (knb's -t 60 is a pod timeout, not the duration).",
			"No bare-metal baseline, no retransmits, no UDP loss in knb's output.",
			"doc-* variants are vendor defaults (Calico, Canal, kube-router and Weave Net kept small MTUs); tuning-* are author-tuned (jumbo MTU, eBPF, encryption).",
			"CPU and memory are host-wide, so CNI agents are counted with the datapath.",
		},
		TestMap: map[string]string{},
	}
	for _, t := range tests2020 {
		if t.id != t.source {
			d.TestMap[t.id] = t.source
		}
	}
	for _, name := range order {
		v, err := variant2020(name)
		if err != nil {
			return nil, err
		}
		runs := map[string]bool{}
		for _, t := range tests2020 {
			rs := byKey[runKey{name, t.source}]
			if len(rs) == 0 {
				continue
			}
			fig := TestFigures{Test: t.id}
			var bw, cpu, mem []float64
			for _, rw := range rs {
				runs[rw["run"]] = true
				if err := v.noteRow(rw); err != nil {
					return nil, err
				}
				b, hasBW, err := rw.num("bw_mbit_s")
				if err != nil {
					return nil, err
				}
				if t.id != "idle" && !hasBW {
					continue
				}
				if hasBW {
					bw = append(bw, b*1e6)
				}
				sc, ok1, err := rw.num("server_cpu_pct_total")
				if err != nil {
					return nil, err
				}
				cc, ok2, err := rw.num("client_cpu_pct_total")
				if err != nil {
					return nil, err
				}
				if ok1 && ok2 {
					cpu = append(cpu, (sc+cc)/2/100*hostThreads2020)
				}
				sm, ok1, err := rw.num("server_ram_used_mb")
				if err != nil {
					return nil, err
				}
				cm, ok2, err := rw.num("client_ram_used_mb")
				if err != nil {
					return nil, err
				}
				if ok1 && ok2 {
					mem = append(mem, (sm+cm)/2*1048576)
				}
				fig.RunsWithResult++
			}
			if len(bw) > 0 {
				fig.ThroughputBps = round(meanOf(bw), 0)
			}
			if len(cpu) > 0 {
				fig.CPUCores = round(meanOf(cpu), 6)
				if len(bw) > 0 {
					fig.MCPUPerGbit = round(meanOf(cpu)*1000/(meanOf(bw)/1e9), 3)
				}
			}
			if len(mem) > 0 {
				fig.MemUsedBytes = round(meanOf(mem), 0)
			}
			v.Tests = append(v.Tests, fig)
		}
		v.Runs = len(runs)
		d.Variants = append(d.Variants, v)
	}
	return d, nil
}

// noteRow records the per-variant facts every row repeats: pod MTU and the
// NetworkPolicy test result.
func (v *Variant) noteRow(rw row) error {
	mtu, ok, err := rw.num("pod_mtu")
	if err != nil {
		return err
	}
	if ok {
		v.PodMTU = int(mtu)
	}
	if in, eg := rw["netpol_ingress"], rw["netpol_egress"]; in != "" || eg != "" {
		v.NetworkPolicy = &PolicyResult{Ingress: in, Egress: eg}
	}
	return nil
}

// Marshal writes a dataset as YAML with a header saying it is generated.
func Marshal(d *Dataset) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by `%s`; do not edit by hand.\n", GenerateCommand)
	fmt.Fprintf(&b, "# Figures: %s. Sources and aggregation rules below.\n", d.Attribution)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
