// Package cpustat reads machine-wide CPU time from /proc/stat. cnilab counts
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
		if len(f) < 9 {
			return Sample{}, fmt.Errorf("/proc/stat cpu line has %d fields, want ≥ 8 values", len(f)-1)
		}
		v := make([]uint64, 8)
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return Sample{}, fmt.Errorf("/proc/stat cpu field %d: %w", i+1, err)
			}
			v[i] = n
		}
		user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		return Sample{At: at, Busy: user + nice + system + irq + softirq + steal, Idle: idle + iowait, Softirq: softirq}, nil
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
