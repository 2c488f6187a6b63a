// Package cpustat reads machine-wide CPU time from /proc/stat (and, per CPU,
// the network softirqs from /proc/softirqs). cnilab counts
// every non-idle mode, softirq and irq included: on a packet path most of the
// cost of encapsulation and forwarding is softirq, which the 2024 dataset's
// user+system figures leave out.
package cpustat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cnilab/cnilab/pkg/results"
)

// userHZ is the unit of /proc/stat (USER_HZ), 100 on every Linux ABI cnilab
// runs on.
const userHZ = 100

// Sample is one reading of the aggregate "cpu" line, in ticks.
type Sample struct {
	At time.Time
	// Busy is user+nice+system+irq+softirq+steal (guest time is already in
	// user and nice).
	Busy uint64
	// Idle is idle+iowait.
	Idle uint64
	// Softirq is kept apart so reports can show how much of the cost it is.
	Softirq uint64
}

// Parse reads the aggregate cpu line of /proc/stat content.
func Parse(data []byte, at time.Time) (Sample, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		t, err := ticks(f)
		if err != nil {
			return Sample{}, err
		}
		t.At = at
		return t, nil
	}
	return Sample{}, errors.New("/proc/stat has no aggregate cpu line")
}

// Read samples /proc/stat now.
func Read() (Sample, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Sample{}, err
	}
	return Parse(data, time.Now())
}

// Usage is CPU use between two samples.
type Usage struct {
	// Cores is the average number of busy cores over the interval.
	Cores float64
	// SoftirqCores is the softirq part of Cores.
	SoftirqCores float64
}

// Between returns the usage from a to b.
func Between(a, b Sample) (Usage, error) {
	secs := b.At.Sub(a.At).Seconds()
	if secs <= 0 {
		return Usage{}, errors.New("cpu samples are not in time order")
	}
	if b.Busy < a.Busy || b.Softirq < a.Softirq {
		return Usage{}, errors.New("cpu counters went backwards")
	}
	return Usage{
		Cores:        float64(b.Busy-a.Busy) / userHZ / secs,
		SoftirqCores: float64(b.Softirq-a.Softirq) / userHZ / secs,
	}, nil
}

// CPU is one CPU's counters: ticks from its cpuN line of /proc/stat, and the
// NET_RX and NET_TX softirqs it ran from /proc/softirqs.
type CPU struct {
	CPU     int
	Busy    uint64
	Idle    uint64
	Softirq uint64
	NetRx   uint64
	NetTx   uint64
}

// Snapshot is one reading of the machine: the aggregate line and every
// online CPU.
type Snapshot struct {
	Sample
	CPUs []CPU
}

// ParseCPUs reads the per-CPU lines (cpu0, cpu1, ...) of /proc/stat
// content, in the order the kernel lists them (online CPUs only).
func ParseCPUs(data []byte) ([]CPU, error) {
	var out []CPU
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20) // the intr line is long
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || len(f[0]) <= 3 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			return nil, fmt.Errorf("/proc/stat line %q: not a cpuN line", f[0])
		}
		t, err := ticks(f)
		if err != nil {
			return nil, err
		}
		out = append(out, CPU{CPU: n, Busy: t.Busy, Idle: t.Idle, Softirq: t.Softirq})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/stat: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("/proc/stat has no cpuN line")
	}
	return out, nil
}

// ticks reads the eight counters after a cpu line's name.
func ticks(f []string) (Sample, error) {
	if len(f) < 9 {
		return Sample{}, fmt.Errorf("/proc/stat %s line has %d fields, want ≥ 8 values", f[0], len(f)-1)
	}
	v := make([]uint64, 8)
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return Sample{}, fmt.Errorf("/proc/stat %s field %d: %w", f[0], i+1, err)
		}
		v[i] = n
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	return Sample{Busy: user + nice + system + irq + softirq + steal, Idle: idle + iowait, Softirq: softirq}, nil
}

// NetSoftirqs are one CPU's NET_RX and NET_TX counts.
type NetSoftirqs struct{ Rx, Tx uint64 }

