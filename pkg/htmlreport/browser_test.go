package htmlreport

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// browserServiceHosts are where full Chromium talks on its own at start
// (component updater, sign-in, network time), whatever the page does;
// chromium-headless-shell has none of these services.
var browserServiceHosts = []string{"update.googleapis.com", "accounts.google.com", "clients2.google.com"}

// chromium finds Debian's headless Chromium: chromium-headless-shell (the
// automation build: no updater or sign-in traffic of its own) or, failing
// that, chromium; $CNILAB_CHROMIUM overrides. Under CI=true its absence
// fails the test (make test installs it); elsewhere it skips with the
// reason. full says the binary is the whole browser, whose own service
// traffic the proxy check must tell from the page's.
func chromium(t *testing.T) (path string, full bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skips the browser tests (headless Chromium renders report.html)")
	}
	if p := os.Getenv("CNILAB_CHROMIUM"); p != "" {
		return p, !strings.Contains(p, "headless-shell")
	}
	if p, err := exec.LookPath("chromium-headless-shell"); err == nil {
		return p, false
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium-headless-shell or chromium on PATH under CI=true: make test installs it (apt-get install -y chromium-headless-shell)")
	}
	t.Skip("needs chromium-headless-shell (or chromium) on PATH to render report.html: apt-get install -y chromium-headless-shell")
	return "", false
}

// pageRequests drops, for the full browser, the requests its own services
// make.
func pageRequests(seen []string, full bool) []string {
	if !full {
		return seen
	}
	var out []string
	for _, r := range seen {
		if !slices.ContainsFunc(browserServiceHosts, func(h string) bool { return strings.Contains(r, h) }) {
			out = append(out, r)
		}
	}
	return out
}

// shotDir is where screenshots are kept: $CNILAB_SCREENSHOT_DIR when set
// (to look at them), else the test's temporary folder.
func shotDir(t *testing.T) string {
	if d := os.Getenv("CNILAB_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// renderedChart is what the browser drew of one figure.
type renderedChart struct {
	ID      string
	Texts   []string
	Colours []string
	X, Y    float64
	W, H    float64
}

const chartsJS = `Array.from(document.querySelectorAll('figure.chart')).map(f => {
  const svg = f.querySelector('svg');
  if (!svg) return {id: f.id, texts: [], colours: [], x: 0, y: 0, w: 0, h: 0};
  const r = svg.getBoundingClientRect();
  const colours = new Set();
  svg.querySelectorAll('path').forEach(p => { const s = getComputedStyle(p); colours.add(s.stroke); colours.add(s.fill); });
  return {id: f.id, texts: Array.from(svg.querySelectorAll('text')).map(x => x.textContent),
    colours: Array.from(colours), x: r.x + window.scrollX, y: r.y + window.scrollY, w: r.width, h: r.height};
})`

// cssRGB is a palette colour as getComputedStyle prints it.
func cssRGB(c color.RGBA) string { return fmt.Sprintf("rgb(%d, %d, %d)", c.R, c.G, c.B) }

// seriesDrawn counts the palette colours a chart's paths use: one per
// series (services-scale: one per proxy).
func seriesDrawn(colours []string) int {
	n := 0
	for _, c := range palette {
		if slices.Contains(colours, cssRGB(c)) {
			n++
		}
	}
	return n
}

// paintedCheck says what is wrong with a chart's screenshot: blank or
// uniform, or a series colour that no pixel shows.
func paintedCheck(img image.Image, want []color.RGBA) error {
	b := img.Bounds()
	if b.Dx() < 50 || b.Dy() < 50 {
		return fmt.Errorf("chart is %dx%d px", b.Dx(), b.Dy())
	}
	distinct := map[color.RGBA]bool{}
	ink := 0
	hits := make([]int, len(want))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 0xff}
			distinct[c] = true
			if c.R < 0xf0 || c.G < 0xf0 || c.B < 0xf0 {
				ink++
			}
			for i, w := range want {
				d := math.Abs(float64(c.R)-float64(w.R)) + math.Abs(float64(c.G)-float64(w.G)) + math.Abs(float64(c.B)-float64(w.B))
				if d < 40 {
					hits[i]++
				}
			}
		}
	}
	if len(distinct) < 8 {
		return fmt.Errorf("chart is uniform: %d distinct colours", len(distinct))
	}
	if frac := float64(ink) / float64(b.Dx()*b.Dy()); frac < 0.01 {
		return fmt.Errorf("chart is blank: %.2f %% of pixels inked", 100*frac)
	}
	for i, n := range hits {
		if n < 15 {
			return fmt.Errorf("series colour %s painted on %d px only", Hex(want[i]), n)
		}
	}
	return nil
}

