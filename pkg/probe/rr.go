package probe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// RunTransactions measures request/response latency against an echo
// server: -mode rr sends -count one-byte requests over one connection and
// times each round trip; -mode crr opens a fresh connection per request
// (connect, request, response, RST close) and times the whole transaction,
// as netperf's TCP_RR and TCP_CRR do. Bounded by -count and -duration.
func RunTransactions(args []string, stdout io.Writer) error {
	a, err := parseClientArgs("rr", args)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	res := ConnectResult{Target: a.target.String(), Mode: a.mode, Errors: map[string]int{}, SamplesUS: make([]float64, 0, a.count), Stopped: "count"}
	sa := &unix.SockaddrInet4{Port: int(a.target.Port()), Addr: a.target.Addr().As4()}
	tv := unix.NsecToTimeval(a.timeout.Nanoseconds())
	start := time.Now()
	fd := -1
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	for res.Attempts < a.count {
		if time.Since(start) >= a.duration {
			res.Stopped = "duration"
			break
		}
		res.Attempts++
		t0 := time.Now()
		if fd < 0 {
			if fd, err = dial(sa, tv); err != nil {
				fd = -1
				res.Failed++
				res.Errors[err.Error()]++
				continue
			}
			if a.mode == "rr" {
				t0 = time.Now() // rr times round trips only, not the one connect
			}
		}
		err := roundTrip(fd)
		us := float64(time.Since(t0).Nanoseconds()) / 1e3
		if err != nil || a.mode == "crr" {
			unix.Close(fd)
			fd = -1
		}
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

// dial opens a blocking TCP socket to sa with send/receive timeouts and an
// RST close (linger 0), so thousands of transactions leave no TIME_WAIT.
func dial(sa *unix.SockaddrInet4, tv unix.Timeval) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	for _, o := range []int{unix.SO_SNDTIMEO, unix.SO_RCVTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, o, &tv); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	// Small requests must not wait for Nagle.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	err = unix.Connect(fd, sa)
	if errors.Is(err, unix.EINTR) {
		err = awaitConnect(fd, tv)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect: %w", err)
	}
	return fd, nil
}

// roundTrip sends one byte and waits for it to come back.
func roundTrip(fd int) error {
	b := []byte{'x'}
	for {
		_, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		break
	}
	for {
		n, err := unix.Read(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return errors.New("read: connection closed")
		}
		return nil
	}
}

// RunEcho listens on -listen and echoes whatever each connection sends
// until it closes, for at most -duration or until SIGTERM/SIGINT.
func RunEcho(args []string, stdout io.Writer) error {
	a, err := parseServerArgs("echo", args)
	if err != nil {
		return err
	}
	return serve(a.listen, a.duration, stdout, func(c net.Conn) {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		_, _ = io.Copy(c, c)
	})
}
