// Package testenv decides, in one place, whether a test that needs the
// real kernel may run: under -short (make test-unit) every such test skips
// with its reason, so the unit suite takes seconds and needs no root.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Kernel skips t under -short or without root. why says what the test
// builds (network namespaces, cgroups, BPF programs).
func Kernel(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skips real-kernel tests (" + why + ")")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

// Tools skips t unless every named program is on PATH.
func Tools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("needs %s on PATH", n)
		}
	}
}
