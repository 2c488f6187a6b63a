package probe

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// TestTransactionsAgainstEcho runs rr and crr against the echo server on
// loopback: every transaction is answered and timed.
func TestTransactionsAgainstEcho(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- RunEcho([]string{"-listen", addr, "-duration", "5s"}, &out) }()
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp4", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, mode := range []string{"rr", "crr"} {
		var b bytes.Buffer
		if err := RunTransactions([]string{"-target", addr, "-mode", mode, "-count", "200", "-duration", "3s"}, &b); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		r, err := ParseConnectResult(b.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if r.OK != 200 || r.Failed != 0 || len(r.SamplesUS) != 200 || r.Mode != mode {
			t.Errorf("%s: %+v", mode, r)
		}
		for _, s := range r.SamplesUS {
			if s <= 0 {
				t.Fatalf("%s: non-positive sample %v", mode, s)
			}
		}
	}
	if !strings.HasPrefix(out.String(), "listening ") {
		t.Errorf("no readiness line: %q", out.String())
	}
}

func TestTransactionsRejectBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{"-target", "nope"},
		{"-target", "127.0.0.1:1", "-mode", "udp"},
		{"-target", "127.0.0.1:1", "-count", "0"},
		{"-target", "127.0.0.1:1", "-duration", "1h"},
	} {
		if err := RunTransactions(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
