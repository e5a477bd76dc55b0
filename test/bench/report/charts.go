package report

import (
	"image/color"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/ferrydev/ferry/test/bench/results"
)

// chart is a PNG written under dir/bench/ and embedded in the markdown.
type chart struct {
	file string // name under bench/
	alt  string
}

// drawCharts writes the charts of one workload into chartDir.
func drawCharts(chartDir, workload string, gs []*group) ([]chart, error) {
	type made struct {
		c     chart
		w     vg.Length
		plots []*plot.Plot
	}
	var todo []made
	add := func(file, alt string, w vg.Length, ps ...*plot.Plot) {
		if len(ps) > 0 && ps[0] != nil {
			todo = append(todo, made{chart{file, alt}, w, ps})
		}
	}
	switch workload {
	case results.Throughput:
		add("throughput.png", "Throughput per system, with ceilings", chartW, throughputChart(gs))
		add("throughput-cpu.png", "CPU per 1,000 tasks by process", chartW, cpuChart(gs))
	case results.Latency:
		add("latency.png", "Latency percentiles per system", chartW, latencyChart(gs))
	case results.Scale:
		ps := scaleCharts(gs)
		add("scale.png", "Dispatch rate, p99 and RSS against backlog", vg.Length(len(ps))*chartW*0.42, ps...)
	case results.Fairness:
		add("fairness.png", "Fairness: small tenants against the big tenant", chartW, fairnessChart(gs))
	case results.Pollers:
		add("pollers.png", "Pollers: Ferry trigger against the raw consumer", chartW, pollersChart(gs))
	case results.Cluster:
		cgs := clusterGroups(gs)
		add("cluster.png", "Cluster: tasks/s of asynq and of 1, 2 and 3 Ferry nodes on one Redis", chartW, throughputChart(cgs))
		add("cluster-cpu.png", "Cluster: CPU per 1,000 tasks, the system's processes and Redis", chartW, cpuChart(cgs))
	}
	var out []chart
	for _, m := range todo {
		if err := savePNG(filepath.Join(chartDir, m.c.file), max(m.w, chartW), m.plots...); err != nil {
			return nil, err
		}
		out = append(out, m.c)
	}
	return out, nil
}

// primaryRate is the metric a group's throughput bar shows.
func primaryRate(g *group) string {
	for _, m := range []string{"tasks_per_s", "req_per_s", "submit_per_s", "msgs_per_s"} {
		if g.has(m) {
			return m
		}
	}
	return ""
}

// statSeries returns the medians, minima and maxima of metric m.
func statSeries(gs []*group, m string) (vals, lo, hi []float64) {
	for _, g := range gs {
		s, ok := g.Metrics[m]
		if !ok {
			vals, lo, hi = append(vals, math.NaN()), append(lo, math.NaN()), append(hi, math.NaN())
			continue
		}
		vals, lo, hi = append(vals, s.Median), append(lo, s.Min), append(hi, s.Max)
	}
	return vals, lo, hi
}

func runsNote(gs []*group) string {
	n := 0
	for _, g := range gs {
		n = max(n, g.Runs)
	}
	if n < 2 {
		return ""
	}
	return " — median of " + thousands(float64(n)) + " runs, min–max whiskers"
}

// throughputChart: one bar per system, coloured by role (Ferry, peer,
// ceiling), each showing its main rate.
func throughputChart(gs []*group) *plot.Plot {
	gs = filter(gs, func(g *group) bool { return primaryRate(g) != "" })
	if len(gs) == 0 {
		return nil
	}
	var cats []string
	b := &bars{frac: 0.6, labels: true}
	roles := map[string]color.Color{}
	for _, g := range gs {
		m := primaryRate(g)
		name := g.label()
		if m != "tasks_per_s" {
			name += " (" + metricLabel(m) + ")"
		}
		cats = append(cats, name)
		s := g.Metrics[m]
		b.vals, b.lo, b.hi = append(b.vals, s.Median), append(b.lo, s.Min), append(b.hi, s.Max)
		role, clr := "peer", peerColor
		switch {
		case isFerry(g.System):
			role, clr = "Ferry", ferryColor
		case isCeiling(g.System):
			role, clr = "ceiling", ceilingColor
		}
		roles[role] = clr
		b.colors = append(b.colors, clr)
	}
	p := newPlot("Throughput"+runsNote(gs), "", "per second")
	categoryAxis(p, cats)
	lo, hi := minMaxPositive(append(append([]float64{}, b.vals...), b.hi...))
	setYRange(p, false, lo, hi, len(roles) > 1)
	p.Add(b)
	for _, r := range []string{"Ferry", "peer", "ceiling"} {
		if c, ok := roles[r]; ok && len(roles) > 1 {
			p.Legend.Add(r, &bars{color: c})
		}
	}
	return p
}

