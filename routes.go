package ferry

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// routes mounts the API v1, health, readiness and metrics endpoints.
func (s *Server) routes(cfg *config.Config, q async.Queue, d *dispatcher.Dispatcher) http.Handler {
	keys := map[string][]string{}
	maxQueued := map[string]int{}
	for _, t := range cfg.Tenants {
		keys[t.Name] = t.APIKeys
		maxQueued[t.Name] = t.MaxQueued
	}
	api := async.NewAPI(async.APIConfig{
		Store: q,
		Auth:  async.NewAuth(keys),
		Functions: func(tenant, fn string) bool {
			return d.Function(wire.Lane{Tenant: tenant, Function: fn}) != nil
		},
		MaxQueued:  func(tenant string) int { return maxQueued[tenant] },
		Admit:      admission(cfg),
		MaxPayload: int64(cfg.Server.MaxPayload),
		Tracer:     dispatcher.PropagationTracer(),
		Registerer: s.registry,
		Logger:     s.log,
	})
	mux := http.NewServeMux()
	api.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			async.WriteError(w, http.StatusServiceUnavailable, "not_ready", "ferry is starting or shutting down")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		async.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// admission holds submissions to the tenants' and functions' rates, with
// token buckets of their own: the dispatcher's buckets pace the
// invocations of what was admitted (and of triggers).
func admission(cfg *config.Config) func(tenant, function string) time.Duration {
	rates := dispatcher.NewRates()
	limited := false
	for _, t := range cfg.Tenants {
		rates.SetTenant(t.Name, t.Rate, t.Burst)
		limited = limited || t.Rate > 0
	}
	for _, f := range cfg.Functions {
		rates.SetFunction(wire.Lane{Tenant: f.Tenant, Function: f.Name}, f.Rate, f.Burst)
		limited = limited || f.Rate > 0
	}
	if !limited {
		return nil
	}
	return func(tenant, function string) time.Duration {
		return rates.Take(wire.Lane{Tenant: tenant, Function: function}, time.Now())
	}
}

// queueCollector exports the queue depth per tenant from the queue's
// in-memory counts at scrape time.
type queueCollector struct {
	q     async.Queue
	depth *prometheus.Desc
}

func newQueueCollector(q async.Queue) *queueCollector {
	return &queueCollector{q: q, depth: prometheus.NewDesc("ferry_queue_depth",
		"Unfinished tasks per tenant and state (queued includes delayed and waiting for retry).",
		[]string{"tenant", "state"}, nil)}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.depth }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	type counts struct{ queued, running int }
	per := map[string]*counts{}
	for _, st := range c.q.Stats() {
		n := per[st.Lane.Tenant]
		if n == nil {
			n = &counts{}
			per[st.Lane.Tenant] = n
		}
		n.queued += st.Queued
		n.running += st.Running
	}
	for tenant, n := range per {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n.queued), tenant, "queued")
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n.running), tenant, "running")
	}
}
