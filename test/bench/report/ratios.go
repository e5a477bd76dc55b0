package report

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrydev/ferry/test/bench/results"
)

// ratio is one comparison computed from the medians of two groups of the
// same run set; RunMin and RunMax are the spread of the run-by-run ratios
// (runs both sides took part in), NaN when fewer than two runs pair up.
type ratio struct {
	Label          string // what is divided by what
	Metric         string // human name of the compared figure
	Num, Den       float64
	NumM, DenM     string // metric names, for formatting
	Value          float64
	RunMin, RunMax float64
	// detail keeps the ratio out of the "At a glance" summary.
	detail bool
}

// newRatio divides metric ma of a by the first metric of mbs that b has.
// ok is false when an input is missing or the denominator is zero.
func newRatio(label string, a *group, ma string, b *group, mbs ...string) (r ratio, ok bool) {
	if !a.has(ma) {
		return r, false
	}
	mb := ""
	for _, m := range mbs {
		if b.has(m) {
			mb = m
			break
		}
	}
	if mb == "" || b.median(mb) == 0 {
		return r, false
	}
	r = ratio{Label: label, NumM: ma, DenM: mb, Num: a.median(ma), Den: b.median(mb), RunMin: math.NaN(), RunMax: math.NaN()}
	r.Value = r.Num / r.Den
	r.Metric = metricLabel(ma)
	if mb != ma {
		r.Metric += " ÷ " + metricLabel(mb)
	}
	var runs []float64
	for run, am := range a.byRun {
		bm, ok := b.byRun[run]
		if !ok {
			continue
		}
		x, okx := am[ma]
		y, oky := bm[mb]
		if okx && oky && y != 0 && finite(x/y) {
			runs = append(runs, x/y)
		}
	}
	if len(runs) >= 2 {
		s, _ := summarize(runs)
		r.RunMin, r.RunMax = s.Min, s.Max
	}
	return r, true
}

// ratios computes the comparisons of one workload, in display order.
func ratios(workload string, gs []*group) []ratio {
	switch workload {
	case results.Throughput:
		return throughputRatios(gs)
	case results.Latency:
		return latencyRatios(gs)
	case results.Scale:
		return scaleRatios(gs)
	case results.Fairness:
		return fairnessRatios(gs)
	case results.Pollers:
		return pollerRatios(gs)
	case results.Cluster:
		return clusterRatios(gs)
	}
	return nil
}

