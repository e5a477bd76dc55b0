package dashboard

import (
	"time"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/wire"
)

// Stats is the body of GET /v1/stats.
type Stats struct {
	Time time.Time `json:"time"`
	// Admin is true for an admin key: every tenant is shown.
	Admin bool `json:"admin"`
	// WindowSeconds is the window of the per-minute rates and quantiles;
	// StepSeconds the spacing of the series' points (15 minutes of them).
	WindowSeconds float64         `json:"window_seconds"`
	StepSeconds   float64         `json:"step_seconds"`
	Tenants       []TenantStats   `json:"tenants"`
	Functions     []FunctionStats `json:"functions"`
	Triggers      []TriggerStats  `json:"triggers"`
}

// TenantStats is one tenant's totals and limits.
type TenantStats struct {
	Name           string  `json:"name"`
	Queued         float64 `json:"queued"`
	Running        float64 `json:"running"`
	MaxConcurrency int     `json:"max_concurrency"`
	MaxQueued      int     `json:"max_queued"`
}

// FunctionStats is one function's queue, limits, rates and latencies.
// Queued and running are the store's counts (every node's, on Redis); the
// rest is this node's.
type FunctionStats struct {
	Tenant         string  `json:"tenant"`
	Function       string  `json:"function"`
	Queued         float64 `json:"queued"`
	Running        float64 `json:"running"`
	InFlight       float64 `json:"in_flight"`
	MaxConcurrency int     `json:"max_concurrency"`
	// ConcurrencyLimit is the adaptive limit now (max_concurrency, or
	// less while the backend signals overload).
	ConcurrencyLimit float64 `json:"concurrency_limit"`
	SucceededPerMin  float64 `json:"succeeded_per_min"`
	FailedPerMin     float64 `json:"failed_per_min"`
	// Succeeded15m and Failed15m count the outcomes of the last 15
	// minutes (since the node started, if that is later).
	Succeeded15m float64 `json:"succeeded_15m"`
	Failed15m    float64 `json:"failed_15m"`
	// Latencies in milliseconds over the window; null when nothing ran.
	WaitP50Ms *float64 `json:"wait_p50_ms"`
	WaitP99Ms *float64 `json:"wait_p99_ms"`
	RunP50Ms  *float64 `json:"run_p50_ms"`
	RunP99Ms  *float64 `json:"run_p99_ms"`
	Series    Series   `json:"series"`
}

// TriggerStats is one trigger's message rates, in flight and lag.
type TriggerStats struct {
	Name            string   `json:"name"`
	Tenant          string   `json:"tenant"`
	Function        string   `json:"function"`
	Kind            string   `json:"kind"`
	ConsumedPerMin  float64  `json:"consumed_per_min"`
	InvokedPerMin   float64  `json:"invoked_per_min"`
	SucceededPerMin float64  `json:"succeeded_per_min"`
	FailedPerMin    float64  `json:"failed_per_min"`
	InFlight        float64  `json:"in_flight"`
	Lag             *float64 `json:"lag"` // null until the broker told
	// LagByPartition is the lag per partition (Kafka) or message queue
	// (RocketMQ, "broker/queueId"); absent for a single queue or stream.
	LagByPartition map[string]float64 `json:"lag_by_partition,omitempty"`
	Series         Series             `json:"series"`
}

// Series are 15 minutes of points, oldest first: T in Unix seconds, and
// one list per named measure, each as long as T.
type Series struct {
	T      []int64              `json:"t"`
	Values map[string][]float64 `json:"values"`
}

// catalog is what the config says exists: the dashboard lists every
// tenant, function and trigger, whether or not it has run yet.
type catalog struct {
	tenants   []config.Tenant
	functions []config.Function
	triggers  []triggerInfo
}

type triggerInfo struct {
	name, kind string
	lane       wire.Lane
}

func catalogOf(cfg *config.Config) catalog {
	c := catalog{tenants: cfg.Tenants, functions: cfg.Functions}
	for i := range cfg.Triggers {
		t := &cfg.Triggers[i]
		ti := triggerInfo{name: t.Name, kind: t.Source.Kind(), lane: wire.Lane{Tenant: t.Tenant, Function: t.Function}}
		if f := cfg.FunctionOf(t); f != nil {
			ti.lane.Tenant = f.Tenant
		}
		c.triggers = append(c.triggers, ti)
	}
	return c
}

