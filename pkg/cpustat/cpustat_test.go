package cpustat

import (
	"math"
	"testing"
	"time"
)

const stat1 = `cpu  1000 10 500 9000 100 5 200 1 0 0
cpu0 500 5 250 4500 50 2 100 0 0 0
intr 12345
`
const stat2 = `cpu  1100 10 550 9100 100 5 300 1 0 0
cpu0 550 5 275 4550 50 2 150 0 0 0
`

func TestBetween(t *testing.T) {
	t0 := time.Unix(0, 0)
	a, err := Parse([]byte(stat1), t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(stat2), t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	u, err := Between(a, b)
	if err != nil {
		t.Fatal(err)
	}
	// busy ticks: user +100, system +50, softirq +100 = 250 ticks over 2 s = 1.25 cores.
	if math.Abs(u.Cores-1.25) > 1e-9 || math.Abs(u.SoftirqCores-0.5) > 1e-9 {
		t.Errorf("usage %+v, want 1.25 cores of which 0.5 softirq", u)
	}
}

func TestParseErrors(t *testing.T) {
	for name, in := range map[string]string{
		"no cpu line": "intr 1\n",
		"short":       "cpu 1 2 3\n",
		"not numbers": "cpu a b c d e f g h\n",
	} {
		if _, err := Parse([]byte(in), time.Now()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	a, _ := Parse([]byte(stat2), time.Unix(1, 0))
	b, _ := Parse([]byte(stat1), time.Unix(2, 0))
	if _, err := Between(a, b); err == nil {
		t.Error("backwards counters accepted")
	}
}

func TestReadRealProcStat(t *testing.T) {
	s, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if s.Busy+s.Idle == 0 {
		t.Error("no CPU time at all")
	}
}
