package report

import (
	"image/color"
	"math"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart size: ~800×450 px at 96 dpi.
const (
	chartW   = 800 * vg.Inch / 96
	chartH   = 450 * vg.Inch / 96
	chartDPI = 96
)

// maxBarWidth keeps a chart with few bars from drawing slabs.
const maxBarWidth = vg.Length(64)

var sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

// palette is Okabe–Ito, readable by colour-blind readers.
var palette = []color.Color{
	rgb(0x00, 0x72, 0xB2), // blue
	rgb(0xE6, 0x9F, 0x00), // orange
	rgb(0x00, 0x9E, 0x73), // green
	rgb(0xCC, 0x79, 0xA7), // purple
	rgb(0x56, 0xB4, 0xE9), // sky
	rgb(0xD5, 0x5E, 0x00), // vermillion
	rgb(0xF0, 0xE4, 0x42), // yellow
	rgb(0x99, 0x99, 0x99), // grey
}

// Role colours of the throughput chart.
var (
	ferryColor   = palette[0]
	peerColor    = palette[1]
	ceilingColor = rgb(0x88, 0x88, 0x88)
)

func rgb(r, g, b uint8) color.Color { return color.RGBA{R: r, G: g, B: b, A: 0xff} }

// newPlot returns a plot with the report's fonts and a horizontal grid.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 15)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 12)
		a.Tick.Label.Font = font.From(sans, 11)
	}
	p.Legend.TextStyle.Font = font.From(sans, 11)
	p.Legend.Top = true
	p.Legend.ThumbnailWidth = vg.Points(14)
	g := plotter.NewGrid()
	g.Vertical.Width = 0
	g.Horizontal.Color = rgb(0xdd, 0xdd, 0xdd)
	p.Add(g)
	return p
}

// tickLabel renders an axis value compactly: 0.5, 3, 2.5k, 50k, 1.5M.
func tickLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return trimZeros(strconv.FormatFloat(v/1e6, 'f', 2, 64)) + "M"
	case a >= 1000:
		return trimZeros(strconv.FormatFloat(v/1e3, 'f', 2, 64)) + "k"
	}
	return trimZeros(strconv.FormatFloat(v, 'f', 3, 64))
}

// trimZeros drops trailing zeros of a decimal number: 2.50 → 2.5, 3.0 → 3.
func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// humanTicks labels a linear axis with short numbers (20k, 1.5M).
func humanTicks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = tickLabel(ts[i].Value)
		}
	}
	return ts
}

// humanLogTicks labels a log axis at powers of ten (and 2×, 5× when the
// range is under two decades) with short numbers.
func humanLogTicks(min, max float64) []plot.Tick {
	ts := plot.LogTicks{}.Ticks(min, max)
	few := math.Log10(max/min) < 2
	for i := range ts {
		v := ts[i].Value
		m := v / math.Pow10(int(math.Floor(math.Log10(v)+1e-9)))
		switch {
		case ts[i].Label != "" || math.Abs(m-1) < 1e-6:
			ts[i].Label = tickLabel(v)
		case few && (math.Abs(m-2) < 1e-6 || math.Abs(m-5) < 1e-6):
			ts[i].Label = tickLabel(v)
		}
	}
	return ts
}

