package results

import (
	"bufio"
	"os"
	"path/filepath"
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