// TestBrowserRendersReport opens report.html of real captured runs in
// headless Chromium: the page makes no request but its own file, every
// chart shows its series and labels, and each chart's pixels show the
// series colours (a blank or broken chart fails).
func TestBrowserRendersReport(t *testing.T) {
	bin, full := chromium(t)
	for _, tc := range capturedRuns {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadRun(t, tc.files)
			dir := shotDir(t)
			path, err := filepath.Abs(filepath.Join(dir, strings.ReplaceAll(strings.Join(tc.files, "+"), ".json", "")+".html"))
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteFile(path, doc); err != nil {
				t.Fatal(err)
			}
			b := startBrowser(t, bin)
			url := "file://" + path
			pg := b.open(t, url, 1200)
			if len(pg.requests) != 1 || pg.requests[0] != url {
				t.Errorf("page made requests %q, want only its own file %s", pg.requests, url)
			}
			if got := pageRequests(b.proxy.requests(), full); len(got) > 0 {
				t.Errorf("the network proxy saw %d requests: %q", len(got), got)
			}
			var charts []renderedChart
			pg.eval(t, chartsJS, &charts)
			byID := map[string]renderedChart{}
			for _, c := range charts {
				byID[c.ID] = c
			}
			if len(charts) != tc.charts {
				t.Errorf("%d charts rendered, want %d", len(charts), tc.charts)
			}
			for _, w := range tc.want {
				c, ok := byID[w.id]
				if !ok {
					t.Errorf("chart %s not on the page", w.id)
					continue
				}
				if c.W < 300 || c.H < 150 {
					t.Errorf("chart %s rendered %gx%g px", w.id, c.W, c.H)
				}
				for _, l := range slices.Concat(w.series, w.labels, w.texts) {
					if !slices.Contains(c.Texts, l) {
						t.Errorf("chart %s: no text %q on it (texts %q)", w.id, l, c.Texts)
					}
				}
				if got := seriesDrawn(c.Colours); got != w.colours {
					t.Errorf("chart %s: %d series colours drawn, want %d (%q)", w.id, got, w.colours, c.Colours)
				}
				img, err := png.Decode(bytes.NewReader(pg.screenshot(t, &rect{c.X, c.Y, c.W, c.H})))
				if err != nil {
					t.Fatal(err)
				}
				if err := paintedCheck(img, palette[:w.colours]); err != nil {
					t.Errorf("chart %s screenshot: %v", w.id, err)
				}
			}
			var height float64
			pg.eval(t, "document.documentElement.scrollHeight", &height)
			shot := filepath.Join(dir, strings.ReplaceAll(strings.Join(tc.files, "+"), ".json", "")+".png")
			if err := os.WriteFile(shot, pg.screenshot(t, &rect{0, 0, 1200, height}), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s (%.0f px high)", shot, height)
		})
	}
}

// TestScreenshotCheckFailsOnBrokenChart renders a page whose first chart
// lost its drawing (paths renamed, as a broken SVG would be) and a blank
// one: the screenshot check must reject both.
func TestScreenshotCheckFailsOnBrokenChart(t *testing.T) {
	bin, _ := chromium(t)
	doc := loadRun(t, capturedRuns[0].files)
	p, err := Build(doc)
	if err != nil {
		t.Fatal(err)
	}
	p.Tests[0].Chart.SVG = strings.ReplaceAll(p.Tests[0].Chart.SVG, "<path", "<broken")
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "broken.html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBrowser(t, bin)
	pg := b.open(t, "file://"+path, 1200)
	var charts []renderedChart
	pg.eval(t, chartsJS, &charts)
	c := charts[0]
	img, err := png.Decode(bytes.NewReader(pg.screenshot(t, &rect{c.X, c.Y, c.W, c.H})))
	if err != nil {
		t.Fatal(err)
	}
	if err := paintedCheck(img, palette[:1]); err == nil {
		t.Error("a chart with no drawn paths passed the screenshot check")
	}
	blank := image.NewRGBA(image.Rect(0, 0, 400, 300))
	for i := range blank.Pix {
		blank.Pix[i] = 0xff
	}
	if err := paintedCheck(blank, palette[:1]); err == nil {
		t.Error("a white image passed the screenshot check")
	}
}
