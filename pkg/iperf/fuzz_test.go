package iperf

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no iperf3 captures in testdata: %v", err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"start":{"test_start":{"protocol":"UDP"}},"end":{"sum_sent":{},"sum_received":{}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			if r != (Result{}) {
				t.Fatalf("an error with a partial result: %+v", r)
			}
			return
		}
		// A parsed window is a measurement: data crossed the path, in a
		// known protocol, with finite figures.
		if r.Protocol != TCP && r.Protocol != UDP {
			t.Fatalf("accepted protocol %q", r.Protocol)
		}
		for name, v := range map[string]float64{"received": float64(r.Received), "sent": float64(r.Sent), "seconds": r.Seconds, "lost": r.LostPercent, "jitter": r.JitterMs} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("accepted %s = %v", name, v)
			}
		}
		if r.Received <= 0 {
			t.Fatalf("accepted %v bit/s received", r.Received)
		}
	})
}
