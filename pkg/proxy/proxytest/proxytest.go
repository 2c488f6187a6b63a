// Package proxytest holds what the proxy backends' tests share: the golden
// file helper (go test -update rewrites testdata/*.golden) and the sample
// services the goldens are made from.
package proxytest

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/proxy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// Golden compares got with testdata/<name>.golden, or rewrites the file
// with -update.
func Golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n%s", path, diff(string(want), got))
	}
}

// diff shows the first differing lines, enough to see what changed.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, a, c)
			if shown++; shown == 5 {
				break
			}
		}
	}
	return b.String()
}

// Services returns n services of e endpoints each, deterministic:
// ns1/svc<i>:p80, ClusterIP 172.30.0.<i+1>, endpoints 10.180.<i>.<j+1>:8080.
func Services(n, e int) []proxy.Service {
	out := make([]proxy.Service, n)
	for i := range out {
		s := proxy.Service{
			Namespace: "ns1", Name: fmt.Sprintf("svc%d", i+1), PortName: "p80",
			ClusterIP: netip.AddrFrom4([4]byte{172, 30, byte((i + 1) >> 8), byte(i + 1)}),
			Port:      80, Protocol: proxy.TCP,
		}
		for j := 0; j < e; j++ {
			s.Endpoints = append(s.Endpoints, proxy.Endpoint{IP: netip.AddrFrom4([4]byte{10, 180, byte(i), byte(j + 1)}), Port: 8080})
		}
		out[i] = s
	}
	return out
}

// ClusterCIDR is the pod CIDR the sample services assume.
var ClusterCIDR = netip.MustParsePrefix("10.0.0.0/8")
