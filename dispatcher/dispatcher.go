package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// Event types of invocations (CloudEvents type).
const (
	TypeTask = "dev.ferry.task"
)

// TaskSource is the CloudEvents source of a lane's async tasks.
func TaskSource(l wire.Lane) string { return "/ferry/async/" + l.Tenant + "/" + l.Function }

// Sink is what the dispatcher needs of a destination: Deliver returns nil
// only once the destination has accepted the outcome (package sinks has
// the implementations, which satisfy it; the dispatcher does not import
// them, so triggers and sinks stay apart).
type Sink interface {
	Deliver(ctx context.Context, o *wire.Outcome) error
}

// Destination is one resolved destination of a function.
type Destination struct {
	// Name is the destination's place in the config, e.g. "on_success[0]".
	Name string
	// Kind is the sink kind, e.g. "webhook".
	Kind string
	Sink Sink
	// Retry is the redelivery policy; Timeout bounds one delivery attempt.
	Retry   RetryPolicy
	Timeout time.Duration
}

// Function is a resolved function: its backend, limits and policies.
type Function struct {
	Lane    wire.Lane
	Backend Backend
	// Timeout bounds one attempt (0: none).
	Timeout        time.Duration
	MaxConcurrency int
	Retry          RetryPolicy
	OnSuccess      []Destination
	OnFailure      []Destination

	invoker  Backend          // Backend behind the standard middleware
	capacity prometheus.Gauge // ferry_function_concurrency_limit of Lane; nil without metrics
}

// Config assembles a Dispatcher.
type Config struct {
	Functions []*Function
	// TenantConcurrency maps tenants to their max_concurrency.
	TenantConcurrency map[string]int
	// MaxHops is loop_guard.max_hops; TraceWindow is loop_guard.trace_window.
	MaxHops     int
	TraceWindow time.Duration
	// TenantRates and FunctionRates set the rates (Limits.Rates), when
	// RateStore is nil.
	TenantRates   map[string]RateLimit
	FunctionRates map[wire.Lane]RateLimit
	// RateStore, when set, holds the rates' buckets where every node takes
	// from them (redisstore.Rates, built with the tenants' and functions'
	// rates), instead of this node's memory: TenantRates and FunctionRates
	// are then not used. A store that cannot be reached holds invocations
	// back, retrying every second, with a log line; none is lost. A queue
	// whose Lease takes the tokens of tasks from the same buckets is run
	// with TaskRunnerConfig.RatesAtLease. Defaults to nil: in memory, per
	// node.
	RateStore RateStore
	// TraceCounter, when set, counts the loop guard's first attempts per
	// trace where every node counts (redisstore.Traces, built with
	// TraceWindow), instead of this node's memory. When it cannot be
	// reached, invocations go through with a warning (hop counting still
	// holds). Defaults to nil: in memory, per node.
	TraceCounter TraceCounter
	// Tracer starts a span per attempt (nil: the invocation's traceparent
	// goes to the backend as it is). When it records (Recording), each
	// attempt's backend call and each outcome delivery gets a span too;
	// PropagationTracer only passes trace context on, at no recording
	// cost.
	Tracer  trace.Tracer
	Metrics *Metrics
	Logger  *slog.Logger
}

// RateLimit is a token bucket: PerSecond tokens a second, Burst at most.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// Dispatcher holds the functions, their middleware, the shared limits and
// the loop guard. Async tasks (TaskRunner) and pollers run every attempt
// through it (Acquire or TryAcquire, then Attempt) and send every outcome
// through it (NewOutcome, DeliverNow or the Outbox).
type Dispatcher struct {
	functions map[wire.Lane]*Function
	limits    *Limits
	guard     *LoopGuard
	metrics   *Metrics
	log       *slog.Logger
	tracer    trace.Tracer
	recording bool // tracer records spans (Recording)
}

// New builds a Dispatcher: every function's backend is wrapped with the
// Standard middleware and the limits are set.
func New(cfg Config) (*Dispatcher, error) {
	d := &Dispatcher{
		functions: make(map[wire.Lane]*Function, len(cfg.Functions)),
		limits:    NewLimits(),
		metrics:   cfg.Metrics,
		log:       cfg.Logger,
		tracer:    cfg.Tracer,
		recording: Recording(cfg.Tracer),
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.guard = NewLoopGuard(cfg.MaxHops, cfg.TraceWindow, cfg.Metrics, d.log)
	d.guard.SetTraceCounter(cfg.TraceCounter)
	for t, n := range cfg.TenantConcurrency {
		d.limits.SetTenant(t, n)
	}
	if cfg.RateStore != nil {
		d.limits.SetRateStore(cfg.RateStore, d.log)
	} else {
		for t, r := range cfg.TenantRates {
			d.limits.Rates().SetTenant(t, r.PerSecond, r.Burst)
		}
		for l, r := range cfg.FunctionRates {
			d.limits.Rates().SetFunction(l, r.PerSecond, r.Burst)
		}
	}
	for _, f := range cfg.Functions {
		if f.Backend == nil {
			return nil, fmt.Errorf("function %s: no backend", f.Lane)
		}
		if f.Retry.MaxAttempts < 1 {
			return nil, fmt.Errorf("function %s: retry max_attempts must be at least 1", f.Lane)
		}
		if _, dup := d.functions[f.Lane]; dup {
			return nil, fmt.Errorf("function %s: defined twice", f.Lane)
		}
		f.invoker = Chain(f.Backend, append(Standard(cfg.Metrics, cfg.Tracer, f.Timeout), TraceBackend(cfg.Tracer, f.Backend))...)
		f.capacity = cfg.Metrics.limitGauge(f.Lane)
		d.functions[f.Lane] = f
		d.limits.SetFunction(f.Lane, f.MaxConcurrency)
	}
	return d, nil
}

// Function returns the function of a lane, or nil.
func (d *Dispatcher) Function(l wire.Lane) *Function { return d.functions[l] }

// leaseTTL is the longest lease any function needs: its timeout plus a grace
// period to record the outcome.
func (d *Dispatcher) leaseTTL() time.Duration {
	ttl := time.Duration(0)
	for _, f := range d.functions {
		t := f.Timeout
		if t <= 0 {
			t = 5 * time.Minute
		}
		ttl = max(ttl, t)
	}
	return ttl + 30*time.Second
}

// deliveriesFor lists the pending deliveries of an outcome.
func deliveriesFor(dests []Destination) []async.Delivery {
	ds := make([]async.Delivery, len(dests))
	for i, d := range dests {
		ds[i] = async.Delivery{Index: i, Destination: d.Name, Kind: d.Kind, State: async.DeliveryPending}
	}
	return ds
}
