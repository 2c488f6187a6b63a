// Package probe holds the small programs cnilab runs inside lab namespaces:
// "connect" opens many fresh TCP connections and times connect(), "serve"
// is the backend that answers them. They run as separate processes (the
// cnilab binary re-executed, "cnilab probe connect ..."), so they can be
// born in a pod's network namespace and in a cgroup that socket-LB hooks.
//
// CLI wiring is one line: a hidden "probe" command whose RunE calls
// probe.Main(args, os.Stdout, os.Stderr) with flag parsing disabled.
package probe

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/pkg/command"
)

// Main runs a probe subcommand and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: probe connect|serve|rr|echo|udp|udpecho [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "connect":
		err = RunConnectProbe(args[1:], stdout)
	case "serve":
		err = RunServe(args[1:], stdout)
	case "rr":
		err = RunTransactions(args[1:], stdout)
	case "echo":
		err = RunEcho(args[1:], stdout)
	case "udp":
		err = RunUDPProbe(args[1:], stdout)
	case "udpecho":
		err = RunUDPEcho(args[1:], stdout)
	default:
		err = fmt.Errorf("unknown probe %q (connect, serve, rr, echo, udp, udpecho)", args[0])
	}
	if err != nil {
		fmt.Fprintln(stderr, "probe:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }

// ConnectResult is what "probe connect" prints as one JSON document.
type ConnectResult struct {
	Target   string  `json:"target"`
	Mode     string  `json:"mode"`
	Attempts int     `json:"attempts"`
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	Elapsed  float64 `json:"elapsed_s"`
	// SamplesUS are connect() completion times of successful attempts,
	// microseconds, in the order measured (kept raw for re-analysis).
	SamplesUS []float64 `json:"samples_us,omitempty"`
	// Replies tallies what backends answered (-read), to see the spread.
	Replies map[string]int `json:"replies,omitempty"`
	// Errors tallies failure messages.
	Errors map[string]int `json:"errors,omitempty"`
	// Stopped says which bound ended the run: "count" or "duration".
	Stopped string `json:"stopped"`
}

// Rate is successful connects per second over the whole run.
func (r ConnectResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed
}

// ParseConnectResult decodes "probe connect" output and checks it is
// complete: a run with no attempts is an error, not a zero.
func ParseConnectResult(b []byte) (ConnectResult, error) {
	var r ConnectResult
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("connect probe output: %w", err)
	}
	if r.Attempts == 0 || r.Attempts != r.OK+r.Failed {
		return r, fmt.Errorf("connect probe output: %d attempts, %d ok, %d failed", r.Attempts, r.OK, r.Failed)
	}
	if (r.Mode == "latency" || r.Mode == "rr" || r.Mode == "crr" || r.Mode == "udp") && len(r.SamplesUS) != r.OK {
		return r, fmt.Errorf("connect probe output: %d samples for %d successful connects", len(r.SamplesUS), r.OK)
	}
	return r, nil
}

// RunConnectProbe opens up to -count fresh TCP connections to -target, one
// after another, for at most -duration. Each connect() is a blocking
// syscall timed on its own; the socket is then closed with RST (linger 0)
// so thousands of probes leave no TIME_WAIT behind to exhaust ports.
func RunConnectProbe(args []string, stdout io.Writer) error {
	a, err := parseClientArgs("connect", args)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	res := ConnectResult{Target: a.target.String(), Mode: a.mode, Errors: map[string]int{}}
	if a.read {
		res.Replies = map[string]int{}
	}
	if a.mode == "latency" {
		res.SamplesUS = make([]float64, 0, a.count)
	}
	sa := &unix.SockaddrInet4{Port: int(a.target.Port()), Addr: a.target.Addr().As4()}
	tv := unix.NsecToTimeval(a.timeout.Nanoseconds())
	start := time.Now()
	res.Stopped = "count"
	buf := make([]byte, 256)
	for res.Attempts < a.count {
		if time.Since(start) >= a.duration {
			res.Stopped = "duration"
			break
		}
		res.Attempts++
		us, reply, err := connectOnce(sa, tv, a.read, buf)
		if err != nil {
			res.Failed++
			res.Errors[err.Error()]++
			continue
		}
		res.OK++
		if a.mode == "latency" {
			res.SamplesUS = append(res.SamplesUS, us)
		}
		if a.read {
			res.Replies[reply]++
		}
	}
	res.Elapsed = time.Since(start).Seconds()
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	return json.NewEncoder(stdout).Encode(res)
}

func connectOnce(sa *unix.SockaddrInet4, tv unix.Timeval, read bool, buf []byte) (float64, string, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, "", fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	// SO_SNDTIMEO bounds a blocking connect(); SO_RCVTIMEO the reply read.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return 0, "", err
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, "", err
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		return 0, "", err
	}
	t0 := time.Now()
	err = unix.Connect(fd, sa)
	if errors.Is(err, unix.EINTR) {
		// A signal (the Go runtime's preemption SIGURG) interrupted the
		// blocking connect; the handshake goes on in the kernel. Wait for
		// it and take its outcome.
		err = awaitConnect(fd, tv)
	}
	us := float64(time.Since(t0).Nanoseconds()) / 1e3
	if err != nil {
		return 0, "", fmt.Errorf("connect: %w", err)
	}
	if !read {
		return us, "", nil
	}
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("read: %w", err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return us, strings.TrimSpace(string(buf[:n])), nil
}

// awaitConnect waits, bounded by tv, for an interrupted connect to finish
// and returns its result (SO_ERROR).
func awaitConnect(fd int, tv unix.Timeval) error {
	deadline := time.Now().Add(time.Duration(tv.Nano()))
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.ETIMEDOUT
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.ETIMEDOUT
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return err
		}
		if soerr != 0 {
			return unix.Errno(soerr)
		}
		return nil
	}
}

