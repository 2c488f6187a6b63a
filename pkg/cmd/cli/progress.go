package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Progress is where a long command reports as it goes. Log lines pass
// through unchanged. On a terminal it also keeps one status line at the
// bottom, redrawn in place: the window count, the window being measured
// and an ETA from the scenario's windows so far. Anything else (a file, a
// pipe, CI's log) gets the plain lines only.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	width    int
	now      func() time.Time
	status   string
	scenario string
	started  time.Time
	i, n     int
}

// NewProgress wraps w; the status line is drawn only when w is a
// terminal.
func NewProgress(w io.Writer) *Progress {
	p := &Progress{w: w, now: time.Now, width: 100}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			p.width = cols - 1
		}
	}
	return p
}

const clearLine = "\r\x1b[2K"

// Write passes a log line through, keeping the status line below it. The
// status line goes once the scenario's last window has reported.
func (p *Progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty || p.status == "" {
		return p.w.Write(b)
	}
	if _, err := io.WriteString(p.w, clearLine); err != nil {
		return 0, err
	}
	n, err := p.w.Write(b)
	if err != nil {
		return n, err
	}
	if p.i >= p.n {
		p.status = ""
		return n, nil
	}
	_, err = io.WriteString(p.w, p.status)
	return n, err
}

// Window says that window i of n of scenario starts (the hook
// pkg/compare calls before each measurement window).
func (p *Progress) Window(scenario string, i, n int, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if scenario != p.scenario || i < p.i {
		p.scenario, p.started = scenario, now
	}
	if i == 1 {
		p.started = now
	}
	p.i, p.n = i, n
	if !p.tty {
		return
	}
	p.status = truncate(fmt.Sprintf("%s: window %d of %d  %s  %s", scenario, i, n, what, eta(now.Sub(p.started), i, n)), p.width)
	_, _ = io.WriteString(p.w, clearLine+p.status)
}

// eta is the time the remaining windows (this one included) take at the
// pace of the scenario's windows so far.
func eta(elapsed time.Duration, i, n int) string {
	if i <= 1 || elapsed <= 0 {
		return "ETA –"
	}
	left := elapsed / time.Duration(i-1) * time.Duration(n-i+1)
	return "ETA " + left.Round(time.Second).String()
}

func truncate(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}

// statusLine is the line a terminal shows now ("" when none), for tests.
func (p *Progress) statusLine() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.TrimSpace(p.status)
}
