package compare

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	cmp "github.com/cnilab/cnilab/pkg/compare"
	"github.com/cnilab/cnilab/pkg/internal/testenv"
	"github.com/cnilab/cnilab/pkg/netplan"
	"github.com/cnilab/cnilab/pkg/results"
	"github.com/cnilab/cnilab/scenarios"
)

// tinyThroughput replaces the throughput scenario for the resume test:
// three tests of 1 s windows, three repeats (host skips the Service test).
const tinyThroughput = `name: throughput
kind: throughput
description: tiny windows for the resume test
tests: [idle, dts, sts]
placements: [cross-node]
streams: 2
profiles:
  quick:
    duration_s: 1
    omit_s: 0
    repeats: 3
`

// TestResumeAfterSIGKILL kills a real netns run with SIGKILL in the middle
// of a window, resumes it, and checks what a user would compare against a
// run that was never killed: the same run id and seed, the same number of
// measurements with the same identities in the same order, and no
// namespace of the run left behind.
func TestResumeAfterSIGKILL(t *testing.T) {
	testenv.Kernel(t, "builds netns labs host and flannel, twice")
	testenv.Tools(t, "iperf3", "go")
	work := t.TempDir()
	bin := filepath.Join(work, "cnilab")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cnilab/cnilab/cmd/cnilab").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	scDir := filepath.Join(work, "scenarios")
	if err := os.CopyFS(scDir, scenarios.FS); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scDir, "throughput.yaml"), []byte(tinyThroughput), 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(out string) []string {
		return []string{"compare", "--provider", "netns", "--cni", "host,flannel", "--scenario", "throughput", "--profile", "quick",
			"--seed", "424242", "--scenario-dir", scDir, "--out", out, "-o", "json"}
	}
	run := func(name string, a ...string) (time.Duration, string) {
		t.Helper()
		var stderr bytes.Buffer
		c := exec.Command(bin, a...)
		c.Stderr = &stderr
		start := time.Now()
		if err := c.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, stderr.String())
		}
		return time.Since(start), stderr.String()
	}

	// The yardstick: the same run, never killed.
	outA := filepath.Join(work, "a")
	wallA, _ := run("never-killed run", args(outA)...)
	docA := readRun(t, outA)
	t.Cleanup(func() { removeRunNamespaces(docA.Run.ID) })
	if len(docA.Measurements) < 10 {
		t.Fatalf("the never-killed run stored %d measurements; the test needs at least 10", len(docA.Measurements))
	}

	// The same run, killed in the middle of a window once half its
	// measurements are stored.
	outB := filepath.Join(work, "b")
	var stderrB bytes.Buffer
	c := exec.Command(bin, args(outB)...)
	c.Stderr = &stderrB
	startB := time.Now()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	want := len(docA.Measurements) / 2
	var logPath string
	for deadline := time.Now().Add(5 * time.Minute); ; {
		if time.Now().After(deadline) {
			c.Process.Kill()
			c.Wait()
			t.Fatalf("no %d measurements after 5 minutes\n%s", want, stderrB.String())
		}
		if ls, _ := filepath.Glob(filepath.Join(outB, "*", results.LogFile)); len(ls) == 1 {
			logPath = ls[0]
			if data, err := os.ReadFile(logPath); err == nil && bytes.Count(data, []byte{'\n'}) >= want {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The next window has started: kill in its middle.
	time.Sleep(500 * time.Millisecond)
	st, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lastKept := st.ModTime()
	before, err := results.ReadFile(filepath.Join(filepath.Dir(logPath), "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	c.Wait()
	id := before.Run.ID
	t.Cleanup(func() { removeRunNamespaces(id) })
	logged, torn, err := results.ReadLog(logPath)
	if err != nil || torn != "" {
		t.Fatalf("log after the kill: torn %q, %v", torn, err)
	}
	left, _ := netplan.ListNamespaces("cnl-" + id + "-")
	t.Logf("killed run %s after %.1f s with %d of %d measurements stored; %d namespaces left up", id, killedAt.Sub(startB).Seconds(), len(logged), len(docA.Measurements), len(left))
	// A kill in the middle of a write would leave a torn last line: add
	// one, as that kill would have.
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"lab":"flannel","scenario":"thr`)
	f.Close()

	wallResume, stderrResume := run("resume", "compare", "--resume", id, "--out", outB, "-o", "json")
	after := readRun(t, outB)

	if after.Run.ID != id || after.Run.Settings.OrderSeed != before.Run.Settings.OrderSeed || after.Run.Started != before.Run.Started {
		t.Errorf("resumed run %s seed %d started %v, want %s seed %d started %v", after.Run.ID, after.Run.Settings.OrderSeed, after.Run.Started,
			id, before.Run.Settings.OrderSeed, before.Run.Started)
	}
	keys := func(ms []results.Measurement) []string {
		var out []string
		for _, m := range ms {
			out = append(out, cmp.KeyOf(m).String())
		}
		return out
	}
	if got, want := keys(after.Measurements), keys(docA.Measurements); !slices.Equal(got, want) {
		t.Errorf("resumed run holds %d measurements:\n%s\nthe never-killed run %d:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	for _, m := range after.Measurements {
		if m.Error != "" {
			t.Errorf("%s: %s", cmp.KeyOf(m), m.Error)
		}
	}
	if len(after.Run.Resumes) != 1 {
		t.Fatalf("run.resumes %+v, want one", after.Run.Resumes)
	}
	r := after.Run.Resumes[0]
	if r.Kept != len(logged) || r.Remeasured != len(docA.Measurements)-len(logged) || r.Dropped != 1 ||
		!strings.Contains(strings.Join(r.Notes, ";"), "last line dropped") {
		t.Errorf("resume record %+v: want %d kept, %d measured, the torn line dropped with a note", r, len(logged), len(docA.Measurements)-len(logged))
	}
	if left, _ := netplan.ListNamespaces("cnl-" + id + "-"); len(left) > 0 {
		t.Errorf("namespaces of run %s left after the resume: %v", id, left)
	}
	for _, f := range []string{"results.json", "report.md", "report.html"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(logPath), f)); err != nil {
			t.Errorf("resumed run: %v", err)
		}
	}
	t.Logf("never-killed run %.1f s; killed part %.1f s + resume %.1f s (re-attached %v, rebuilt %v); time lost to the kill: %.1f s (from the last stored measurement to the kill)",
		wallA.Seconds(), killedAt.Sub(startB).Seconds(), wallResume.Seconds(), r.Reattached, r.Rebuilt, killedAt.Sub(lastKept).Seconds())
	if testing.Verbose() {
		t.Logf("resume output:\n%s", stderrResume)
	}
}

func readRun(t *testing.T, out string) *results.Document {
	t.Helper()
	ls, _ := filepath.Glob(filepath.Join(out, "*", "results.json"))
	if len(ls) != 1 {
		t.Fatalf("%d run directories under %s", len(ls), out)
	}
	d, err := results.ReadFile(ls[0])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// removeRunNamespaces is the test's own cleanup: only its runs' names.
func removeRunNamespaces(id string) {
	if len(id) != 6 {
		panic(fmt.Sprintf("run id %q", id))
	}
	names, _ := netplan.ListNamespaces("cnl-" + id + "-")
	for _, n := range names {
		_ = netplan.DeleteNamespace(n)
	}
}
