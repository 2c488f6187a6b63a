// Package windowlock keeps measurement windows from overlapping machine-wide.
// Labs share the machine's CPUs, so a window measured while another cnilab
// process (or test) measures its own is a figure of two workloads. Every
// window takes an exclusive flock on one file first; flock is per open file,
// so two goroutines of one process exclude each other as two processes do,
// and the kernel drops the lock when its holder dies, so a killed run never
// leaves a stale lock behind.
package windowlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// RootDir is where root's lock lives; every cnilab process run by root, on
// any checkout, meets there.
const RootDir = "/run/cnilab"

// FileName is the lock file's name in its directory.
const FileName = "measurement-window.lock"

// DefaultWait bounds how long a window waits for another's: longer than any
// one window of the full profile (60 s) or one services-scale size, short
// enough that a stuck holder fails the window instead of hanging the run.
const DefaultWait = 15 * time.Minute

// Path is the machine's lock file: under RootDir for root, else under the
// temporary directory (a user without root cannot create /run/cnilab, and
// runs no netns lab anyway).
func Path() string {
	if os.Geteuid() == 0 {
		return filepath.Join(RootDir, FileName)
	}
	return filepath.Join(os.TempDir(), "cnilab-"+FileName)
}

// Lock is a place windows take turns in.
type Lock struct {
	// Path is the lock file (Path() when empty).
	Path string
	// Wait bounds the wait for the lock (DefaultWait when 0).
	Wait time.Duration
	// Log, when set, is told who holds the lock while a window waits for
	// it: once the wait passes LogAfter (1 s when 0), and every LogEvery
	// (10 s when 0) after that. A wait shorter than LogAfter is the normal
	// hand-over between two windows and is not worth a line.
	Log      func(format string, args ...any)
	LogAfter time.Duration
	LogEvery time.Duration
}

// Held is an acquired lock; Release gives it back.
type Held struct{ f *os.File }

// Release drops the lock. It is safe on a nil Held.
func (h *Held) Release() error {
	if h == nil || h.f == nil {
		return nil
	}
	// Closing the file drops the flock; the holder line is left, since a
	// truncate here would race the next holder writing its own.
	err := h.f.Close()
	h.f = nil
	return err
}

// ErrTimeout is returned when the lock stayed taken for the whole wait.
var ErrTimeout = errors.New("measurement window lock still held")

// Acquire blocks until this window holds the lock, ctx ends or the wait
// runs out. who describes the window ("throughput calico dtm r2"); it is
// written into the file so a waiting process can say who it waits for.
func (l Lock) Acquire(ctx context.Context, who string) (*Held, error) {
	path := l.Path
	if path == "" {
		path = Path()
	}
	wait := l.Wait
	if wait == 0 {
		wait = DefaultWait
	}
	every := l.LogEvery
	if every == 0 {
		every = 10 * time.Second
	}
	after := l.LogAfter
	if after == 0 {
		after = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("window lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("window lock: %w", err)
	}
	start := time.Now()
	var logged time.Time
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("window lock %s: %w", path, err)
		}
		waited := time.Since(start)
		if waited >= wait {
			f.Close()
			return nil, fmt.Errorf("%w after %v by %s (%s)", ErrTimeout, wait.Round(time.Second), Holder(path), path)
		}
		if l.Log != nil && waited >= after && (logged.IsZero() || time.Since(logged) >= every) {
			logged = time.Now()
			l.Log("window %s waits for the machine's measurement lock, held by %s (waited %v)", who, Holder(path), waited.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
	line := fmt.Sprintf("pid %d: %s since %s\n", os.Getpid(), who, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(line), 0)
	}
	return &Held{f: f}, nil
}

// Holder says who wrote the lock file last: while the lock is taken, its
// holder.
func Holder(path string) string {
	data, err := os.ReadFile(path)
	if err != nil || len(strings.TrimSpace(string(data))) == 0 {
		return "another window"
	}
	return strings.TrimSpace(string(data))
}

// Do runs fn while holding the lock.
func (l Lock) Do(ctx context.Context, who string, fn func() error) error {
	h, err := l.Acquire(ctx, who)
	if err != nil {
		return err
	}
	defer h.Release()
	return fn()
}
