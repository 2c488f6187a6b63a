package probe

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// TestUDPProbeAgainstEcho: every datagram to the echo server comes back;
// to a port nobody listens on, none does (refused or timed out), and the
// result says so instead of reporting zero latency.
func TestUDPProbeAgainstEcho(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- RunUDPEcho([]string{"-listen", addr, "-duration", "3s"}, &out) }()
	time.Sleep(100 * time.Millisecond)

	var b bytes.Buffer
	if err := RunUDPProbe([]string{"-target", addr, "-count", "20", "-duration", "2s", "-timeout", "500ms"}, &b); err != nil {
		t.Fatal(err)
	}
	r, err := ParseConnectResult(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 20 || r.Failed != 0 || r.Mode != "udp" || len(r.SamplesUS) != 20 {
		t.Errorf("echo: %+v", r)
	}
	if !strings.HasPrefix(out.String(), "listening ") {
		t.Errorf("no readiness line: %q", out.String())
	}

	closed, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := closed.LocalAddr().String()
	closed.Close()
	b.Reset()
	if err := RunUDPProbe([]string{"-target", dead, "-count", "2", "-timeout", "200ms"}, &b); err != nil {
		t.Fatal(err)
	}
	if r, err = ParseConnectResult(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if r.OK != 0 || r.Failed != 2 || len(r.Errors) == 0 {
		t.Errorf("no listener: %+v", r)
	}
}

func TestUDPProbeRejectsBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{"-target", "nope"},
		{"-target", "127.0.0.1:1", "-count", "0"},
		{"-target", "127.0.0.1:1", "-timeout", "0s"},
		{"-target", "127.0.0.1:1", "-interval", "-1s"},
	} {
		if err := RunUDPProbe(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if err := RunUDPEcho([]string{"-listen", ""}, &bytes.Buffer{}); err == nil {
		t.Error("empty -listen accepted")
	}
}
