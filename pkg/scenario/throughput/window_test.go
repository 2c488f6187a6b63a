package throughput

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/iperf"
	"github.com/cnilab/cnilab/pkg/lab/labfake"
	"github.com/cnilab/cnilab/pkg/results"
)

// TestMeasureWindowOverPods drives one window through pods that are plain
// values (no namespaces, no cluster): the server starts in the server pod,
// the client in the client pod aimed at the pod IP or the Service, and the
// figures are iperf3's own from real captured output.
func TestMeasureWindowOverPods(t *testing.T) {
	out, err := os.ReadFile("../../iperf/testdata/tcp-8streams.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := iperf.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, test, placement, proxy string
		server, target               string
		wantErr                      string
	}{
		{name: "pod IP cross-node", test: "dtm", placement: CrossNode, server: "server-cross", target: "10.244.2.2"},
		{name: "pod IP same-node", test: "dtm", placement: SameNode, server: "server-same", target: "10.244.1.3"},
		{name: "Service cross-node", test: "stm", placement: CrossNode, proxy: "kube-proxy iptables", server: "server-cross", target: "10.96.0.10"},
		{name: "Service without a proxy", test: "stm", placement: CrossNode, wantErr: "lab has no service proxy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &command.Fake{Responses: map[string]command.FakeResponse{"iperf3": {Func: func(c command.Cmd) (command.Result, error) {
				if slices.Contains(c.Args, "-s") {
					return command.Result{}, nil
				}
				// The client lasts its window, so the CPU samples land in it.
				time.Sleep(1100 * time.Millisecond)
				return command.Result{Stdout: out}, nil
			}}}}
			in := labfake.Lab(f, tc.proxy)
			r := &Runner{Settings: Settings{Seconds: 1, Streams: 8}}
			m := r.Measure(context.Background(), in, "throughput", tc.test, tc.placement, 1)
			if tc.wantErr != "" {
				if !strings.Contains(m.Error, tc.wantErr) {
					t.Fatalf("error %q, want %q", m.Error, tc.wantErr)
				}
				return
			}
			if m.Error != "" {
				t.Fatal(m.Error)
			}
			var server, client *command.Cmd
			for i, c := range f.Calls {
				if slices.Contains(c.Args, "-s") {
					server = &f.Calls[i]
				} else {
					client = &f.Calls[i]
				}
			}
			if server == nil || client == nil {
				t.Fatalf("calls %v: want one server and one client", f.Calls)
			}
			if got := labfake.PodOf(*server); got != tc.server {
				t.Errorf("server ran in %q, want %q", got, tc.server)
			}
			if got := labfake.PodOf(*client); got != "client" {
				t.Errorf("client ran in %q", got)
			}
			if i := slices.Index(client.Args, "-c"); i < 0 || client.Args[i+1] != tc.target {
				t.Errorf("client args %v, want -c %s", client.Args, tc.target)
			}
			if got := m.Metrics[results.ThroughputBps]; got != float64(want.Received) {
				t.Errorf("throughput %v, want iperf3's %v", got, float64(want.Received))
			}
			if m.Metrics[results.PodMTU] != 1450 || m.Provider != "fake" || m.Fidelity != results.Real {
				t.Errorf("measurement %+v lacks the pod MTU, provider or fidelity", m)
			}
			if tc.proxy != "" && m.Proxy != tc.proxy {
				t.Errorf("proxy %q, want %q", m.Proxy, tc.proxy)
			}
		})
	}
}