// cpuChart stacks each process's CPU ms per 1,000 tasks, per system.
func cpuChart(gs []*group) *plot.Plot {
	var procs []string
	seen := map[string]bool{}
	for _, g := range gs {
		for m := range g.Metrics {
			if strings.HasPrefix(m, "cpu_ms_per_1k_") && m != derivedCPUTotal && !seen[m] {
				seen[m] = true
				procs = append(procs, m)
			}
		}
	}
	gs = filter(gs, func(g *group) bool {
		for _, m := range procs {
			if g.has(m) {
				return true
			}
		}
		return false
	})
	if len(gs) == 0 {
		return nil
	}
	procs = sortMetrics(procs)
	var cats []string
	for _, g := range gs {
		cats = append(cats, g.label())
	}
	p := newPlot("CPU per 1,000 tasks, by process (medians)", "", "CPU ms per 1,000 tasks")
	categoryAxis(p, cats)
	bottom := make([]float64, len(gs))
	for j, m := range procs {
		vals, _, _ := statSeries(gs, m)
		b := &bars{vals: vals, bottom: append([]float64(nil), bottom...), color: palette[j%len(palette)], frac: 0.6}
		for i, v := range vals {
			if finite(v) {
				bottom[i] += v
			}
		}
		p.Add(b)
		p.Legend.Add(strings.TrimPrefix(m, "cpu_ms_per_1k_"), b)
	}
	_, hi := minMaxPositive(bottom)
	setYRange(p, false, 0, hi, true)
	p.Add(&bars{vals: bottom, color: color.Transparent, frac: 0.6, labels: true})
	return p
}

// latencyChart: p50, p99 and p99.9 per system on a log axis.
func latencyChart(gs []*group) *plot.Plot {
	var specs []barSpec
	for _, m := range []string{"p50_ms", "p99_ms", "p999_ms"} {
		v, lo, hi := statSeries(gs, m)
		if anyFinite(v) {
			specs = append(specs, barSpec{strings.TrimSuffix(metricLabel(m), " (ms)"), v, lo, hi})
		}
	}
	if len(specs) == 0 {
		return nil
	}
	var cats []string
	for _, g := range gs {
		name := g.label()
		if g.has("rate_per_s") {
			name += " @ " + formatMetric("rate_per_s", g.median("rate_per_s")) + "/s"
		}
		cats = append(cats, name)
	}
	logY := true
	return groupedBars("Submit → backend start latency"+runsNote(gs), "latency (ms, log scale)", cats, specs, &logY)
}

// fairnessChart: small tenants' and the big tenant's p99 per system, the
// Jain index under each name; only Jain bars when there is no p99.
func fairnessChart(gs []*group) *plot.Plot {
	var cats []string
	for _, g := range gs {
		name := g.label()
		if g.has("jain") {
			name += "\nJain " + formatMetric("jain", g.median("jain"))
		}
		cats = append(cats, name)
	}
	var specs []barSpec
	for _, m := range []string{"small_p99_ms", "big_p99_ms"} {
		v, lo, hi := statSeries(gs, m)
		if anyFinite(v) {
			specs = append(specs, barSpec{strings.TrimSuffix(metricLabel(m), " (ms)"), v, lo, hi})
		}
	}
	if len(specs) > 0 {
		return groupedBars("Fairness: p99 latency by tenant size"+runsNote(gs), "p99 latency (ms)", cats, specs, nil)
	}
	v, lo, hi := statSeries(gs, "jain")
	if !anyFinite(v) {
		return nil
	}
	logY := false
	p := groupedBars("Fairness: Jain's index of per-tenant throughput"+runsNote(gs), "Jain index (1 = fair)", cats, []barSpec{{"Jain", v, lo, hi}}, &logY)
	p.Y.Max = 1.1
	return p
}

