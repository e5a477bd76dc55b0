package report

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrydev/ferry/test/bench/results"
)

// Stat is the median of one metric over the runs of a group, with the
// smallest and largest value seen.
type Stat struct {
	Median, Min, Max float64
	N                int // values that went into the figure
}

// group is every run of one system with one parameter set in one workload.
type group struct {
	Workload string
	System   string
	Params   map[string]string
	Runs     int
	Metrics  map[string]Stat
	// byRun holds each run's metrics, keyed by Result.Run, so that ratios
	// can also be taken run by run (the two sides ran side by side).
	byRun map[int]map[string]float64
	vals  map[string][]float64 // every value of every metric, all runs
	first int                  // index of the group's first result in the input
}

// labelParams are the parameters that tell groups of one system apart in
// labels (ratios, charts); the tables show every parameter.
var labelParams = []string{"broker", "batch", "backlog"}

// label names the group: its system, then its distinguishing parameters.
func (g *group) label() string {
	ps := map[string]string{}
	for _, k := range labelParams {
		if v, ok := g.Params[k]; ok {
			ps[k] = v
		}
	}
	if p := paramString(ps, ""); p != "" {
		return g.System + " [" + p + "]"
	}
	return g.System
}

// has reports whether the group measured metric m.
func (g *group) has(m string) bool {
	_, ok := g.Metrics[m]
	return ok
}

// median returns the median of metric m, NaN when it is missing.
func (g *group) median(m string) float64 {
	if s, ok := g.Metrics[m]; ok {
		return s.Median
	}
	return math.NaN()
}

// workloadOrder is the order of the known workloads in the report.
var workloadOrder = []string{results.Throughput, results.Latency, results.Scale, results.Fairness, results.Pollers, results.Cluster}

// leadingParams are parameters that order rows before the system name:
// pollers are read broker by broker.
var leadingParams = map[string][]string{results.Pollers: {"broker"}}

// derivedCPUTotal is the per-run sum of every cpu_ms_per_1k_<process>.
const derivedCPUTotal = "cpu_ms_per_1k_total"

// aggregate groups the results by workload, system and parameters, takes
// the median and spread of every metric, and returns the workloads in
// report order with their groups in row order.
func aggregate(rs []results.Result) (workloads []string, groups map[string][]*group) {
	byKey := map[string]*group{}
	groups = map[string][]*group{}
	for i, r := range rs {
		key := r.Workload + "\x00" + r.System + "\x00" + paramString(r.Params, "\x00")
		g := byKey[key]
		if g == nil {
			g = &group{Workload: r.Workload, System: r.System, Params: r.Params,
				byRun: map[int]map[string]float64{}, vals: map[string][]float64{}, first: i}
			byKey[key] = g
			groups[r.Workload] = append(groups[r.Workload], g)
		}
		g.Runs++
		ms := withDerived(r.Metrics)
		if _, dup := g.byRun[r.Run]; !dup {
			g.byRun[r.Run] = ms
		}
		for m, v := range ms {
			g.vals[m] = append(g.vals[m], v)
		}
	}
	for _, gs := range groups {
		for _, g := range gs {
			g.Metrics = map[string]Stat{}
			for m, vs := range g.vals {
				if s, ok := summarize(vs); ok {
					g.Metrics[m] = s
				}
			}
		}
		sortGroups(gs)
	}
	for _, w := range workloadOrder {
		if len(groups[w]) > 0 {
			workloads = append(workloads, w)
		}
	}
	var other []string
	for w := range groups {
		if !contains(workloadOrder, w) {
			other = append(other, w)
		}
	}
	sort.Strings(other)
	return append(workloads, other...), groups
}

// withDerived returns ms plus cpu_ms_per_1k_total, the sum of its
// per-process CPU figures, when it has some and no total of its own.
func withDerived(ms map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(ms)+1)
	total, n := 0.0, 0
	for m, v := range ms {
		out[m] = v
		if strings.HasPrefix(m, "cpu_ms_per_1k_") && m != derivedCPUTotal && finite(v) {
			total += v
			n++
		}
	}
	if _, ok := ms[derivedCPUTotal]; !ok && n > 0 {
		out[derivedCPUTotal] = total
	}
	return out
}

