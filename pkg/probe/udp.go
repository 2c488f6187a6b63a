package probe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// RunUDPProbe sends up to -count numbered datagrams to -target, one at a
// time, each waiting up to -timeout for the echo of the same number, for at
// most -duration; -interval spaces them. A datagram answered is a
// transaction; silence or an ICMP error (port unreachable reads as
// "connection refused") is a failure. The NetworkPolicy scenario tells an
// allowed UDP path from a denied one with it, as TCP connects do for TCP.
func RunUDPProbe(args []string, stdout io.Writer) error {
	a, err := parseClientArgs("udp", args)
	if err != nil {
		return err
	}
	ap := a.target
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return err
	}
	defer conn.Close()
	res := ConnectResult{Target: ap.String(), Mode: "udp", Errors: map[string]int{}, SamplesUS: make([]float64, 0, a.count), Stopped: "count"}
	buf := make([]byte, 64)
	start := time.Now()
	for res.Attempts < a.count {
		if time.Since(start) >= a.duration {
			res.Stopped = "duration"
			break
		}
		if res.Attempts > 0 && a.interval > 0 {
			time.Sleep(a.interval)
		}
		res.Attempts++
		us, err := udpOnce(conn, res.Attempts, a.timeout, buf)
		if err != nil {
			res.Failed++
			res.Errors[err.Error()]++
			continue
		}
		res.OK++
		res.SamplesUS = append(res.SamplesUS, us)
	}
	res.Elapsed = time.Since(start).Seconds()
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	return json.NewEncoder(stdout).Encode(res)
}

// udpOnce sends datagram n and waits for its echo; late echoes of earlier
// datagrams are skipped, not counted as this one's.
func udpOnce(conn *net.UDPConn, n int, timeout time.Duration, buf []byte) (float64, error) {
	msg := "cnl-" + strconv.Itoa(n)
	t0 := time.Now()
	if _, err := conn.Write([]byte(msg)); err != nil {
		return 0, fmt.Errorf("write: %w", errors.Unwrap(err))
	}
	deadline := t0.Add(timeout)
	if err := conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	for {
		m, err := conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, errors.New("read: timeout")
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				return 0, errors.New("read: connection refused")
			}
			return 0, fmt.Errorf("read: %w", err)
		}
		if string(buf[:m]) == msg {
			return float64(time.Since(t0).Nanoseconds()) / 1e3, nil
		}
	}
}

// RunUDPEcho answers every datagram on -listen with the same bytes until
// -duration passes or SIGTERM/SIGINT arrives. It prints the same readiness
// line as the TCP servers.
func RunUDPEcho(args []string, stdout io.Writer) error {
	a, err := parseServerArgs("udpecho", args)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp4", a.listen)
	if err != nil {
		return err
	}
	announceUntil(pc.LocalAddr(), a.duration, stdout, pc)
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		_, _ = pc.WriteTo(buf[:n], from)
	}
}
