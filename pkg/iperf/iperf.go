// Package iperf builds iperf3 command lines and parses iperf3 --json output
// into typed results. A missing figure is an error, never a zero.
package iperf

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// BitsPerSecond is a data rate.
type BitsPerSecond float64

// Gbps returns the rate in Gbit/s.
func (b BitsPerSecond) Gbps() float64 { return float64(b) / 1e9 }

// Protocol of a test.
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// ClientArgs are the knobs of one client run.
type ClientArgs struct {
	Server   string
	Port     int
	Protocol Protocol
	Streams  int
	Seconds  int
	Omit     int
	// Affinity, when set, is iperf3's -A: "0,1" pins the client to CPU 0
	// and asks the server to pin itself to CPU 1.
	Affinity string
}

// Args returns the iperf3 client arguments: JSON output, the first Omit
// seconds dropped, UDP unlimited (-b 0) as in the 2024 benchmark.
func (a ClientArgs) Args() []string {
	args := []string{"--json", "-c", a.Server, "-p", strconv.Itoa(a.Port), "-t", strconv.Itoa(a.Seconds), "-O", strconv.Itoa(a.Omit)}
	if a.Streams > 1 {
		args = append(args, "-P", strconv.Itoa(a.Streams))
	}
	if a.Protocol == UDP {
		args = append(args, "-u", "-b", "0")
	}
	if a.Affinity != "" {
		args = append(args, "-A", a.Affinity)
	}
	// The client gives up on its own if the server is not there; the
	// caller bounds the whole run with a deadline.
	args = append(args, "--connect-timeout", "3000")
	return args
}

// ServerArgs returns arguments for a server that serves exactly one test
// and exits, so no server outlives its window.
func ServerArgs(port int) []string {
	return []string{"-s", "-1", "-p", strconv.Itoa(port)}
}

// Result is what one client run measured.
type Result struct {
	Protocol Protocol
	Streams  int
	// Seconds is the measured (post-omit) duration.
	Seconds float64
	// Received is the receiver's rate (for TCP: sum_received; for UDP the
	// receiver's figure, which excludes lost datagrams).
	Received BitsPerSecond
	// Sent is the sender's rate.
	Sent BitsPerSecond
	// Retransmits is the TCP sender's count (TCP only).
	Retransmits int64
	// LostPercent and JitterMs are the UDP receiver's figures (UDP only).
	LostPercent float64
	JitterMs    float64
	// HostCPUPercent and RemoteCPUPercent are iperf3's own process CPU
	// figures, kept for reference.
	HostCPUPercent   float64
	RemoteCPUPercent float64
}

type sum struct {
	Seconds       *float64 `json:"seconds"`
	BitsPerSecond *float64 `json:"bits_per_second"`
	Retransmits   *int64   `json:"retransmits"`
	JitterMs      *float64 `json:"jitter_ms"`
	LostPercent   *float64 `json:"lost_percent"`
}

type output struct {
	Start struct {
		TestStart *struct {
			Protocol   string `json:"protocol"`
			NumStreams int    `json:"num_streams"`
		} `json:"test_start"`
	} `json:"start"`
	End struct {
		SumSent     *sum `json:"sum_sent"`
		SumReceived *sum `json:"sum_received"`
		Sum         *sum `json:"sum"`
		CPU         *struct {
			HostTotal   float64 `json:"host_total"`
			RemoteTotal float64 `json:"remote_total"`
		} `json:"cpu_utilization_percent"`
	} `json:"end"`
	Error string `json:"error"`
}

// ErrIperf is an error iperf3 itself reported.
var ErrIperf = errors.New("iperf3 reported an error")

// Parse reads iperf3 client --json output.
func Parse(data []byte) (Result, error) {
	var o output
	if err := json.Unmarshal(data, &o); err != nil {
		return Result{}, fmt.Errorf("iperf3 output is not JSON: %w", err)
	}
	if o.Error != "" {
		return Result{}, fmt.Errorf("%w: %s", ErrIperf, o.Error)
	}
	ts := o.Start.TestStart
	if ts == nil {
		return Result{}, errors.New("iperf3 output has no start.test_start")
	}
	r := Result{Protocol: Protocol(lower(ts.Protocol)), Streams: ts.NumStreams}
	need := func(name string, v *float64) (float64, error) {
		if v == nil {
			return 0, fmt.Errorf("iperf3 output lacks %s", name)
		}
		return *v, nil
	}
	var err error
	sent, recv := o.End.SumSent, o.End.SumReceived
	if sent == nil || recv == nil {
		return Result{}, errors.New("iperf3 output lacks end.sum_sent or end.sum_received")
	}
	var s, rc float64
	if s, err = need("end.sum_sent.bits_per_second", sent.BitsPerSecond); err != nil {
		return Result{}, err
	}
	if rc, err = need("end.sum_received.bits_per_second", recv.BitsPerSecond); err != nil {
		return Result{}, err
	}
	if r.Seconds, err = need("end.sum_received.seconds", recv.Seconds); err != nil {
		return Result{}, err
	}
	r.Sent, r.Received = BitsPerSecond(s), BitsPerSecond(rc)
	switch r.Protocol {
	case TCP:
		if sent.Retransmits == nil {
			return Result{}, errors.New("iperf3 TCP output lacks end.sum_sent.retransmits")
		}
		r.Retransmits = *sent.Retransmits
	case UDP:
		u := o.End.Sum
		if u == nil {
			return Result{}, errors.New("iperf3 UDP output lacks end.sum")
		}
		if r.LostPercent, err = need("end.sum.lost_percent", u.LostPercent); err != nil {
			return Result{}, err
		}
		if r.JitterMs, err = need("end.sum.jitter_ms", u.JitterMs); err != nil {
			return Result{}, err
		}
		// iperf3 3.12 can count datagrams sent during --omit against the
		// measured ones and report more than 100 % lost: such a figure is
		// not a loss rate.
		if r.LostPercent < 0 || r.LostPercent > 100 {
			return Result{}, fmt.Errorf("iperf3 reported UDP loss %.1f %%, outside 0–100 (an iperf3 accounting error, not a measurement)", r.LostPercent)
		}
	default:
		return Result{}, fmt.Errorf("iperf3 protocol %q not understood", ts.Protocol)
	}
	if o.End.CPU != nil {
		r.HostCPUPercent, r.RemoteCPUPercent = o.End.CPU.HostTotal, o.End.CPU.RemoteTotal
	}
	if r.Received <= 0 {
		return Result{}, fmt.Errorf("iperf3 received %v bit/s: no data crossed the path", float64(r.Received))
	}
	return r, nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// Version is an iperf3 release, e.g. 3.12.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// MinUDP is the oldest iperf3 whose UDP results cnilab trusts: before
// 3.11 its UDP tests misreport the receiver's figures.
var MinUDP = Version{3, 11}

// ParseVersion reads `iperf3 --version` output ("iperf 3.12 (cJSON 1.7.15)").
func ParseVersion(out []byte) (Version, error) {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "iperf" {
			continue
		}
		var v Version
		num := strings.SplitN(strings.TrimSuffix(f[1], "+"), ".", 3)
		if len(num) < 2 {
			break
		}
		var err1, err2 error
		v.Major, err1 = strconv.Atoi(num[0])
		v.Minor, err2 = strconv.Atoi(num[1])
		if err1 != nil || err2 != nil {
			break
		}
		return v, nil
	}
	return Version{}, fmt.Errorf("iperf3 --version printed no version: %q", strings.TrimSpace(string(out)))
}
