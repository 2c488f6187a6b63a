package ipvs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/pkg/proxy"
)

func TestDetect(t *testing.T) {
	present := filepath.Join(t.TempDir(), "ip_vs")
	if err := os.WriteFile(present, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	tests := []struct {
		name        string
		lookup      error
		proc        string
		wantNil     bool
		wantNotRepr bool
	}{
		{"genl family found", nil, missing, true, false},
		{"proc file only", unix.ENOENT, present, true, false},
		{"absent", unix.ENOENT, missing, false, true},
		{"netlink broken", unix.EPERM, missing, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := detect(func() error { return tc.lookup }, tc.proc)
			if (err == nil) != tc.wantNil {
				t.Fatalf("err = %v", err)
			}
			if got := errors.Is(err, proxy.ErrNotReproducible); got != tc.wantNotRepr {
				t.Errorf("ErrNotReproducible = %v, want %v (%v)", got, tc.wantNotRepr, err)
			}
			if tc.wantNotRepr && !strings.Contains(err.Error(), "not reproducible here: CONFIG_IP_VS missing") {
				t.Errorf("message %q", err)
			}
		})
	}
}

// TestDetectHere runs the real detection; on the target kernel
// (CONFIG_IP_VS unset) it must say so.
func TestDetectHere(t *testing.T) {
	err := Detect()
	t.Logf("ipvs on this kernel: %v", err)
	if _, perr := New(proxy.Target{}); perr == nil {
		t.Fatal("New returned a proxy; there is no IPVS proxy to return")
	}
}

// On a kernel that has IPVS the lab must still come up on its fallback,
// saying why, rather than fail: New reports ErrNotBuilt there.
func TestNewOnAKernelWithIPVS(t *testing.T) {
	_, err := newWith(func() error { return nil }, proxy.Target{})
	if !errors.Is(err, proxy.ErrNotBuilt) || errors.Is(err, proxy.ErrNotReproducible) {
		t.Errorf("err %v, want ErrNotBuilt", err)
	}
	_, err = newWith(func() error { return fmt.Errorf("%w: CONFIG_IP_VS missing", proxy.ErrNotReproducible) }, proxy.Target{})
	if !errors.Is(err, proxy.ErrNotReproducible) {
		t.Errorf("err %v, want ErrNotReproducible", err)
	}
}
