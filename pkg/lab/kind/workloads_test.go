package kind

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cnilab/cnilab/charts"
	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/helm"
	"github.com/cnilab/cnilab/pkg/lab"
)

var testWorkers = []string{"cnl-r1-flannel-worker", "cnl-r1-flannel-worker2"}

func TestLayout(t *testing.T) {
	l, err := layout(lab.Workloads{Placements: []lab.Placement{lab.SameNode}, ServiceProtocols: []string{"tcp", "UDP"}}, testWorkers)
	if err != nil {
		t.Fatal(err)
	}
	want := benchLayout{
		Pods: []benchPod{
			// cross-node is always there: readiness probes across nodes.
			{Name: "cross-node-client", Node: testWorkers[0], Role: "client", Placement: lab.CrossNode},
			{Name: "cross-node-server", Node: testWorkers[1], Role: "server", Placement: lab.CrossNode},
			{Name: "same-node-client", Node: testWorkers[0], Role: "client", Placement: lab.SameNode},
			{Name: "same-node-server", Node: testWorkers[0], Role: "server", Placement: lab.SameNode},
		},
		Services: []benchService{
			{Name: "cross-node-server", Pod: "cross-node-server", Protocols: []string{"tcp", "udp"}},
			{Name: "same-node-server", Pod: "same-node-server", Protocols: []string{"tcp", "udp"}},
		},
	}
	if d := cmp.Diff(want, l); d != "" {
		t.Errorf("layout (-want +got):\n%s", d)
	}
	for _, bad := range []struct {
		w       lab.Workloads
		workers []string
		err     string
	}{
		{lab.Workloads{}, testWorkers[:1], "cross-node pairs need 2"},
		{lab.Workloads{Placements: []lab.Placement{"same-rack"}}, testWorkers, "unknown placement"},
		{lab.Workloads{ServiceProtocols: []string{"sctp"}}, testWorkers, "unknown Service protocol"},
	} {
		if _, err := layout(bad.w, bad.workers); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("layout(%+v) error %v, want %q", bad.w, err, bad.err)
		}
	}
}

// TestBenchChart renders charts/cnilab-bench as the provider installs it.
func TestBenchChart(t *testing.T) {
	l, err := layout(lab.Workloads{Placements: []lab.Placement{lab.CrossNode, lab.SameNode}, ServiceProtocols: []string{"tcp", "udp"}}, testWorkers)
	if err != nil {
		t.Fatal(err)
	}
	values, err := l.values("cnilab/bench:abc123")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := helm.LoadFS(charts.FS, charts.Bench)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := helm.Render(ch, helm.Release{Name: "cnilab-bench", Namespace: BenchNamespace, Values: values}, "v1.34.4")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := helm.Docs(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		meta := o["metadata"].(map[string]any)
		spec := o["spec"].(map[string]any)
		if meta["namespace"] != BenchNamespace {
			t.Errorf("%s in namespace %v", meta["name"], meta["namespace"])
		}
		switch o["kind"] {
		case "Pod":
			c := spec["containers"].([]any)[0].(map[string]any)
			got = append(got, strings.Join([]string{"pod", meta["name"].(string), spec["nodeName"].(string), c["name"].(string), c["image"].(string), c["imagePullPolicy"].(string), strings.Join(toStrings(c["command"]), " ")}, " "))
		case "Service":
			for _, p := range spec["ports"].([]any) {
				port := p.(map[string]any)
				got = append(got, strings.Join([]string{"svc", meta["name"].(string), spec["type"].(string), spec["selector"].(map[string]any)["cnilab.io/pod"].(string), port["protocol"].(string), toString(port["port"]), toString(port["targetPort"])}, " "))
			}
		default:
			t.Errorf("unexpected %v", o["kind"])
		}
	}
	want := []string{
		"pod cross-node-client cnl-r1-flannel-worker bench cnilab/bench:abc123 Never sleep infinity",
		"pod cross-node-server cnl-r1-flannel-worker2 bench cnilab/bench:abc123 Never sleep infinity",
		"pod same-node-client cnl-r1-flannel-worker bench cnilab/bench:abc123 Never sleep infinity",
		"pod same-node-server cnl-r1-flannel-worker bench cnilab/bench:abc123 Never sleep infinity",
		"svc cross-node-server ClusterIP cross-node-server TCP 5201 5201",
		"svc cross-node-server ClusterIP cross-node-server UDP 5201 5201",
		"svc same-node-server ClusterIP same-node-server TCP 5201 5201",
		"svc same-node-server ClusterIP same-node-server UDP 5201 5201",
	}
	// Helm orders objects by kind (Services before Pods).
	slices.Sort(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("bench objects (-want +got):\n%s", d)
	}
	if _, err := l.values("cnilab/bench"); err == nil {
		t.Error("an untagged bench image was accepted")
	}
}

func toStrings(v any) []string {
	var s []string
	for _, e := range v.([]any) {
		s = append(s, e.(string))
	}
	return s
}

func toString(v any) string { return fmt.Sprint(v) }

var (
	testAddr = netip.MustParseAddr("172.18.0.3")
	errExit1 = errors.New("exit status 1")
)

func TestNodeExecThroughDocker(t *testing.T) {
	f := &command.Fake{Responses: map[string]command.FakeResponse{"docker": {Stdout: "5: flannel.1: <UP> mtu 1450\n"}}}
	n := newNode(f, "cnl-r1-flannel-worker", testAddr, lab.RoleWorker)
	res, err := n.Exec().Run(context.Background(), command.Cmd{Name: "ip", Args: []string{"-d", "link", "show", "flannel.1"}})
	if err != nil || !strings.Contains(string(res.Stdout), "flannel.1") {
		t.Fatalf("Run = %q, %v", res.Stdout, err)
	}
	args := f.Calls[0].Args
	if args[0] != "exec" || args[1] != "cnl-r1-flannel-worker" || args[2] != "sh" || args[3] != "-c" || !strings.HasPrefix(args[5], "/tmp/cnl-") {
		t.Errorf("docker args %q", args)
	}
	if tail := strings.Join(args[6:], " "); tail != "ip -d link show flannel.1" {
		t.Errorf("program %q", tail)
	}
	f.Responses["docker"] = command.FakeResponse{Stderr: "Device \"flannel.1\" does not exist.", Err: errExit1}
	_, err = n.Exec().Run(context.Background(), command.Cmd{Name: "ip", Args: []string{"link", "show", "flannel.1"}})
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "node cnl-r1-flannel-worker") {
		t.Errorf("error %v", err)
	}
}