// summarize returns the median, minimum and maximum of the finite values
// of vs; ok is false when there are none.
func summarize(vs []float64) (s Stat, ok bool) {
	var xs []float64
	for _, v := range vs {
		if finite(v) {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return Stat{}, false
	}
	sort.Float64s(xs)
	n := len(xs)
	med := xs[n/2]
	if n%2 == 0 {
		med = (xs[n/2-1] + xs[n/2]) / 2
	}
	return Stat{Median: med, Min: xs[0], Max: xs[n-1], N: n}, true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// sortGroups orders the rows of one workload: leading parameters (the
// broker for pollers), then Ferry before its peers, then systems in the
// order they first appear in the results (the bench's own order), then
// the remaining parameters, numbers compared as numbers.
func sortGroups(gs []*group) {
	if len(gs) == 0 {
		return
	}
	lead := leadingParams[gs[0].Workload]
	firstOfSystem := map[string]int{}
	for _, g := range gs {
		if f, ok := firstOfSystem[g.System]; !ok || g.first < f {
			firstOfSystem[g.System] = g.first
		}
	}
	sort.SliceStable(gs, func(i, j int) bool {
		a, b := gs[i], gs[j]
		for _, k := range lead {
			if c := naturalCompare(paramOrSystem(a, k), paramOrSystem(b, k)); c != 0 {
				return c < 0
			}
		}
		if fa, fb := isFerry(a.System), isFerry(b.System); fa != fb {
			return fa
		}
		if a.System != b.System {
			return firstOfSystem[a.System] < firstOfSystem[b.System]
		}
		for _, k := range paramKeys([]*group{a, b}) {
			if c := naturalCompare(a.Params[k], b.Params[k]); c != 0 {
				return c < 0
			}
		}
		return a.first < b.first
	})
}

// paramOrSystem returns parameter k of g; for "broker" it falls back to a
// broker named in the system (e.g. "kafka-go raw consumer").
func paramOrSystem(g *group, k string) string {
	if v, ok := g.Params[k]; ok {
		return v
	}
	if k == "broker" {
		return brokerOf(g)
	}
	return ""
}

// knownBrokers are recognized in system names when a result has no
// "broker" parameter.
var knownBrokers = []string{"kafka", "rabbitmq", "redis", "rocketmq", "nats", "sqs", "pulsar"}

// brokerOf returns the broker a pollers group ran against.
func brokerOf(g *group) string {
	if b, ok := g.Params["broker"]; ok {
		return b
	}
	s := strings.ToLower(g.System)
	for _, b := range knownBrokers {
		if strings.Contains(s, b) {
			if b == "redis" && strings.Contains(s, "stream") {
				return "redis streams"
			}
			return b
		}
	}
	return ""
}

// isFerry reports whether system is Ferry itself (not a ceiling that
// merely runs part of Ferry, such as its submit API alone).
func isFerry(system string) bool {
	s := strings.ToLower(system)
	return strings.HasPrefix(s, "ferry") && !isCeiling(system)
}

// isCeiling reports whether system is a ceiling rather than a product:
// wrk or a bare client against a trivial server, the submit API alone, a
// raw consumer.
func isCeiling(system string) bool {
	s := strings.ToLower(system)
	for _, w := range []string{"ceiling", "wrk", "alone", "raw", "trivial", "net/http"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// paramOrder puts the well-known parameters first.
var paramOrder = []string{"broker", "batch", "backlog", "tenants", "rate"}

// paramKeys returns the union of the parameter keys of gs, well-known
// ones first, then alphabetically.
func paramKeys(gs []*group) []string {
	set := map[string]bool{}
	for _, g := range gs {
		for k := range g.Params {
			set[k] = true
		}
	}
	var keys []string
	for _, k := range paramOrder {
		if set[k] {
			keys = append(keys, k)
			delete(set, k)
		}
	}
	var rest []string
	for k := range set {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// paramString renders params deterministically, "k=v" joined by sep
// (", " when sep is empty), numbers humanized (1000000 → 1M).
func paramString(params map[string]string, sep string) string {
	human := sep == ""
	if human {
		sep = ", "
	}
	var parts []string
	for _, k := range paramKeys([]*group{{Params: params}}) {
		v := params[k]
		if human {
			v = humanCount(v)
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, sep)
}

// naturalCompare compares two strings, as numbers when both are numbers.
func naturalCompare(a, b string) int {
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	switch {
	case errA == nil && errB == nil:
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	case errA == nil:
		return -1 // numbers before words
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