// view builds the stats that see (a tenant, or every one for an admin)
// may read from w.
func (c catalog) view(w window, sees func(tenant string) bool, admin bool) Stats {
	out := Stats{
		Time: w.cur.at.UTC(), Admin: admin, WindowSeconds: w.cur.at.Sub(w.base.at).Seconds(), StepSeconds: pointEvery.Seconds(),
		Tenants: []TenantStats{}, Functions: []FunctionStats{}, Triggers: []TriggerStats{},
	}
	// Per-minute figures count the last minute (or since the node
	// started, when that is sooner): not extrapolated from a few seconds.
	perMin := perMinute(w.base.at, w.base.at.Add(max(w.cur.at.Sub(w.base.at), rateWindow)))
	tenants := map[string]*TenantStats{}
	for _, t := range c.tenants {
		if sees(t.Name) {
			out.Tenants = append(out.Tenants, TenantStats{Name: t.Name, MaxConcurrency: t.MaxConcurrency, MaxQueued: t.MaxQueued})
		}
	}
	for i := range out.Tenants {
		tenants[out.Tenants[i].Name] = &out.Tenants[i]
	}
	for _, f := range c.functions {
		if !sees(f.Tenant) {
			continue
		}
		lane := wire.Lane{Tenant: f.Tenant, Function: f.Name}
		cur, base := laneOf(w.cur, lane), laneOf(w.base, lane)
		fs := FunctionStats{
			Tenant: f.Tenant, Function: f.Name, Queued: cur.queued, Running: cur.running, InFlight: cur.inFlight,
			MaxConcurrency: f.MaxConcurrency, ConcurrencyLimit: cur.limit,
			SucceededPerMin: (cur.succeeded - base.succeeded) * perMin, FailedPerMin: (cur.failed - base.failed) * perMin,
			Succeeded15m: cur.succeeded, Failed15m: cur.failed,
		}
		if fs.ConcurrencyLimit == 0 {
			fs.ConcurrencyLimit = float64(f.MaxConcurrency)
		}
		if len(w.points) == historyPoints {
			// The first point's totals are where the 15 minutes begin.
			first := w.points[0].lanes[lane]
			fs.Succeeded15m, fs.Failed15m = cur.succeeded-first.succeeded, cur.failed-first.failed
		}
		wait, run := cur.wait.minus(base.wait), cur.run.minus(base.run)
		fs.WaitP50Ms, fs.WaitP99Ms = millis(wait, 0.5), millis(wait, 0.99)
		fs.RunP50Ms, fs.RunP99Ms = millis(run, 0.5), millis(run, 0.99)
		fs.Series = seriesOf(w.points, func(p point) []float64 {
			lp := p.lanes[lane]
			return []float64{lp.succeededPerMin, lp.failedPerMin, lp.queued, lp.running, lp.waitP99 * 1000}
		}, "succeeded_per_min", "failed_per_min", "queued", "running", "wait_p99_ms")
		out.Functions = append(out.Functions, fs)
		if t := tenants[f.Tenant]; t != nil {
			t.Queued += cur.queued
			t.Running += cur.running
		}
	}
	for _, ti := range c.triggers {
		if !sees(ti.lane.Tenant) {
			continue
		}
		cur, base := w.cur.triggers[ti.name], w.base.triggers[ti.name]
		if cur == nil {
			cur = &triggerSample{}
		}
		if base == nil {
			base = &triggerSample{}
		}
		ts := TriggerStats{
			Name: ti.name, Tenant: ti.lane.Tenant, Function: ti.lane.Function, Kind: ti.kind,
			ConsumedPerMin: (cur.consumed - base.consumed) * perMin, InvokedPerMin: (cur.invoked - base.invoked) * perMin,
			SucceededPerMin: (cur.succeeded - base.succeeded) * perMin, FailedPerMin: (cur.failed - base.failed) * perMin,
			InFlight: cur.inFlight, LagByPartition: cur.partitions,
		}
		if cur.hasLag {
			lag := cur.lag
			ts.Lag = &lag
		}
		ts.Series = seriesOf(w.points, func(p point) []float64 {
			tp := p.triggers[ti.name]
			return []float64{tp.consumedPerMin, tp.invokedPerMin, tp.failedPerMin, tp.inFlight, tp.lag}
		}, "consumed_per_min", "invoked_per_min", "failed_per_min", "in_flight", "lag")
		out.Triggers = append(out.Triggers, ts)
	}
	return out
}

func laneOf(s *sample, lane wire.Lane) *laneSample {
	if l := s.lanes[lane]; l != nil {
		return l
	}
	return &laneSample{}
}

// millis is h's q-quantile in milliseconds, or nil when h is empty.
func millis(h histogram, q float64) *float64 {
	v, ok := h.quantile(q)
	if !ok {
		return nil
	}
	v *= 1000
	return &v
}

// seriesOf lays out the points' values under names (values returns them
// in that order).
func seriesOf(points []point, values func(point) []float64, names ...string) Series {
	s := Series{T: make([]int64, len(points)), Values: make(map[string][]float64, len(names))}
	for _, n := range names {
		s.Values[n] = make([]float64, len(points))
	}
	for i, p := range points {
		s.T[i] = p.at.Unix()
		for j, v := range values(p) {
			s.Values[names[j]][i] = v
		}
	}
	return s
}
