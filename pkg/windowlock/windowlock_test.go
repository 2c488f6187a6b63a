package windowlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWindowsNeverOverlap: windows of several goroutines, each with its own
// open of the lock file as separate processes would have, run strictly one
// after another, and a waiting window is told who holds the lock.
func TestWindowsNeverOverlap(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	type span struct{ from, to time.Time }
	var (
		mu    sync.Mutex
		spans []span
		logs  []string
		wg    sync.WaitGroup
	)
	l := Lock{Path: path, Wait: 10 * time.Second, LogAfter: 20 * time.Millisecond, LogEvery: time.Hour, Log: func(f string, a ...any) {
		mu.Lock()
		logs = append(logs, fmt.Sprintf(f, a...))
		mu.Unlock()
	}}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.Do(context.Background(), fmt.Sprintf("window %d", i), func() error {
				s := span{from: time.Now()}
				time.Sleep(80 * time.Millisecond)
				s.to = time.Now()
				mu.Lock()
				spans = append(spans, s)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(spans) != 4 {
		t.Fatalf("%d windows ran, want 4", len(spans))
	}
	for i, a := range spans {
		for j, b := range spans {
			if i != j && a.from.Before(b.to) && b.from.Before(a.to) {
				t.Errorf("windows %d and %d overlap: %v–%v and %v–%v", i, j, a.from, a.to, b.from, b.to)
			}
		}
	}
	if len(logs) < 3 {
		t.Fatalf("%d waits logged, want one per waiting window (3): %q", len(logs), logs)
	}
	if !strings.Contains(logs[0], fmt.Sprintf("pid %d: window ", os.Getpid())) {
		t.Errorf("log %q does not name the holder", logs[0])
	}
}

// TestBoundedWait: a window that cannot get the lock within its wait fails
// and says who held it.
func TestBoundedWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	h, err := Lock{Path: path}.Acquire(context.Background(), "throughput calico dtm r1")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	start := time.Now()
	_, err = Lock{Path: path, Wait: 150 * time.Millisecond}.Acquire(context.Background(), "latency host drr r1")
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "throughput calico dtm r1") {
		t.Fatalf("error %v, want a timeout naming the holder", err)
	}
	if took := time.Since(start); took < 150*time.Millisecond || took > 2*time.Second {
		t.Errorf("gave up after %v, want about 150ms", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Lock{Path: path}).Acquire(ctx, "cancelled"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	if err := h.Release(); err != nil {
		t.Fatal(err)
	}
	h2, err := Lock{Path: path, Wait: time.Second}.Acquire(context.Background(), "after release")
	if err != nil {
		t.Fatalf("lock not free after release: %v", err)
	}
	h2.Release()
}

const helperEnv = "CNILAB_WINDOWLOCK_HOLD"

// TestMain lets the test binary stand in for a second cnilab process: with
// helperEnv set it takes the lock, says so, holds it and exits.
func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		h, err := Lock{Path: path}.Acquire(context.Background(), "other process window")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("held")
		time.Sleep(400 * time.Millisecond)
		h.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestTwoProcesses: a window of this process waits for the window another
// process holds, and names that process.
func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf[:4]) != "held" {
		t.Fatalf("helper did not take the lock: %q %v", buf, err)
	}
	var logs []string
	start := time.Now()
	h, err := Lock{Path: path, Wait: 10 * time.Second, LogAfter: 50 * time.Millisecond, Log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}.Acquire(context.Background(), "this window")
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Since(start)
	h.Release()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if waited < 200*time.Millisecond {
		t.Errorf("got the lock after %v while the other process held it for 400ms", waited)
	}
	want := fmt.Sprintf("pid %d: other process window", cmd.Process.Pid)
	if len(logs) == 0 || !strings.Contains(logs[0], want) {
		t.Errorf("logs %q, want the holder %q", logs, want)
	}
}
