package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestProgressTerminal: on a terminal the status line shows the count,
// the window and an ETA from the pace so far, stays under the log lines,
// and goes once the last window has reported.
func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	p := &Progress{w: &out, tty: true, width: 100, now: func() time.Time { return clock }}
	p.Window("throughput", 1, 4, "flannel dts cross-node r1")
	if got := p.statusLine(); got != "throughput: window 1 of 4  flannel dts cross-node r1  ETA –" {
		t.Errorf("first status %q", got)
	}
	fmt.Fprintln(p, "  [1/4] flannel dts")
	clock = clock.Add(10 * time.Second)
	p.Window("throughput", 2, 4, "calico dts cross-node r1")
	if got := p.statusLine(); !strings.HasSuffix(got, "ETA 30s") || !strings.Contains(got, "window 2 of 4") {
		t.Errorf("status after one 10 s window: %q, want window 2 of 4 … ETA 30s", got)
	}
	fmt.Fprintln(p, "  [2/4] calico dts")
	clock = clock.Add(30 * time.Second)
	p.Window("throughput", 4, 4, "host dts cross-node r1")
	fmt.Fprintln(p, "  [4/4] host dts")
	if got := p.statusLine(); got != "" {
		t.Errorf("status after the last window: %q", got)
	}
	s := out.String()
	if !strings.Contains(s, clearLine+"  [1/4] flannel dts\nthroughput: window 1 of 4") {
		t.Errorf("log lines not kept above the status line:\n%q", s)
	}
	if strings.HasSuffix(s, "ETA") || !strings.HasSuffix(s, "  [4/4] host dts\n") {
		t.Errorf("output does not end with the last log line:\n%q", s)
	}
}

// TestProgressPlain: anything but a terminal gets the log lines only, no
// escape codes.
func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out)
	p.Window("throughput", 1, 2, "flannel dts cross-node r1")
	fmt.Fprintln(p, "  [1/2] flannel dts")
	p.Window("throughput", 2, 2, "host dts cross-node r1")
	fmt.Fprintln(p, "  [2/2] host dts")
	if got, want := out.String(), "  [1/2] flannel dts\n  [2/2] host dts\n"; got != want {
		t.Errorf("plain output %q, want %q", got, want)
	}
}
