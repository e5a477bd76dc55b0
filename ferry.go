// Package ferry assembles Ferry from its configuration: the durable task
// queue, the HTTP API, the dispatcher with its backends and the outcome
// destinations. `ferry serve` runs it; programs that embed Ferry as a
// library use New with WithFunction to register in-process Go backends.
package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/assemble"
	"github.com/ferrydev/ferry/internal/dashboard"
	"github.com/ferrydev/ferry/internal/gcfloor"
	"github.com/ferrydev/ferry/internal/queuemetrics"
	"github.com/ferrydev/ferry/internal/routes"
	"github.com/ferrydev/ferry/internal/telemetry"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/timer"
	"github.com/ferrydev/ferry/wire"
)

// Option customises a Server built by New.
type Option func(*options)

type options struct {
	backends map[wire.Lane]dispatcher.Backend
	logger   *slog.Logger
	clock    func() time.Time
	states   TriggerStates
}

// WithFunction registers an in-process Go backend for the tenant's function
// (the config names it with `backend: { go: {} }`; registering one for a
// function with another backend replaces that backend).
func WithFunction(tenant, function string, b dispatcher.Backend) Option {
	return func(o *options) { o.backends[wire.Lane{Tenant: tenant, Function: function}] = b }
}

// WithLogger sets the logger (default: from the config's log section, to stderr).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the node's clock (default time.Now): what the API stamps
// on tasks and what the dispatcher schedules retries by. The Redis store
// decides leases and delays on Redis's clock whatever it says; tests use
// it to run a node whose clock is off.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// Server is a running Ferry: API, queue, dispatcher and outbox.
type Server struct {
	cfg       *config.Config
	log       *slog.Logger
	queue     async.Queue
	registry  *prometheus.Registry
	runner    *dispatcher.TaskRunner
	producers *assemble.Producers
	shared    *assemble.Shared
	outbox    *dispatcher.Outbox
	triggers  *triggerSet
	sampler   *dashboard.Sampler
	traces    *telemetry.Traces
	http      *http.Server
	lns       *listeners
	ready     atomic.Bool
	closed    sync.Once
}

