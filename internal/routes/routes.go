// Package routes mounts Ferry's HTTP endpoints on one handler: the async
// API v1 (with its admission rates), the trigger endpoints /v1/triggers,
// /healthz, /readyz and /metrics, the dashboard at /ui/ and its /v1/stats,
// and a JSON 404 for anything else.
package routes

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/dashboard"
	"github.com/ferrydev/ferry/wire"
)

// Option configures Handler.
type Option func(*options)

type options struct {
	admission dispatcher.RateStore
	admit     func(tenant, function string) time.Duration
	admitSet  bool
	sampler   *dashboard.Sampler
	tracer    trace.Tracer
	noMetrics bool
	detail    func() Readiness
	triggers  Triggers
}

// WithTriggers serves /v1/triggers (list, pause, resume) over t; without
// it the node lists no triggers.
func WithTriggers(t Triggers) Option {
	return func(o *options) { o.triggers = t }
}

// WithoutMetrics leaves /metrics out (it answers 404): for a server whose
// metrics have a listener of their own (MetricsHandler).
func WithoutMetrics() Option {
	return func(o *options) { o.noMetrics = true }
}

// WithReadinessDetail makes GET /readyz?verbose=1 answer detail's report
// as JSON (see Readiness), with the status /readyz has.
func WithReadinessDetail(detail func() Readiness) Option {
	return func(o *options) { o.detail = detail }
}

// WithDashboard serves the dashboard (GET /ui/) and GET /v1/stats with the
// figures s samples; the caller runs s.
func WithDashboard(s *dashboard.Sampler) Option {
	return func(o *options) { o.sampler = s }
}

// WithTracer makes the API start its submission spans with tracer
// (default: dispatcher.PropagationTracer, which records nothing and only
// makes each task's traceparent).
func WithTracer(tracer trace.Tracer) Option {
	return func(o *options) { o.tracer = tracer }
}

// WithAdmissionRates makes submissions take their admission tokens from s,
// a rate store the nodes share, so that the tenants' and functions' rates
// hold for the whole cluster at admission (429 rate_limited) as well: use
// redisstore.NewAdmissionRates, built with the same rates as the
// dispatcher's redisstore.NewRates, whose buckets it keeps apart (admitting
// a task must not spend the token its invocation takes later). When s
// fails, a submission is admitted (its invocation still waits for its
// dispatch token) and a warning is logged, at most once a second. Without
// it, each node has its own admission buckets in memory.
func WithAdmissionRates(s dispatcher.RateStore) Option {
	return func(o *options) { o.admission = s }
}

// WithAdmit makes submissions take their admission with admit (nil admits
// everything), built once by Admission, so that the API and the timer
// triggers, which submit through the same path, share its buckets. It
// replaces WithAdmissionRates.
func WithAdmit(admit func(tenant, function string) time.Duration) Option {
	return func(o *options) { o.admit, o.admitSet = admit, true }
}

// Handler mounts the API v1 (on q, for the functions of d), health,
// readiness and metrics endpoints. ready returns nil when /readyz answers
// 200, else the reason; reg is the registry the API registers its metrics
// in and /metrics serves; now is the node's clock.
func Handler(cfg *config.Config, q async.Queue, d *dispatcher.Dispatcher, reg *prometheus.Registry, ready func() error, now func() time.Time, log *slog.Logger, opts ...Option) http.Handler {
	o := options{tracer: dispatcher.PropagationTracer()}
	for _, opt := range opts {
		opt(&o)
	}
	keys := map[string][]string{}
	maxQueued := map[string]int{}
	for _, t := range cfg.Tenants {
		keys[t.Name] = t.APIKeys
		maxQueued[t.Name] = t.MaxQueued
	}
	auth := async.NewAuth(keys, cfg.Server.AdminKeys...)
	admit := o.admit
	if !o.admitSet {
		admit = Admission(cfg, o.admission, log)
	}
	api := async.NewAPI(async.APIConfig{
		Store: q,
		Auth:  auth,
		Functions: func(tenant, fn string) bool {
			return d.Function(wire.Lane{Tenant: tenant, Function: fn}) != nil
		},
		MaxQueued:  func(tenant string) int { return maxQueued[tenant] },
		Admit:      admit,
		MaxPayload: int64(cfg.Server.MaxPayload),
		Tracer:     o.tracer,
		Registerer: reg,
		Logger:     log,
		Now:        now,
	})
	mux := http.NewServeMux()
	api.Register(mux)
	if log == nil {
		log = slog.Default()
	}
	triggers := o.triggers
	if triggers == nil {
		triggers = noTriggers{}
	}
	(&triggerAPI{auth: auth, triggers: triggers, log: log}).register(mux)
	if o.sampler != nil {
		dashboard.New(cfg, auth, o.sampler).Register(mux)
	}
	mux.HandleFunc("/healthz", getOnly(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	}))
	mux.HandleFunc("/readyz", getOnly(func(w http.ResponseWriter, r *http.Request) {
		err := ready()
		if o.detail != nil && r.URL.Query().Get("verbose") != "" {
			writeReadiness(w, err, o.detail())
			return
		}
		if err != nil {
			async.WriteError(w, http.StatusServiceUnavailable, "not_ready", err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ready\n"))
	}))
	if !o.noMetrics {
		mux.HandleFunc("/metrics", getOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}).ServeHTTP))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		async.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// MetricsHandler serves reg at GET /metrics and a JSON 404 for anything
// else: the handler of server.metrics_listen.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", getOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}).ServeHTTP))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		async.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// getOnly answers 405 with a valid Allow header to any method but GET and
// HEAD.
func getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			async.WriteMethodNotAllowed(w, r, http.MethodGet, http.MethodHead)
			return
		}
		h(w, r)
	}
}

// admitTimeout bounds a submission's call to a shared admission rate store.
const admitTimeout = 2 * time.Second

// Admission holds submissions to the tenants' and functions' rates, with
// token buckets of their own: the dispatcher's buckets pace the
// invocations of what was admitted (and of triggers). The buckets are in
// memory unless shared is set (see WithAdmissionRates); nil when no rate
// is set.
func Admission(cfg *config.Config, shared dispatcher.RateStore, log *slog.Logger) func(tenant, function string) time.Duration {
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
	if shared == nil {
		return func(tenant, function string) time.Duration {
			return rates.TakeAt(wire.Lane{Tenant: tenant, Function: function}, time.Now())
		}
	}
	if log == nil {
		log = slog.Default()
	}
	var logged atomic.Int64 // unix nanoseconds of the last warning
	return func(tenant, function string) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), admitTimeout)
		defer cancel()
		wait, err := shared.Take(ctx, wire.Lane{Tenant: tenant, Function: function})
		if err != nil {
			now := time.Now().UnixNano()
			if last := logged.Load(); now-last >= int64(time.Second) && logged.CompareAndSwap(last, now) {
				log.Warn("admission rate store unavailable: submissions are admitted without their rate",
					"tenant", tenant, "function", function, "error", err)
			}
			return 0
		}
		return wait
	}
}
