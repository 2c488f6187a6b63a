package probe

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzArgs feeds the probes' argument parsers what a launcher could pass:
// a probe name and its arguments, one per line. Nothing may panic, every
// rejection is a usage error (exit 2), and whatever is accepted is bounded.
func FuzzArgs(f *testing.F) {
	for _, seed := range []string{
		"connect\n-target\n10.96.0.1:80\n-count\n5000\n-duration\n30s\n-mode\nrate\n-read",
		"connect\n-target=10.0.0.1:8080\n-timeout=200ms",
		"rr\n-target\n10.244.1.5:5201\n-mode\ncrr\n-count\n2000\n-duration\n10s",
		"serve\n-listen\n10.244.1.5:8080\n-reply\nserver\n-duration\n2m",
		"echo\n-listen\n0.0.0.0:5201\n-duration\n30s",
		"connect\n-target\n[::1]:80",
		"rr\n-target\n10.0.0.1:80\n-timeout\n-1s",
		"serve\n-listen\n:80\n-duration\n0s",
		"connect\n-count\n-5",
		"echo\n-listen\n10.0.0.1:1\nextra",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		args := strings.Split(in, "\n")
		probe, rest := args[0], args[1:]
		switch probe {
		case "connect", "rr":
			a, err := parseClientArgs(probe, rest)
			if err != nil {
				usage(t, err)
				return
			}
			if !a.target.Addr().Is4() || a.count < 1 || a.count > 1_000_000 ||
				a.duration <= 0 || a.duration > 10*time.Minute || a.timeout <= 0 || a.timeout > time.Minute {
				t.Fatalf("accepted unbounded %+v from %q", a, rest)
			}
		case "serve", "echo":
			a, err := parseServerArgs(probe, rest)
			if err != nil {
				usage(t, err)
				return
			}
			if a.listen == "" || a.duration <= 0 || a.duration > time.Hour || strings.ContainsAny(a.reply, "\n\x00") {
				t.Fatalf("accepted %+v from %q", a, rest)
			}
		}
	})
}

func usage(t *testing.T, err error) {
	t.Helper()
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("rejection is not a usage error (exit 2): %v", err)
	}
}