// clientArgs are a client probe's (connect, rr) flags, checked.
type clientArgs struct {
	target   netip.AddrPort
	count    int
	duration time.Duration
	timeout  time.Duration
	mode     string
	read     bool
	// interval paces rr's transactions: an established connection watched
	// for a while (does a new deny cut it?) needs no busy loop.
	interval time.Duration
}

// clientModes are the -mode values each client probe takes; the first is
// its default.
var clientModes = map[string][]string{"connect": {"latency", "rate"}, "rr": {"rr", "crr"}, "udp": {"udp"}}

// parseClientArgs parses and checks a client probe's flags: an IPv4
// target, a loop bounded in count and time, a positive per-attempt timeout
// and a known mode. Every problem is a usage error (exit 2).
func parseClientArgs(probe string, args []string) (clientArgs, error) {
	modes := clientModes[probe]
	fs := flag.NewFlagSet("probe "+probe, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	target := fs.String("target", "", "ip:port to connect to")
	count := fs.Int("count", 1000, "maximum attempts (1..1000000)")
	dur := fs.Duration("duration", 10*time.Second, "maximum run time (≤ 10m)")
	timeout := fs.Duration("timeout", time.Second, "per-attempt timeout (≤ 1m)")
	mode := fs.String("mode", modes[0], strings.Join(modes, " or "))
	var read *bool
	if probe == "connect" {
		read = fs.Bool("read", false, "read the backend's reply and tally it")
	}
	var interval *time.Duration
	if probe == "rr" || probe == "udp" {
		interval = fs.Duration("interval", 0, "pause between transactions")
	}
	if err := fs.Parse(args); err != nil {
		return clientArgs{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return clientArgs{}, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	ap, err := netip.ParseAddrPort(*target)
	switch {
	case err != nil || !ap.Addr().Is4():
		return clientArgs{}, usageError{fmt.Errorf("-target %q: want IPv4 ip:port", *target)}
	case *count < 1 || *count > 1_000_000:
		return clientArgs{}, usageError{fmt.Errorf("-count %d out of range", *count)}
	case *dur <= 0 || *dur > 10*time.Minute:
		return clientArgs{}, usageError{fmt.Errorf("-duration %v out of range", *dur)}
	case *timeout <= 0 || *timeout > time.Minute:
		// 0 would mean no timeout at all to SO_SNDTIMEO: one black-holed
		// attempt would outlive -duration.
		return clientArgs{}, usageError{fmt.Errorf("-timeout %v out of range", *timeout)}
	case !slices.Contains(modes, *mode):
		return clientArgs{}, usageError{fmt.Errorf("-mode %q: %s", *mode, strings.Join(modes, " or "))}
	}
	a := clientArgs{target: ap, count: *count, duration: *dur, timeout: *timeout, mode: *mode}
	if read != nil {
		a.read = *read
	}
	if interval != nil {
		if *interval < 0 || *interval > time.Minute {
			return clientArgs{}, usageError{fmt.Errorf("-interval %v out of range", *interval)}
		}
		a.interval = *interval
	}
	return a, nil
}

// serverArgs are a server probe's (serve, echo) flags, checked.
type serverArgs struct {
	listen   string
	duration time.Duration
	reply    string
}

// parseServerArgs parses and checks a server probe's flags: an IPv4
// listen address and a lifetime of at most an hour.
func parseServerArgs(probe string, args []string) (serverArgs, error) {
	fs := flag.NewFlagSet("probe "+probe, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "", "ip:port to listen on")
	dur := fs.Duration("duration", 10*time.Minute, "maximum lifetime (≤ 1h)")
	var reply *string
	if probe == "serve" {
		reply = fs.String("reply", "", "text sent to every client")
	}
	if err := fs.Parse(args); err != nil {
		return serverArgs{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return serverArgs{}, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if ap, err := netip.ParseAddrPort(*listen); err != nil || !ap.Addr().Is4() {
		return serverArgs{}, usageError{fmt.Errorf("-listen %q: want IPv4 ip:port", *listen)}
	}
	if *dur <= 0 || *dur > time.Hour {
		return serverArgs{}, usageError{fmt.Errorf("-duration %v out of range", *dur)}
	}
	a := serverArgs{listen: *listen, duration: *dur}
	if reply != nil {
		if strings.ContainsAny(*reply, "\n\x00") {
			return serverArgs{}, usageError{fmt.Errorf("-reply %q: one line of text", *reply)}
		}
		a.reply = *reply
	}
	return a, nil
}

// RunServe listens on -listen and answers every connection with -reply,
// then closes it, until -duration passes or it gets SIGTERM/SIGINT.
func RunServe(args []string, stdout io.Writer) error {
	a, err := parseServerArgs("serve", args)
	if err != nil {
		return err
	}
	msg := []byte(a.reply + "\n")
	return serve(a.listen, a.duration, stdout, func(c net.Conn) {
		_, _ = c.Write(msg)
	})
}

// announceUntil prints the readiness line the launchers wait for
// ("listening ip:port", synced so a pipe reader sees it at once), then
// closes l when duration passes or SIGTERM/SIGINT arrives, which ends the
// caller's accept or read loop with net.ErrClosed. Every probe server,
// TCP or UDP, uses it.
func announceUntil(addr net.Addr, duration time.Duration, stdout io.Writer, l io.Closer) {
	fmt.Fprintf(stdout, "listening %s\n", addr)
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		defer signal.Stop(stop)
		select {
		case <-stop:
		case <-time.After(duration):
		}
		l.Close()
	}()
}

// serve listens on listen, prints the readiness line the launchers wait
// for, and hands every connection to handle (which runs on its own
// goroutine; the connection is closed when it returns), until duration
// passes or SIGTERM/SIGINT arrives.
func serve(listen string, duration time.Duration, stdout io.Writer, handle func(net.Conn)) error {
	ln, err := net.Listen("tcp4", listen)
	if err != nil {
		return err
	}
	announceUntil(ln.Addr(), duration, stdout, ln)
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}

// Launcher says how to start a probe process: the cnilab binary with
// "probe" (the CLI), or a test binary that dispatches to Main.
type Launcher struct {
	Path string
	Args []string
	Env  []string
}

// Cmd returns the command running probe sub with args.
func (l Launcher) Cmd(sub string, args ...string) command.Cmd {
	a := append(append(append([]string(nil), l.Args...), sub), args...)
	return command.Cmd{Name: l.Path, Args: a, Env: l.Env}
}

// SelfLauncher re-executes the running binary as "<self> probe ...", which
// is how the cnilab CLI starts probes.
func SelfLauncher() (Launcher, error) {
	exe, err := os.Executable()
	if err != nil {
		return Launcher{}, err
	}
	return Launcher{Path: exe, Args: []string{"probe"}}, nil
}

// TestEnv is set in the environment of a test binary re-executed as a
// probe; tests' TestMain calls MaybeRunFromTest first thing.
const TestEnv = "CNILAB_PROBE_REEXEC"

// TestLauncher re-executes the current test binary as a probe.
func TestLauncher() Launcher {
	return Launcher{Path: os.Args[0], Env: []string{TestEnv + "=1"}}
}

// MaybeRunFromTest runs a probe and exits when the process was started by
// TestLauncher; otherwise it returns and the tests run.
func MaybeRunFromTest() {
	if os.Getenv(TestEnv) != "1" {
		return
	}
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
