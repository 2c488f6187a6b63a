package cnilab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/internal/hostsnap"
	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/netplan"
	"github.com/cnilab/cnilab/pkg/results"
)

// built is the cnilab binary the tests share: linking it (kind, Helm and
// client-go inside) takes long enough that every test building its own
// dominated the package's time.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binary builds cnilab once per test run.
func binary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "cnilab-cli-test-")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "cnilab")
		if out, err := exec.Command("go", "build", "-o", built.bin, "github.com/cnilab/cnilab/cmd/cnilab").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

func needRootAndIperf(t *testing.T) {
	t.Helper()
	testenv.Kernel(t, "builds network-namespace labs")
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3 (apt-get install iperf3)")
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func namespaces(t *testing.T) []string {
	names, err := netplan.ListNamespaces("cnl-")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestMalformedDefinitionsExit2 proves bad input stops cnilab before it
// creates anything, naming file, line and field.
func TestMalformedDefinitionsExit2(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flannel.yaml"), []byte("name: flannel\ncni: flannel\nnetns:\n  model: flannel\n  pod_cidr: 10.244.0.0/33\n"), 0o644)
	out := t.TempDir()
	before := namespaces(t)
	cmd := exec.Command(bin, "compare", "--lab-dir", dir, "--cni", "flannel", "--out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exitCode(err) != cli.ExitInvalid {
		t.Fatalf("exit %d, want 2; stderr: %s", exitCode(err), stderr.String())
	}
	if !strings.Contains(stderr.String(), "flannel.yaml:5: netns.pod_cidr:") {
		t.Errorf("stderr lacks file:line: field: %s", stderr.String())
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("created %d entries in --out before validation", len(entries))
	}
	if after := namespaces(t); len(after) > len(before) {
		t.Errorf("namespaces created: %v", after)
	}
	for _, args := range [][]string{
		{"compare", "--cni", "flanel"},
		{"compare", "--scenario", "nope"},
		{"compare", "--profile", "slow"},
		{"compare", "-o", "yaml"},
		{"down"},
		{"down", "--run", "../../etc"},
	} {
		if code := exitCode(exec.Command(bin, args...).Run()); code != cli.ExitInvalid {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestCompareJSONAndCleanup runs a small comparison end to end: stdout is
// one results document, the report exists, and no namespace is left.
func TestCompareJSONAndCleanup(t *testing.T) {
	needRootAndIperf(t)
	bin := binary(t)
	out := t.TempDir()
	before := hostsnap.Take(t)
	// A short matrix keeps the test quick; flannel programs iptables
	// services, cilium attaches the eBPF socket-LB.
	scen := t.TempDir()
	os.WriteFile(filepath.Join(scen, "throughput.yaml"), []byte("name: throughput\nkind: throughput\ntests: [idle, dts, sts]\nprofiles:\n  quick: {duration_s: 1, omit_s: 1, repeats: 2}\n"), 0o644)
	cmd := exec.Command(bin, "compare", "--cni", "host,flannel,cilium,weave", "--scenario-dir", scen, "-o", "json", "--out", out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("compare: %v\n%s", err, stderr.String())
	}
	doc, err := results.Decode(&stdout)
	if err != nil {
		t.Fatalf("stdout is not one results document: %v\n%s", err, stdout.String())
	}
	hostsnap.Check(t, before)
	if len(doc.Labs) != 4 {
		t.Fatalf("%d labs", len(doc.Labs))
	}
	w, _ := doc.LabByName("weave")
	if w.Status != results.StatusUnavailable || !strings.Contains(w.Error, "not modelled") {
		t.Errorf("weave: %+v", w)
	}
	found := false
	for _, s := range doc.Summaries {
		if s.Lab == "flannel" && s.Test == "dts" && s.Metric == results.ThroughputBps {
			found = true
			if s.N != 2 || s.RatioToHost == nil || s.Provider != "netns" {
				t.Errorf("flannel dts summary: %+v", s)
			}
		}
	}
	if !found {
		t.Error("no flannel dts summary")
	}
	proxies := map[string]string{}
	for _, s := range doc.Summaries {
		if s.Test == "sts" && s.Metric == results.ThroughputBps {
			proxies[s.Lab] = s.Proxy
		}
	}
	if !strings.HasPrefix(proxies["flannel"], "iptables-") || proxies["cilium"] != "ebpf" { // named by backend: iptables-nft or iptables-legacy
		t.Errorf("service tests by proxy: %v, want flannel on an iptables backend and cilium ebpf", proxies)
	}
	matches, _ := filepath.Glob(filepath.Join(out, "*", "report.md"))
	if len(matches) != 1 {
		t.Fatalf("report.md: %v", matches)
	}
	if left, _ := netplan.ListNamespaces("cnl-" + doc.Run.ID); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestInterruptCleansUp sends SIGINT in the middle of the measurements: the
// run stops, keeps what it measured, and leaves no namespace behind.
func TestInterruptCleansUp(t *testing.T) {
	needRootAndIperf(t)
	bin := binary(t)
	out := t.TempDir()
	cmd := exec.Command(bin, "compare", "--cni", "host,flannel,calico", "--repeats", "3", "--duration", "2s", "--out", out)
	stderrR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	runRE := regexp.MustCompile(`run ([0-9a-f]+):`)
	buf := make([]byte, 4096)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		n, err := stderrR.Read(buf)
		log.Write(buf[:n])
		if strings.Contains(log.String(), "[2/") || err != nil {
			break
		}
	}
	m := runRE.FindStringSubmatch(log.String())
	if m == nil {
		cmd.Process.Kill()
		t.Fatalf("no run id in progress output:\n%s", log.String())
	}
	if left, _ := netplan.ListNamespaces("cnl-" + m[1]); len(left) == 0 {
		t.Fatal("labs were not up when interrupting")
	}
	cmd.Process.Signal(syscall.SIGINT)
	go func() { _, _ = bytesCopy(&log, stderrR) }()
	err = cmd.Wait()
	if code := exitCode(err); code != cli.ExitFailed {
		t.Errorf("exit %d after SIGINT, want 1 (partial results)", code)
	}
	if left, _ := netplan.ListNamespaces("cnl-" + m[1]); len(left) > 0 {
		t.Errorf("namespaces left after SIGINT: %v", left)
	}
	if ps, _ := exec.Command("pgrep", "-f", "iperf3").Output(); len(ps) > 0 {
		t.Logf("iperf3 processes still present (may belong to other tests): %s", ps)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*", "results.json"))
	if len(files) != 1 {
		t.Fatalf("results.json: %v", files)
	}
	doc, err := results.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Measurements) == 0 {
		t.Error("interrupted run kept no measurements")
	}
}

func bytesCopy(dst *bytes.Buffer, src interface{ Read([]byte) (int, error) }) (int64, error) {
	var n int64
	buf := make([]byte, 4096)
	for {
		k, err := src.Read(buf)
		dst.Write(buf[:k])
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
}

// TestDiffExitCodes: nightly CI relies on diff failing on a regression.
func TestDiffExitCodes(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	write := func(name string, gbps float64) string {
		doc := results.Document{Schema: results.Schema, Run: results.Run{ID: name}, Summaries: []results.Summary{{
			Lab: "flannel", Scenario: "throughput", Test: "dts", Placement: "cross-node", Metric: results.ThroughputBps,
			Median: gbps * 1e9, CI95Low: gbps * 0.98e9, CI95High: gbps * 1.02e9, CILevel: 0.75, CIMethod: "order-statistic", N: 3, Provider: "netns", Fidelity: results.Faithful}}}
		p := filepath.Join(dir, name+".json")
		f, _ := os.Create(p)
		defer f.Close()
		if err := jsonEncode(f, doc); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base, same, worse := write("base", 10), write("same", 10.1), write("worse", 8)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	for _, tc := range []struct {
		old, cur string
		code     int
	}{{base, same, 0}, {base, worse, cli.ExitFailed}, {base, bad, cli.ExitInvalid}} {
		if code := exitCode(exec.Command(bin, "diff", tc.old, tc.cur).Run()); code != tc.code {
			t.Errorf("diff %s %s: exit %d, want %d", filepath.Base(tc.old), filepath.Base(tc.cur), code, tc.code)
		}
	}
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// TestDownRemovesUpFolder: `cnilab up --provider kind` writes the run's
// kubeconfigs to <out>/up-<id>/; `down --run <id>` takes that folder with
// the clusters, and leaves other runs' folders alone.
func TestDownRemovesUpFolder(t *testing.T) {
	testenv.Kernel(t, "lists the run's network namespaces")
	bin := binary(t)
	out := t.TempDir()
	mine, other := filepath.Join(out, "up-0a1b2c"), filepath.Join(out, "up-3d4e5f")
	for _, d := range []string{mine, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "flannel.kubeconfig"), []byte("apiVersion: v1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "down", "--run", "0a1b2c", "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, b)
	}
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Errorf("%s still there (%v)", mine, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another run's folder went too: %v", err)
	}
}

// TestUpWithNothingBuilt: when no lab can be built here, `up` prints no run
// id (there is nothing for `compare --run` to measure) and exits 3.
func TestUpWithNothingBuilt(t *testing.T) {
	testenv.Kernel(t, "asks the netns provider to build a lab")
	bin := binary(t)
	cmd := exec.Command(bin, "up", "--cni", "antrea") // Antrea is never modelled in netns
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(cmd.Run()); code != cli.ExitPrerequisite {
		t.Errorf("exit %d, want %d\n%s", code, cli.ExitPrerequisite, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("printed a run id for no lab: %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "no lab is up") {
		t.Errorf("stderr does not say why:\n%s", stderr.String())
	}
}
