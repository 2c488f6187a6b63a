package htmlreport

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"
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
func Hex(c color.RGBA) string { return fmt.Sprintf("#%02X%02X%02X", c.R, c.G, c.B) }

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

// render draws p as an SVG fragment (no XML prolog), to be inlined, with
// the legend in a column of its own right of the axes: inside them it
// would hide whatever data sits under it.
func render(p *plot.Plot, w, h vg.Length, legendNames []string) (string, error) {
	leg := p.Legend
	p.Legend = plot.NewLegend()
	legendW := vg.Length(0)
	for _, name := range legendNames {
		legendW = max(legendW, leg.TextStyle.Width(name))
	}
	if legendW > 0 {
		legendW += leg.ThumbnailWidth + leg.Padding + vg.Points(14)
	}
	c := vgsvg.New(w+legendW, h)
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	if legendW > 0 {
		leg.Top, leg.Left = true, true
		leg.Draw(draw.Crop(dc, w+vg.Points(6), 0, 0, -vg.Points(8)))
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.String()
	i := strings.Index(s, "<svg")
	if i < 0 {
		return "", fmt.Errorf("svg backend wrote no <svg> element")
	}
	return s[i:], nil
}

// logTicks labels a log axis at 1, 2 and 5 per decade (gonum's LogTicks
// labels only powers of ten, none at all on a range inside one decade),
// with the 3, 4, 6.. as unlabelled minor ticks.
func logTicks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	var out []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * base
			if v < lo*0.999 || v > hi*1.001 {
				continue
			}
			label := ""
			if m == 1 || m == 2 || m == 5 {
				label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			out = append(out, plot.Tick{Value: v, Label: label})
		}
	}
	return out
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
	var legend []string
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
			legend = append(legend, s.name)
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
					legend = append(legend, "above host (not ranked)")
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
			legend = append(legend, s.hostName)
		}
	}
	w := vg.Points(math.Max(360, 70*float64(len(categories))+120))
	svg, err := render(p, w, vg.Points(250), legend)
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
func lineChart(id, title, xLabel, yLabel string, series []lineSeries, logX, logY bool, caption string) (Chart, error) {
	p := newPlot(xLabel, yLabel)
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.TickerFunc(logTicks)
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.TickerFunc(logTicks)
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
	svg, err := render(p, vg.Points(520), vg.Points(300), ch.Series)
	if err != nil {
		return Chart{}, err
	}
	ch.SVG = svg
	return ch, nil
}
