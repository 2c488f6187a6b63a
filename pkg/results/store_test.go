package results

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStoreKeepsEveryFinishedMeasurement(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, Run{ID: "r1", Provider: "netns", Started: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetLab(Lab{Name: "flannel", CNI: "flannel", Provider: "netns", Fidelity: Faithful, Status: StatusOK}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := s.Append(Measurement{Lab: "flannel", Scenario: "throughput", Test: "dts", Repeat: i, Metrics: map[string]float64{ThroughputBps: float64(i)}}); err != nil {
			t.Fatal(err)
		}
		// After every append the document on disk is complete and valid,
		// as a reader after a crash would find it.
		d, err := ReadFile(filepath.Join(dir, "results.json"))
		if err != nil {
			t.Fatalf("after %d appends: %v", i, err)
		}
		if len(d.Measurements) != i || d.Labs[0].Name != "flannel" {
			t.Fatalf("after %d appends the file holds %d measurements", i, len(d.Measurements))
		}
	}
	s.Close()
	f, _ := os.Open(filepath.Join(dir, "measurements.jsonl"))
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
	}
	if n != 3 {
		t.Errorf("measurements.jsonl has %d lines, want 3", n)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name()[0] == '.' {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestDecodeRejectsOtherSchemas(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	os.WriteFile(p, []byte(`{"schema":"other/v9"}`), 0o644)
	if _, err := ReadFile(p); err == nil {
		t.Error("foreign schema accepted")
	}
}

// TestReadLogTornLine: a kill in the middle of a write leaves a last line
// without its newline; it is dropped with a note that names file:line.
// A broken line with its newline is corruption, not a kill: an error.
func TestReadLogTornLine(t *testing.T) {
	good := `{"lab":"flannel","scenario":"throughput","test":"dts","repeat":1,"provider":"netns","fidelity":"faithful","started":"2026-01-01T00:00:00Z","metrics":{"throughput_bps":1}}`
	for _, tc := range []struct {
		name, log string
		n         int
		torn, err string
	}{
		{"complete", good + "\n" + good + "\n", 2, "", ""},
		{"empty", "", 0, "", ""},
		{"torn mid-object", good + "\n" + good[:40], 1, ":2: last line dropped (40 bytes", ""},
		{"torn before its newline", good + "\n" + good, 1, ":2: last line dropped", ""},
		{"broken line inside", good + "\n{\"lab\":\n" + good + "\n", 0, "", ":2: measurement"},
		{"broken complete last line", good + "\n{\"lab\":\n", 0, "", ":2: measurement"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), LogFile)
			if err := os.WriteFile(p, []byte(tc.log), 0o644); err != nil {
				t.Fatal(err)
			}
			ms, torn, err := ReadLog(p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), p+tc.err) {
					t.Fatalf("error %v, want one saying %s%s", err, p, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != tc.n {
				t.Errorf("%d measurements, want %d", len(ms), tc.n)
			}
			if (tc.torn == "") != (torn == "") || !strings.Contains(torn, tc.torn) {
				t.Errorf("torn note %q, want one saying %q", torn, tc.torn)
			}
		})
	}
}

// TestReopenContinuesTheLog: a resumed store keeps exactly the
// measurements it is given (the torn tail is gone from the file) and
// appends after them.
func TestReopenContinuesTheLog(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, Run{ID: "r1", Provider: "netns"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := s.Append(Measurement{Lab: "flannel", Scenario: "throughput", Test: "dts", Repeat: i}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, LogFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"lab":"flan`)
	f.Close()
	kept, torn, err := ReadLog(filepath.Join(dir, LogFile))
	if err != nil || len(kept) != 2 || torn == "" {
		t.Fatalf("read back %d, torn %q, %v", len(kept), torn, err)
	}
	r, err := Reopen(dir, Document{Run: Run{ID: "r1", Provider: "netns"}, Measurements: kept})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Append(Measurement{Lab: "flannel", Scenario: "throughput", Test: "dts", Repeat: 3}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	ms, torn, err := ReadLog(filepath.Join(dir, LogFile))
	if err != nil || torn != "" {
		t.Fatalf("after reopen: torn %q, %v", torn, err)
	}
	var reps []int
	for _, m := range ms {
		reps = append(reps, m.Repeat)
	}
	if fmt.Sprint(reps) != "[1 2 3]" {
		t.Errorf("log holds repeats %v, want [1 2 3]", reps)
	}
	d, err := ReadFile(filepath.Join(dir, "results.json"))
	if err != nil || len(d.Measurements) != 3 {
		t.Fatalf("results.json: %v, %d measurements", err, len(d.Measurements))
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name()[0] == '.' {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}
