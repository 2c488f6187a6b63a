package cpustat

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cnilab/cnilab/pkg/results"
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

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestPerCPUOnCapturedProc reads two snapshots of this project's 2-vCPU
// build machine taken one second apart (testdata/stat.N, softirqs.N) and
// checks each CPU's busy, softirq and NET_RX/NET_TX figures against the
// values worked out by hand from those files.
func TestPerCPUOnCapturedProc(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a, err := ParseSnapshot(readTestdata(t, "stat.1"), readTestdata(t, "softirqs.1"), t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSnapshot(readTestdata(t, "stat.2"), readTestdata(t, "softirqs.2"), t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got, err := PerCPU(a, b)
	if err != nil {
		t.Fatal(err)
	}
	// cpu0: user +2, system +65, softirq +37, steal +1 = 105 busy; idle +0
	//       NET_RX 42334850 -> 42359972, NET_TX 7110 -> 7110.
	// cpu1: user +82, system +12, softirq +6, steal +1 = 101 busy; idle +2,
	//       iowait +1: 104 ticks; NET_RX 36790533 -> 36797072.
	want := []results.CPUWindow{
		{CPU: 0, BusyPct: 100, SoftirqPct: 37.0 / 105 * 100, NetRx: 25122, NetTx: 0},
		{CPU: 1, BusyPct: 101.0 / 104 * 100, SoftirqPct: 6.0 / 104 * 100, NetRx: 6539, NetTx: 0},
	}
	if d := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); d != "" {
		t.Errorf("per-CPU window (-want +got):\n%s", d)
	}
	// The aggregate line still gives the machine-wide figure: user +84,
	// system +76, softirq +43, steal +1 = 204 ticks (the kernel sums the
	// per-CPU counters at a slightly different instant, hence not 206).
	u, err := Between(a.Sample, b.Sample)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(u.Cores-2.04) > 1e-9 {
		t.Errorf("machine-wide %v cores, want 2.04 (204 busy ticks in 1 s)", u.Cores)
	}
}

func TestPerCPUParseErrors(t *testing.T) {
	stat := readTestdata(t, "stat.1")
	soft := readTestdata(t, "softirqs.1")
	for name, tc := range map[string]struct{ stat, soft string }{
		"no cpuN line":          {"cpu  1 2 3 4 5 6 7 8\nintr 1\n", string(soft)},
		"short cpuN line":       {"cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3\n", string(soft)},
		"softirqs empty":        {string(stat), ""},
		"softirqs bad header":   {string(stat), "  CPU0  X1\n NET_RX: 1 2\n NET_TX: 1 2\n"},
		"softirqs no NET_RX":    {string(stat), "  CPU0  CPU1\n NET_TX: 1 2\n"},
		"softirqs short row":    {string(stat), "  CPU0  CPU1\n NET_RX: 1\n NET_TX: 1 2\n"},
		"softirqs lacks a cpu":  {string(stat), "  CPU0\n NET_RX: 1\n NET_TX: 1\n"},
		"softirqs not a number": {string(stat), "  CPU0  CPU1\n NET_RX: 1 x\n NET_TX: 1 2\n"},
	} {
		if _, err := ParseSnapshot([]byte(tc.stat), []byte(tc.soft), time.Now()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	a, _ := ParseSnapshot(readTestdata(t, "stat.2"), readTestdata(t, "softirqs.2"), time.Unix(1, 0))
	b, _ := ParseSnapshot(readTestdata(t, "stat.1"), readTestdata(t, "softirqs.1"), time.Unix(2, 0))
	if _, err := PerCPU(a, b); err == nil {
		t.Error("backwards per-CPU counters accepted")
	}
	if _, err := PerCPU(a, a); err == nil {
		t.Error("an interval without ticks accepted")
	}
}

func TestReadRealSnapshot(t *testing.T) {
	s, err := ReadSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.CPUs) < runtime.NumCPU() {
		t.Errorf("%d CPUs in /proc/stat, this process may use %d", len(s.CPUs), runtime.NumCPU())
	}
}