// ParseSoftirqs reads the NET_RX and NET_TX rows of /proc/softirqs content,
// keyed by CPU number (the header names the columns CPU0 CPU1 ...).
func ParseSoftirqs(data []byte) (map[int]NetSoftirqs, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() {
		return nil, errors.New("/proc/softirqs is empty")
	}
	var cols []int
	for _, h := range strings.Fields(sc.Text()) {
		n, err := strconv.Atoi(strings.TrimPrefix(h, "CPU"))
		if err != nil || !strings.HasPrefix(h, "CPU") {
			return nil, fmt.Errorf("/proc/softirqs header column %q: want CPUn", h)
		}
		cols = append(cols, n)
	}
	if len(cols) == 0 {
		return nil, errors.New("/proc/softirqs header names no CPU")
	}
	out := map[int]NetSoftirqs{}
	var haveRx, haveTx bool
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || (f[0] != "NET_RX:" && f[0] != "NET_TX:") {
			continue
		}
		if len(f)-1 != len(cols) {
			return nil, fmt.Errorf("/proc/softirqs %s has %d values for %d CPUs", f[0], len(f)-1, len(cols))
		}
		for i, s := range f[1:] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/softirqs %s CPU%d: %w", f[0], cols[i], err)
			}
			e := out[cols[i]]
			if f[0] == "NET_RX:" {
				e.Rx, haveRx = v, true
			} else {
				e.Tx, haveTx = v, true
			}
			out[cols[i]] = e
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/softirqs: %w", err)
	}
	if !haveRx || !haveTx {
		return nil, errors.New("/proc/softirqs lacks the NET_RX or NET_TX row")
	}
	return out, nil
}

// ParseSnapshot reads /proc/stat and /proc/softirqs content taken at at.
func ParseSnapshot(stat, softirqs []byte, at time.Time) (Snapshot, error) {
	agg, err := Parse(stat, at)
	if err != nil {
		return Snapshot{}, err
	}
	cpus, err := ParseCPUs(stat)
	if err != nil {
		return Snapshot{}, err
	}
	net, err := ParseSoftirqs(softirqs)
	if err != nil {
		return Snapshot{}, err
	}
	for i := range cpus {
		n, ok := net[cpus[i].CPU]
		if !ok {
			return Snapshot{}, fmt.Errorf("/proc/softirqs has no column for cpu%d", cpus[i].CPU)
		}
		cpus[i].NetRx, cpus[i].NetTx = n.Rx, n.Tx
	}
	return Snapshot{Sample: agg, CPUs: cpus}, nil
}

// ReadSnapshot reads /proc/stat and /proc/softirqs now.
func ReadSnapshot() (Snapshot, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Snapshot{}, err
	}
	at := time.Now()
	soft, err := os.ReadFile("/proc/softirqs")
	if err != nil {
		return Snapshot{}, err
	}
	return ParseSnapshot(stat, soft, at)
}

// ErrNoTicks says an interval was shorter than one tick (10 ms) on some
// CPU: there is no per-CPU share to give.
var ErrNoTicks = errors.New("no ticks between the samples (interval shorter than 1/USER_HZ)")

// PerCPU is each CPU's share of the interval from a to b: busy and softirq
// in percent of that CPU's own ticks, and the network softirqs it ran. A CPU
// that went offline or came online in between is left out; no CPU in both
// is an error.
func PerCPU(a, b Snapshot) ([]results.CPUWindow, error) {
	before := map[int]CPU{}
	for _, c := range a.CPUs {
		before[c.CPU] = c
	}
	var out []results.CPUWindow
	for _, c := range b.CPUs {
		p, ok := before[c.CPU]
		if !ok {
			continue
		}
		if c.Busy < p.Busy || c.Idle < p.Idle || c.Softirq < p.Softirq || c.NetRx < p.NetRx || c.NetTx < p.NetTx {
			return nil, fmt.Errorf("cpu%d counters went backwards", c.CPU)
		}
		total := (c.Busy - p.Busy) + (c.Idle - p.Idle)
		if total == 0 {
			return nil, fmt.Errorf("cpu%d: %w", c.CPU, ErrNoTicks)
		}
		out = append(out, results.CPUWindow{CPU: c.CPU,
			BusyPct:    float64(c.Busy-p.Busy) / float64(total) * 100,
			SoftirqPct: float64(c.Softirq-p.Softirq) / float64(total) * 100,
			NetRx:      c.NetRx - p.NetRx, NetTx: c.NetTx - p.NetTx})
	}
	if len(out) == 0 {
		return nil, errors.New("no CPU is in both samples")
	}
	return out, nil
}

// Reader takes a snapshot; ReadSnapshot is the machine's, tests pass their
// own.
type Reader func() (Snapshot, error)
