// Package routes mounts Ferry's HTTP endpoints on one handler: the async
// API v1 (with its admission rates), /healthz, /readyz and /metrics, and a
// JSON 404 for anything else.
package routes

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// Handler mounts the API v1 (on q, for the functions of d), health,
// readiness and metrics endpoints. ready returns nil when /readyz answers
// 200, else the reason; reg is the registry the API registers its metrics
// in and /metrics serves; now is the node's clock.
func Handler(cfg *config.Config, q async.Queue, d *dispatcher.Dispatcher, reg *prometheus.Registry, ready func() error, now func() time.Time, log *slog.Logger) http.Handler {
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
		Registerer: reg,
		Logger:     log,
		Now:        now,
	})
	mux := http.NewServeMux()
	api.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			async.WriteError(w, http.StatusServiceUnavailable, "not_ready", err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
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