// New builds a Server from a validated config: it opens the store and binds
// the listener (so Addr is known before Run), but runs nothing yet.
func New(cfg *config.Config, opts ...Option) (*Server, error) {
	o := &options{backends: map[wire.Lane]dispatcher.Backend{}, clock: time.Now}
	for _, opt := range opts {
		opt(o)
	}
	log := o.logger
	if log == nil {
		log = NewLogger(cfg.Log, os.Stderr)
	}
	s := &Server{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := dispatcher.NewMetrics(s.registry)

	s.producers = newProducers()
	s.shared = &assemble.Shared{}
	// fail releases what New opened so far.
	fail := func(err error) (*Server, error) {
		if s.queue != nil {
			err = errors.Join(err, s.queue.Close())
		}
		_ = s.producers.Close()
		_ = s.shared.Close()
		s.traces.Close(time.Second)
		return nil, err
	}
	fns, err := assemble.Functions(cfg, o.backends, s.producers, log)
	if err != nil {
		return fail(err)
	}
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w.String())
	}
	if s.shared, err = assemble.SharedState(cfg); err != nil {
		s.shared = &assemble.Shared{}
		return fail(err)
	}
	if s.traces, err = telemetry.New(context.Background(), cfg.Telemetry.Traces, log); err != nil {
		return fail(err)
	}
	dc := dispatcher.Config{
		RateStore: s.shared.Rates, TraceCounter: s.shared.Traces,
		Functions: fns, TenantConcurrency: map[string]int{},
		TenantRates: map[string]dispatcher.RateLimit{}, FunctionRates: map[wire.Lane]dispatcher.RateLimit{},
		MaxHops: cfg.LoopGuard.MaxHops, TraceWindow: cfg.LoopGuard.TraceWindow.D(),
		Tracer: s.traces.Tracer(), Metrics: metrics, Logger: log,
	}
	maxQueued := make(map[string]int, len(cfg.Tenants)) // for ferry_tenant_max_queued
	for _, t := range cfg.Tenants {
		maxQueued[t.Name] = t.MaxQueued
		dc.TenantConcurrency[t.Name] = t.MaxConcurrency
		dc.TenantRates[t.Name] = dispatcher.RateLimit{PerSecond: t.Rate, Burst: t.Burst}
	}
	for _, f := range cfg.Functions {
		dc.FunctionRates[wire.Lane{Tenant: f.Tenant, Function: f.Name}] = dispatcher.RateLimit{PerSecond: f.Rate, Burst: f.Burst}
	}
	d, err := dispatcher.New(dc)
	if err != nil {
		return fail(err)
	}
	pollers, err := assemble.Triggers(cfg, d, s.producers, poller.NewMetrics(s.registry), log)
	if err != nil {
		return fail(err)
	}
	if s.queue, err = assemble.Store(cfg, o.clock, log); err != nil {
		return fail(err)
	}
	q := s.queue
	s.registry.MustRegister(queuemetrics.New(q, maxQueued))
	if fs, ok := q.(queuemetrics.FreeSpacer); ok {
		s.registry.MustRegister(queuemetrics.NewFreeSpace(fs))
	}
	s.outbox = dispatcher.NewOutbox(d, q)
	shared := cfg.Store.Redis != nil
	if shared {
		// Other nodes' deliveries are taken over when their claims lapse.
		s.outbox.ResumeEvery(outboxResume)
	}
	s.runner = dispatcher.NewTaskRunner(d, q, s.outbox, dispatcher.TaskRunnerConfig{
		Workers: cfg.Dispatcher.Workers, DrainTimeout: cfg.Server.ShutdownTimeout.D(), Now: o.clock,
		RatesAtLease: shared, // the Redis store's Lease takes the rate tokens
	})
	// The API and the timer triggers submit through the same path, with
	// the same admission buckets.
	admit := routes.Admission(cfg, s.shared.Admission, log)
	sub := async.NewSubmitter(async.SubmitterConfig{
		Store: q, MaxQueued: func(tenant string) int { return maxQueued[tenant] }, Admit: admit, Now: o.clock,
	})
	timers, err := assemble.Timers(cfg, sub, timer.NewMetrics(s.registry), timer.SystemClock(o.clock), log)
	if err != nil {
		return fail(err)
	}
	if s.triggers, err = triggerSetOf(cfg, pollers, timers, o.states, q, s.registry, log); err != nil {
		return fail(err)
	}
	s.sampler = dashboard.NewSampler(s.registry, q.Stats, o.clock)
	routeOpts := []routes.Option{routes.WithDashboard(s.sampler), routes.WithTracer(s.traces.Tracer()), routes.WithAdmit(admit)}
	routeOpts = append(routeOpts, routes.WithReadinessDetail(s.readinessDetail), routes.WithTriggers(s.triggers))
	routeOpts = append(routeOpts, metricsRouteOptions(cfg.Server)...)
	s.http = &http.Server{
		Handler:           routes.Handler(cfg, q, d, s.registry, s.readiness, o.clock, log, routeOpts...),
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// The listeners set the idle timeout, the connection cap and TLS.
	if s.lns, err = openListeners(cfg.Server, s.http, routes.MetricsHandler(s.registry), s.registry, log); err != nil {
		return fail(err)
	}
	return s, nil
}

// readiness is nil when /readyz should answer 200: serving, and the store
// reachable.
func (s *Server) readiness() error {
	if !s.ready.Load() {
		return errors.New("ferry is starting or shutting down")
	}
	if h, ok := s.queue.(interface{ Healthy() bool }); ok && !h.Healthy() {
		return errors.New("the task store does not answer")
	}
	if f, ok := s.queue.(interface{ Full() bool }); ok && f.Full() {
		return errors.New("the task store is below its free-space reserve (store.embedded.min_free): submits are refused until space returns")
	}
	return nil
}

// triggerSetOf manages the pollers and timers (in config order), with
// the paused states in states, or else in the task store q.
func triggerSetOf(cfg *config.Config, pollers []*poller.Poller, timers []*timer.Timer, states TriggerStates, q async.Queue, reg prometheus.Registerer, log *slog.Logger) (*triggerSet, error) {
	if states == nil {
		var ok bool
		if states, ok = q.(TriggerStates); !ok {
			return nil, fmt.Errorf("the task store %T cannot keep the triggers' paused state", q)
		}
	}
	tenants := make(map[string]string, len(cfg.Triggers))
	for i := range cfg.Triggers {
		if f := cfg.FunctionOf(&cfg.Triggers[i]); f != nil {
			tenants[cfg.Triggers[i].Name] = f.Tenant
		}
	}
	byName := make(map[string]trigger, len(pollers)+len(timers))
	for _, p := range pollers {
		byName[p.Name()] = p
	}
	for _, t := range timers {
		byName[t.Name()] = t
	}
	ts := make([]trigger, 0, len(byName))
	for i := range cfg.Triggers {
		if t, ok := byName[cfg.Triggers[i].Name]; ok {
			ts = append(ts, t)
		}
	}
	return newTriggerSet(ts, func(name string) string { return tenants[name] }, states, reg, log), nil
}

// outboxResume is how often the outbox looks for deliveries no node holds
// on a shared store.
const outboxResume = 5 * time.Second