func has(s string, words ...string) bool {
	s = strings.ToLower(s)
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Throughput roles, recognized from the system names.
func isFerryGo(g *group) bool   { return isFerry(g.System) && !has(g.System, "http") }
func isFerryHTTP(g *group) bool { return isFerry(g.System) && has(g.System, "http") }
func isAsynq(g *group) bool     { return has(g.System, "asynq") }
func isSubmitCeiling(g *group) bool {
	return isCeiling(g.System) && has(g.System, "submit")
}
func isHTTPCeiling(g *group) bool {
	return isCeiling(g.System) && !has(g.System, "submit") && has(g.System, "wrk", "http", "trivial")
}

func filter(gs []*group, keep func(*group) bool) []*group {
	var out []*group
	for _, g := range gs {
		if keep(g) {
			out = append(out, g)
		}
	}
	return out
}

// throughputRatios: Ferry's Go backend against asynq (processing rate,
// enqueue rate, CPU per task), Ferry's HTTP backend against the HTTP
// ceiling, and every Ferry submit rate against the submit API alone.
func throughputRatios(gs []*group) []ratio {
	var out []ratio
	add := func(r ratio, ok bool) {
		if ok {
			out = append(out, r)
		}
	}
	for _, f := range filter(gs, isFerryGo) {
		for _, a := range filter(gs, isAsynq) {
			l := f.label() + " / " + a.label()
			add(newRatio(l, f, "tasks_per_s", a, "tasks_per_s"))
			add(newRatio(l, f, "submit_per_s", a, "submit_per_s"))
			add(newRatio(l, f, derivedCPUTotal, a, derivedCPUTotal))
		}
	}
	for _, f := range filter(gs, isFerryHTTP) {
		for _, c := range filter(gs, isHTTPCeiling) {
			add(newRatio(f.label()+" / "+c.label(), f, "tasks_per_s", c, "req_per_s", "tasks_per_s"))
		}
	}
	// The batch submit ceiling against asynq's enqueue alone.
	for _, f := range filter(gs, func(g *group) bool { return isSubmitCeiling(g) && has(g.System, "batch") }) {
		for _, a := range filter(gs, func(g *group) bool { return isAsynq(g) && isCeiling(g.System) }) {
			add(newRatio(f.label()+" / "+a.label(), f, "submit_per_s", a, "submit_per_s"))
		}
	}
	for _, f := range filter(gs, func(g *group) bool { return isFerry(g.System) }) {
		for _, c := range filter(gs, isSubmitCeiling) {
			add(newRatio(f.label()+" / "+c.label(), f, "submit_per_s", c, "submit_per_s", "req_per_s", "tasks_per_s"))
		}
	}
	return out
}

// latencyRatios: Ferry's percentiles over each peer's.
func latencyRatios(gs []*group) []ratio {
	var out []ratio
	for _, f := range filter(gs, func(g *group) bool { return isFerry(g.System) }) {
		for _, p := range filter(gs, func(g *group) bool { return !isFerry(g.System) }) {
			for _, m := range []string{"p50_ms", "p99_ms", "p999_ms"} {
				if r, ok := newRatio(f.label()+" / "+p.label(), f, m, p, m); ok {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// scaleRatios: for each system, the figures at the largest backlog over
// those at the smallest.
func scaleRatios(gs []*group) []ratio {
	var out []ratio
	for _, series := range scaleSeries(gs) {
		if len(series.groups) < 2 {
			continue
		}
		small, large := series.groups[0], series.groups[len(series.groups)-1]
		l := series.name + ": " + humanCount(large.Params["backlog"]) + " vs " + humanCount(small.Params["backlog"]) + " queued"
		for _, m := range []string{"tasks_per_s", "p99_ms", "rss_mb", derivedCPUTotal} {
			if r, ok := newRatio(l, large, m, small, m); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// series is one line of a chart: the groups of one system (and its
// parameters other than the x one), sorted by x.
type series struct {
	name   string
	groups []*group
	xs     []float64
}

// scaleSeries splits the scale groups by system and non-backlog
// parameters, each sorted by numeric backlog (unparsable ones dropped).
func scaleSeries(gs []*group) []series {
	var out []series
	index := map[string]int{}
	for _, g := range gs {
		x, err := strconv.ParseFloat(g.Params["backlog"], 64)
		if err != nil {
			continue
		}
		name := labelExcept(g, "backlog")
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, series{name: name})
		}
		out[i].groups = append(out[i].groups, g)
		out[i].xs = append(out[i].xs, x)
	}
	for i := range out {
		s := &out[i]
		idx := make([]int, len(s.xs))
		for j := range idx {
			idx[j] = j
		}
		sort.SliceStable(idx, func(a, b int) bool { return s.xs[idx[a]] < s.xs[idx[b]] })
		gs2, xs2 := make([]*group, len(idx)), make([]float64, len(idx))
		for j, k := range idx {
			gs2[j], xs2[j] = s.groups[k], s.xs[k]
		}
		s.groups, s.xs = gs2, xs2
	}
	return out
}

// labelExcept is the group's label without the given parameters.
func labelExcept(g *group, drop ...string) string {
	ps := map[string]string{}
	for _, k := range labelParams {
		if v, ok := g.Params[k]; ok && !contains(drop, k) {
			ps[k] = v
		}
	}
	if p := paramString(ps, ""); p != "" {
		return g.System + " [" + p + "]"
	}
	return g.System
}

// fairnessRatios: small tenants' p99 over the big tenant's, and Ferry
// against any peer.
func fairnessRatios(gs []*group) []ratio {
	var out []ratio
	for _, g := range gs {
		if r, ok := newRatio(g.label()+": small tenants / big tenant", g, "small_p99_ms", g, "big_p99_ms"); ok {
			r.Metric = "p99 (ms)"
			out = append(out, r)
		}
	}
	for _, f := range filter(gs, func(g *group) bool { return isFerry(g.System) }) {
		for _, p := range filter(gs, func(g *group) bool { return !isFerry(g.System) }) {
			for _, m := range []string{"jain", "small_p99_ms"} {
				if r, ok := newRatio(f.label()+" / "+p.label(), f, m, p, m); ok {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// pollerRatios: each Ferry trigger over the raw consumer of the same
// broker (and batch size, when the raw consumer has one), committed and
// delivered.
func pollerRatios(gs []*group) []ratio {
	var out []ratio
	for _, f := range filter(gs, func(g *group) bool { return isFerry(g.System) }) {
		b := brokerOf(f)
		for _, raw := range filter(gs, func(g *group) bool { return !isFerry(g.System) && brokerOf(g) == b }) {
			if rb, ok := raw.Params["batch"]; ok && rb != "-" && rb != f.Params["batch"] {
				continue
			}
			l := labelExcept(f, "broker") + " / " + labelExcept(raw, "broker")
			if b != "" {
				l = b + ": " + l
			}
			if r, ok := newRatio(l, f, "msgs_per_s", raw, "msgs_per_s"); ok {
				out = append(out, r)
			}
			// Until every message reached the function against until the
			// raw consumer had it: free of the commit's cadence (RocketMQ's
			// client persists offsets every 5 s, for everyone).
			if r, ok := newRatio(l, f, "invoked_per_s", raw, "received_per_s"); ok {
				out = append(out, r)
			}
		}
	}
	return out
}
