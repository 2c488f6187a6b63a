package htmlreport

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// palette is the Okabe–Ito set (readable with the common colour-vision
// deficiencies); series take colours in order, so a test can count the
// series a chart drew by the colours its paths use.
var palette = []color.RGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	{0x00, 0x9E, 0x73, 0xff}, // bluish green
	{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	{0x88, 0x66, 0x00, 0xff}, // brown (not Okabe–Ito: the yellow is unreadable on white)
	{0x88, 0x88, 0x88, 0xff}, // grey (not black: the axes are black)
}

// flagColour marks figures above their host baseline; it is no series
// colour, so the series count stays exact.
var flagColour = color.RGBA{0xC0, 0x00, 0x00, 0xff}

func seriesColour(i int) color.RGBA { return palette[i%len(palette)] }

// Hex is a colour as the SVG backend writes it (#rrggbb).
func Hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// Chart is one drawn figure: its SVG and what it shows, so a page (and a
// test) can say what a reader should find in it.
type Chart struct {
	ID    string
	Title string
	// Series are the legend's entries, in colour order.
	Series []string
	// Labels are the category labels on the X axis (empty for numeric
	// axes).
	Labels  []string
	Caption string
	SVG     string
}

// newPlot makes a plot with sans-serif text. The chart's title is the
// page's heading above it, not drawn twice.
func newPlot(xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	sans := func(s *font.Font) { s.Typeface, s.Variant = "Liberation", "Sans" }
	for _, f := range []*font.Font{&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font, &p.Legend.TextStyle.Font} {
		sans(f)
	}
	p.Legend.Top = true
	p.Legend.Left = false
	p.Y.Tick.Marker = plot.DefaultTicks{}
	return p
}

// render draws p as an SVG fragment (no XML prolog), to be inlined.
func render(p *plot.Plot, w, h vg.Length) (string, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.String()
	i := strings.Index(s, "<svg")
	if i < 0 {
		return "", fmt.Errorf("svg backend wrote no <svg> element")
	}
	// Width and height in pt make the page scroll sideways on narrow
	// screens; the viewBox keeps the proportions when CSS scales it.
	return s[i:], nil
}

// point is one figure with the median's interval.
type point struct {
	x, y, lo, hi float64
	flagged      bool
}

// xyErr adapts points to gonum's XYer and YErrorer.
type xyErr []point

func (p xyErr) Len() int                    { return len(p) }
func (p xyErr) XY(i int) (float64, float64) { return p[i].x, p[i].y }
func (p xyErr) YError(i int) (float64, float64) {
	lo, hi := p[i].y-p[i].lo, p[i].hi-p[i].y
	return math.Max(lo, 0), math.Max(hi, 0)
}

// dotSeries is one provider's labs in a dot-and-whisker chart.
type dotSeries struct {
	name   string
	points []point
	// host is the provider's host baseline (NaN when it did not run).
	host     float64
	hostName string
}

// dotChart draws medians with their intervals per category, one series
// per provider side by side within a category, and each provider's host
// baseline as a dashed line in its colour.
func dotChart(id, title, yLabel string, categories []string, series []dotSeries, caption string) (Chart, error) {
	p := newPlot("", yLabel)
	p.NominalX(categories...)
	p.X.Min, p.X.Max = -0.6, float64(len(categories))-0.4
	p.Y.Min = 0
	ch := Chart{ID: id, Title: title, Labels: categories, Caption: caption}
	flaggedShown := false
	legendRows := 0
	for i, s := range series {
		col := seriesColour(i)
		pts := xyErr(s.points)
		if len(pts) > 0 {
			sc, err := plotter.NewScatter(pts)
			if err != nil {
				return Chart{}, fmt.Errorf("%s: %s: %w", id, s.name, err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(3.5), Shape: draw.CircleGlyph{}}
			eb, err := plotter.NewYErrorBars(pts)
			if err != nil {
				return Chart{}, fmt.Errorf("%s: %s: %w", id, s.name, err)
			}
			eb.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1.2)}
			eb.CapWidth = vg.Points(6)
			p.Add(eb, sc)
			p.Legend.Add(s.name, sc)
			legendRows++
			ch.Series = append(ch.Series, s.name)
			var flagged xyErr
			for _, q := range pts {
				if q.flagged {
					flagged = append(flagged, q)
				}
			}
			if len(flagged) > 0 {
				ring, err := plotter.NewScatter(flagged)
				if err != nil {
					return Chart{}, err
				}
				ring.GlyphStyle = draw.GlyphStyle{Color: flagColour, Radius: vg.Points(7), Shape: draw.RingGlyph{}}
				p.Add(ring)
				if !flaggedShown {
					p.Legend.Add("above host (not ranked)", ring)
					legendRows++
					flaggedShown = true
				}
			}
		}
		if !math.IsNaN(s.host) {
			ln, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: s.host}, {X: p.X.Max, Y: s.host}})
			if err != nil {
				return Chart{}, err
			}
			ln.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
			p.Add(ln)
			p.Legend.Add(s.hostName, ln)
			legendRows++
		}
	}
	// Head room for the legend, which sits top right inside the axes.
	p.Y.Max *= 1.12 + 0.06*float64(legendRows)
	w := vg.Points(math.Max(360, 70*float64(len(categories))+120))
	svg, err := render(p, w, vg.Points(250))
	if err != nil {
		return Chart{}, err
	}
	ch.SVG = svg
	return ch, nil
}

// lineSeries is one curve.
type lineSeries struct {
	name   string
	xys    plotter.XYs
	dashed bool
	// colour indexes the palette; curves sharing a colour are one family
	// (a proxy, drawn once per placement).
	colour int
	glyph  draw.GlyphDrawer
}

// lineChart draws curves; logX/logY switch the axes to log scale (all
// values must then be positive: callers drop the others and say so).
func lineChart(id, title, xLabel, yLabel string, series []lineSeries, logX, logY bool, legendTopLeft bool, caption string) (Chart, error) {
	p := newPlot(xLabel, yLabel)
	// Where the curves leave room: a CDF's bottom right, a cost that grows
	// with N its top left.
	p.Legend.Top, p.Legend.Left = legendTopLeft, legendTopLeft
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		p.Y.Min = 0
	}
	ch := Chart{ID: id, Title: title, Caption: caption}
	for _, s := range series {
		if len(s.xys) == 0 {
			continue
		}
		col := seriesColour(s.colour)
		ln, err := plotter.NewLine(s.xys)
		if err != nil {
			return Chart{}, fmt.Errorf("%s: %s: %w", id, s.name, err)
		}
		ln.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1.5)}
		if s.dashed {
			ln.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(ln)
		thumbs := []plot.Thumbnailer{ln}
		if s.glyph != nil {
			sc, err := plotter.NewScatter(s.xys)
			if err != nil {
				return Chart{}, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: s.glyph}
			p.Add(sc)
			thumbs = append(thumbs, sc)
		}
		p.Legend.Add(s.name, thumbs...)
		ch.Series = append(ch.Series, s.name)
	}
	svg, err := render(p, vg.Points(520), vg.Points(300))
	if err != nil {
		return Chart{}, err
	}
	ch.SVG = svg
	return ch, nil
}