// pollersChart: per broker, one bar per Ferry batch size and one for the
// raw consumer (whatever its library), in messages per second.
func pollersChart(gs []*group) *plot.Plot {
	var brokers, names []string
	val := map[[2]string]Stat{}
	for _, g := range gs {
		s, ok := g.Metrics["msgs_per_s"]
		if !ok {
			continue
		}
		b, n := brokerOf(g), labelExcept(g, "broker")
		if !isFerry(g.System) && isCeiling(g.System) {
			n = "raw consumer (same client library)"
		}
		if !contains(brokers, b) {
			brokers = append(brokers, b)
		}
		if !contains(names, n) {
			names = append(names, n)
		}
		val[[2]string{b, n}] = s
	}
	if len(brokers) == 0 {
		return nil
	}
	var specs []barSpec
	for _, n := range names {
		s := barSpec{name: n}
		for _, b := range brokers {
			st, ok := val[[2]string{b, n}]
			if !ok {
				st = Stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
			}
			s.vals, s.lo, s.hi = append(s.vals, st.Median), append(s.lo, st.Min), append(s.hi, st.Max)
		}
		specs = append(specs, s)
	}
	for i, b := range brokers {
		if b == "" {
			brokers[i] = "(no broker)"
		}
	}
	return groupedBars("Pollers: messages consumed and committed"+runsNote(gs), "messages per second", brokers, specs, nil)
}

// scaleCharts: dispatch rate, p99 and RSS against the backlog (log x),
// one line per system.
func scaleCharts(gs []*group) []*plot.Plot {
	ss := scaleSeries(gs)
	if len(ss) == 0 {
		return nil
	}
	var out []*plot.Plot
	for _, m := range []string{"tasks_per_s", "p99_ms", "rss_mb"} {
		if p := scalePanel(ss, m, len(out) == 0); p != nil {
			out = append(out, p)
		}
	}
	return out
}

func scalePanel(ss []series, m string, legend bool) *plot.Plot {
	titles := map[string]string{"tasks_per_s": "Dispatch rate", "p99_ms": "p99 latency", "rss_mb": "RSS"}
	p := newPlot(titles[m]+" vs backlog", "tasks queued (log scale)", metricLabel(m))
	p.Title.TextStyle.Font.Size = vg.Points(13)
	var xs, all []float64
	drawn := 0
	for j, s := range ss {
		var pts errPoints
		for i, g := range s.groups {
			st, ok := g.Metrics[m]
			if !ok {
				continue
			}
			pts = append(pts, errPoint{x: s.xs[i], y: st.Median, lo: st.Min, hi: st.Max})
			xs = append(xs, s.xs[i])
			all = append(all, st.Max)
		}
		if len(pts) == 0 {
			continue
		}
		drawn++
		clr := palette[j%len(palette)]
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			continue
		}
		l.Color, l.Width = clr, vg.Points(2)
		sc.Color, sc.Shape, sc.Radius = clr, draw.CircleGlyph{}, vg.Points(3.5)
		p.Add(l, sc)
		if eb, err := plotter.NewYErrorBars(pts); err == nil {
			eb.Color = clr
			p.Add(eb)
		}
		if legend && len(ss) > 1 {
			p.Legend.Add(s.name, l, sc)
		}
	}
	if drawn == 0 {
		return nil
	}
	lo, hi := minMaxPositive(xs)
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, x := range xs {
		ticks = append(ticks, plot.Tick{Value: x, Label: humanCount(strconv.FormatFloat(x, 'f', -1, 64))})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = lo/2.5, hi*2.5
	_, ymax := minMaxPositive(all)
	setYRange(p, false, 0, ymax, legend && len(ss) > 1)
	return p
}

// errPoint is a median with its min–max spread, for plotter.YErrorBars.
type errPoint struct{ x, y, lo, hi float64 }

type errPoints []errPoint

func (e errPoints) Len() int                         { return len(e) }
func (e errPoints) XY(i int) (float64, float64)      { return e[i].x, e[i].y }
func (e errPoints) YError(i int) (low, high float64) { return e[i].y - e[i].lo, e[i].hi - e[i].y }

func anyFinite(vs []float64) bool {
	for _, v := range vs {
		if finite(v) {
			return true
		}
	}
	return false
}
