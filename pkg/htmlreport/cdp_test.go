package htmlreport

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// browser is headless Chromium driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: fd 3 carries commands in, fd 4 replies and
// events out, each message JSON ended by NUL). No port is opened, and
// every proxied fetch goes to a local listener that counts it.
type browser struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	mu    sync.Mutex
	next  int
	wait  map[int]chan cdpMessage
	evs   chan cdpMessage
	proxy *countingProxy
	errs  chan error
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct{ Message string }
	SessionID string `json:"sessionId,omitempty"`
}

// countingProxy accepts connections and records what each asked for,
// answering nothing useful: a page that fetched would show here.
type countingProxy struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
}

func newCountingProxy(t *testing.T) *countingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				p.mu.Lock()
				p.seen = append(p.seen, strings.TrimSpace(line))
				p.mu.Unlock()
				_, _ = io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *countingProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// startBrowser starts Chromium. The flags switch off its own background
// traffic (updates, sync, field trials) so that any request the proxy sees
// is the page's.
func startBrowser(t *testing.T, path string) *browser {
	t.Helper()
	proxy := newCountingProxy(t)
	cmdIn, toChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromChrome, cmdOut, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, path,
		"--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
		"--user-data-dir="+t.TempDir(), "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
		"--disable-client-side-phishing-detection", "--metrics-recording-only", "--no-pings",
		"--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
		"--proxy-server=http://"+proxy.ln.Addr().String(), "--proxy-bypass-list=<-loopback>",
		"--hide-scrollbars", "--force-device-scale-factor=1", "about:blank")
	cmd.ExtraFiles = []*os.File{cmdIn, cmdOut}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	cmdIn.Close()
	cmdOut.Close()
	b := &browser{cmd: cmd, in: toChrome, out: bufio.NewReader(fromChrome), wait: map[int]chan cdpMessage{},
		evs: make(chan cdpMessage, 4096), proxy: proxy, errs: make(chan error, 1)}
	go b.read()
	t.Cleanup(func() {
		_, _ = b.call("", "Browser.close", nil)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		cancel()
		toChrome.Close()
		fromChrome.Close()
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", stderr.String())
		}
	})
	return b
}

func (b *browser) read() {
	for {
		raw, err := b.out.ReadBytes(0)
		if err != nil {
			b.errs <- err
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.wait[m.ID]
			delete(b.wait, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		select {
		case b.evs <- m:
		default: // a page flooding events: the test reads what it needs
		}
	}
}

// call sends one command (to a page session when session is set) and
// waits for its reply.
func (b *browser) call(session, method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpMessage, 1)
	b.wait[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if _, err := b.in.Write(append(data, 0)); err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		return m.Result, nil
	case err := <-b.errs:
		return nil, fmt.Errorf("%s: browser gone: %w", method, err)
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("%s: no reply in 60 s", method)
	}
}

// page is one tab.
type page struct {
	b       *browser
	session string
	// requests are the URLs the tab asked for (Network.requestWillBeSent).
	requests []string
}

// open creates a tab of the given width, loads url and waits for its load
// event, recording every request the tab made.
func (b *browser) open(t *testing.T, url string, width int) *page {
	t.Helper()
	res, err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"})
	if err != nil {
		t.Fatal(err)
	}
	var target struct{ TargetID string }
	_ = json.Unmarshal(res, &target)
	res, err = b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true})
	if err != nil {
		t.Fatal(err)
	}
	var att struct{ SessionID string }
	_ = json.Unmarshal(res, &att)
	p := &page{b: b, session: att.SessionID}
	for _, m := range []string{"Network.enable", "Page.enable", "Runtime.enable"} {
		if _, err := b.call(p.session, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.call(p.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": false}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.call(p.session, "Page.navigate", map[string]any{"url": url}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(60 * time.Second)
	for loaded := false; !loaded; {
		select {
		case ev := <-b.evs:
			if ev.SessionID != p.session {
				continue
			}
			switch ev.Method {
			case "Network.requestWillBeSent":
				var r struct{ Request struct{ URL string } }
				_ = json.Unmarshal(ev.Params, &r)
				p.requests = append(p.requests, r.Request.URL)
			case "Page.loadEventFired":
				loaded = true
			}
		case <-deadline:
			t.Fatalf("%s: no load event in 60 s", url)
		}
	}
	// Late requests (a lazily loaded image, a font) would come after load:
	// give them a moment to show.
	settle := time.After(500 * time.Millisecond)
	for settled := false; !settled; {
		select {
		case ev := <-b.evs:
			if ev.SessionID == p.session && ev.Method == "Network.requestWillBeSent" {
				var r struct{ Request struct{ URL string } }
				_ = json.Unmarshal(ev.Params, &r)
				p.requests = append(p.requests, r.Request.URL)
			}
		case <-settle:
			settled = true
		}
	}
	return p
}

// eval runs a JavaScript expression in the page (through DevTools: the page
// itself has no script) and decodes its JSON value into out.
func (p *page) eval(t *testing.T, expr string, out any) {
	t.Helper()
	res, err := p.b.call(p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Result struct {
			Value json.RawMessage
		}
		ExceptionDetails *struct{ Text string }
	}
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		t.Fatalf("evaluate: %s", r.ExceptionDetails.Text)
	}
	if err := json.Unmarshal(r.Result.Value, out); err != nil {
		t.Fatalf("evaluate: %v in %s", err, r.Result.Value)
	}
}

// screenshot captures the whole page (or the clip, in CSS pixels) as PNG.
func (p *page) screenshot(t *testing.T, clip *rect) []byte {
	t.Helper()
	params := map[string]any{"format": "png", "captureBeyondViewport": true}
	if clip != nil {
		params["clip"] = map[string]any{"x": clip.X, "y": clip.Y, "width": clip.W, "height": clip.H, "scale": 1}
	}
	res, err := p.b.call(p.session, "Page.captureScreenshot", params)
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Data []byte }
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	return r.Data
}

type rect struct{ X, Y, W, H float64 }