// newProducers makes the destinations' producers; tests replace it to
// see them closed.
var newProducers = assemble.NewProducers

// Addr is the address the API listens on.
func (s *Server) Addr() net.Addr { return s.lns.api.Addr() }

// MetricsAddr is the address of server.metrics_listen, nil when /metrics
// is on the API's listener.
func (s *Server) MetricsAddr() net.Addr {
	if s.lns.metrics == nil {
		return nil
	}
	return s.lns.metrics.Addr()
}

// Run serves until ctx ends (the triggers start in the paused state the
// store keeps for them), then shuts down in order: readiness off; the
// triggers stop fetching, the dispatcher stops leasing and the API stops
// accepting, each draining its work in flight within
// server.shutdown_timeout (unstarted tasks stay queued, unstarted messages
// go back to their broker); then the outbox stops (pending deliveries resume
// at the next start) and the store closes.
func (s *Server) Run(ctx context.Context) error {
	if floor := s.cfg.Server.GCHeapFloor; floor != nil {
		stopFloor, on := gcfloor.Start(uint64(*floor))
		defer stopFloor()
		if on {
			s.log.Info("gc heap floor set", "floor_bytes", int64(*floor))
		}
	}
	upkeepCtx, stopUpkeep := context.WithCancel(context.Background())
	outboxCtx, stopOutbox := context.WithCancel(context.Background())
	intakeCtx, stopIntake := context.WithCancel(context.Background())
	defer stopUpkeep()
	defer stopOutbox()
	defer stopIntake()

	pollCtx, stopPollers := context.WithCancel(context.Background())
	defer stopPollers()
	fatal := make(chan error, 3)
	var upkeep, outbox, intake, pollers sync.WaitGroup
	if u, ok := s.queue.(async.Upkeeper); ok {
		upkeep.Go(func() { _ = u.Run(upkeepCtx) })
	}
	upkeep.Go(func() { _ = s.sampler.Run(upkeepCtx) })
	outbox.Go(func() {
		if err := s.outbox.Run(outboxCtx, outboxWorkers); err != nil {
			fatal <- fmt.Errorf("outbox: %w", err)
		}
	})
	intake.Go(func() { _ = s.runner.Run(intakeCtx) })
	intake.Go(func() { serveHTTP("http", s.http, s.lns.api, s.lns.cert != nil, fatal) })
	if s.lns.msrv != nil {
		intake.Go(func() { serveHTTP("metrics http", s.lns.msrv, s.lns.metrics, false, fatal) })
	}
	// The stored pause states first: a trigger paused before a restart
	// reads nothing after it.
	s.triggers.load(pollCtx)
	pollers.Go(func() { s.triggers.run(pollCtx) })
	for _, t := range s.triggers.list {
		pollers.Go(func() { _ = t.Run(pollCtx) })
	}
	s.ready.Store(true)
	s.log.Info("ferry is serving", "listen", s.Addr().String(), "store", assemble.StoreName(s.cfg.Store),
		"tenants", len(s.cfg.Tenants), "functions", len(s.cfg.Functions), "triggers", len(s.triggers.list))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-fatal:
		s.log.Error("ferry stopping on error", "error", runErr)
	}
	s.ready.Store(false)
	s.log.Info("shutting down: stopping triggers and intake, draining in-flight work")
	// Senders first, all at once under one deadline: the pollers stop
	// fetching, the dispatcher stops leasing and the API stops accepting;
	// each drains what it has in flight within shutdown_timeout.
	stopPollers()
	stopIntake()
	shutCtx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout.D())
	defer cancel()
	_ = s.http.Shutdown(shutCtx)
	s.lns.shutdown(shutCtx)
	pollers.Wait()
	intake.Wait()
	stopOutbox()
	outbox.Wait()
	stopUpkeep()
	upkeep.Wait()
	if err := s.Close(); err != nil && runErr == nil {
		runErr = err
	}
	s.log.Info("ferry stopped")
	return runErr
}

// outboxWorkers bounds concurrent outcome delivery attempts.
const outboxWorkers = 8

// Close releases the store, the destinations' producers and the listener,
// and flushes the spans not yet exported (within server.shutdown_timeout);
// Run calls it on return.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		s.lns.close()
		err = errors.Join(s.producers.Close(), s.queue.Close(), s.shared.Close())
		s.traces.Close(s.cfg.Server.ShutdownTimeout.D())
	})
	return err
}

// NewLogger builds the slog logger the log config describes.
func NewLogger(c config.Log, w *os.File) *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(c.Level))
	ho := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, ho))
	}
	return slog.New(slog.NewJSONHandler(w, ho))
}