// useLog reports whether values spread over enough orders of magnitude
// to be drawn on a log axis.
func useLog(vals ...float64) bool {
	lo, hi := math.Inf(1), 0.0
	for _, v := range vals {
		if finite(v) && v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	return hi > 0 && hi/lo > 30
}

// setYRange fits the y axis to [0 or a power of ten below lo, hi] with
// headroom for the value labels and the legend.
func setYRange(p *plot.Plot, logY bool, lo, hi float64, legend bool) {
	if !finite(hi) || hi <= 0 {
		hi = 1
	}
	if logY {
		if !finite(lo) || lo <= 0 {
			lo = hi / 10
		}
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.TickerFunc(humanLogTicks)
		p.Y.Min = math.Pow10(int(math.Floor(math.Log10(lo))))
		p.Y.Max = hi * 3
		if legend {
			p.Y.Max = hi * 12
		}
		return
	}
	p.Y.Tick.Marker = plot.TickerFunc(humanTicks)
	p.Y.Min, p.Y.Max = 0, hi*1.15
	if legend {
		p.Y.Max = hi * 1.35
	}
}

// categoryAxis labels x = 0..n-1 with names (wrapped to a few lines).
func categoryAxis(p *plot.Plot, names []string) {
	var ts []plot.Tick
	for i, n := range names {
		ts = append(ts, plot.Tick{Value: float64(i), Label: wrap(n, 18)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ts)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.X.Tick.Length = 0
	p.X.Tick.Label.Font = font.From(sans, 10)
}

// wrap breaks s into lines of about width characters at spaces, keeping
// the line breaks s already has.
func wrap(s string, width int) string {
	var out []string
	for para := range strings.SplitSeq(s, "\n") {
		out = append(out, wrapLine(para, width))
	}
	return strings.Join(out, "\n")
}

func wrapLine(s string, width int) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}

// bars is one series of a grouped (or stacked) bar chart on a category
// axis: bar i stands at x = i, shifted by pos bar widths; a bar is frac of
// the category spacing wide. NaN values draw nothing. lo and hi, when set,
// draw min–max whiskers; bottom, when set, stacks the bars.
type bars struct {
	vals, lo, hi, bottom []float64
	colors               []color.Color // per bar; nil: color
	color                color.Color
	frac, pos            float64
	labels               bool // print the value above each bar
}

// base is where a bar starts on y: its stack bottom, else the axis floor.
func (b *bars) base(p *plot.Plot, i int) float64 {
	if b.bottom != nil && finite(b.bottom[i]) && b.bottom[i] > 0 {
		return b.bottom[i]
	}
	if _, log := p.Y.Scale.(plot.LogScale); log {
		return p.Y.Min
	}
	return 0
}

// Plot implements plot.Plotter.
func (b *bars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	w := min((trX(1)-trX(0))*vg.Length(b.frac), maxBarWidth)
	line := draw.LineStyle{Color: rgb(0x33, 0x33, 0x33), Width: vg.Points(1)}
	labelSty := draw.TextStyle{Color: color.Black, Font: font.From(sans, 9), XAlign: draw.XCenter, Handler: p.TextHandler}
	for i, v := range b.vals {
		if !finite(v) {
			continue
		}
		bot := b.base(p, i)
		top := v
		if b.bottom != nil {
			top += b.bottom[i]
		}
		x := trX(float64(i)) + w*vg.Length(b.pos)
		y0, y1 := trY(bot), trY(top)
		clr := b.color
		if b.colors != nil && b.colors[i] != nil {
			clr = b.colors[i]
		}
		pts := []vg.Point{{X: x - w/2, Y: y0}, {X: x - w/2, Y: y1}, {X: x + w/2, Y: y1}, {X: x + w/2, Y: y0}}
		c.FillPolygon(clr, c.ClipPolygonY(pts))
		labelY := y1
		if b.lo != nil && b.hi != nil && finite(b.lo[i]) && finite(b.hi[i]) && b.hi[i] > b.lo[i] {
			ylo, yhi := trY(b.lo[i]), trY(b.hi[i])
			c.StrokeLine2(line, x, ylo, x, yhi)
			c.StrokeLine2(line, x-w/5, ylo, x+w/5, ylo)
			c.StrokeLine2(line, x-w/5, yhi, x+w/5, yhi)
			labelY = max(labelY, yhi)
		}
		if b.labels {
			txt := shortNumber(v)
			if labelSty.Width(txt) <= w*1.25 {
				c.FillText(labelSty, vg.Point{X: x, Y: labelY + vg.Points(2)}, txt)
			}
		}
	}
}

// Thumbnail implements plot.Thumbnailer for the legend.
func (b *bars) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y}}
	c.FillPolygon(b.color, c.ClipPolygonY(pts))
}

// barSpec is one series handed to groupedBars.
type barSpec struct {
	name         string
	vals, lo, hi []float64
}

// groupedBars draws one bar per series in each category, with min–max
// whiskers and value labels; logY nil picks the scale from the data.
func groupedBars(title, yLabel string, cats []string, specs []barSpec, logY *bool) *plot.Plot {
	p := newPlot(title, "", yLabel)
	categoryAxis(p, cats)
	var all []float64
	for _, s := range specs {
		all = append(all, s.vals...)
		all = append(all, s.lo...)
		all = append(all, s.hi...)
	}
	lg := useLog(all...)
	if logY != nil {
		lg = *logY
	}
	lo, hi := minMaxPositive(all)
	setYRange(p, lg, lo, hi, len(specs) > 1)
	frac := 0.8 / float64(len(specs))
	for j, s := range specs {
		b := &bars{vals: s.vals, lo: s.lo, hi: s.hi, color: palette[j%len(palette)],
			frac: frac, pos: float64(j) - float64(len(specs)-1)/2, labels: true}
		p.Add(b)
		if len(specs) > 1 {
			p.Legend.Add(s.name, b)
		}
	}
	return p
}

// minMaxPositive returns the smallest positive and the largest finite
// values of vs.
func minMaxPositive(vs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if !finite(v) {
			continue
		}
		if v > 0 {
			lo = math.Min(lo, v)
		}
		hi = math.Max(hi, v)
	}
	return lo, hi
}

// savePNG renders plots side by side (one row) into a PNG file.
func savePNG(path string, w vg.Length, plots ...*plot.Plot) error {
	img := vgimg.NewWith(vgimg.UseWH(w, chartH), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	if len(plots) == 1 {
		plots[0].Draw(dc)
	} else {
		t := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Points(12), PadTop: vg.Points(2), PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(4)}
		cs := plot.Align([][]*plot.Plot{plots}, t, dc)
		for i, p := range plots {
			p.Draw(cs[0][i])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
