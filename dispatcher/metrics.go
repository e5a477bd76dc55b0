package dispatcher

import (
	"context"
	"sync"
	"time"

	"github.com/ferrydev/ferry/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the dispatcher's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	inFlight   *prometheus.GaugeVec
	attempts   *prometheus.CounterVec
	attemptDur *prometheus.HistogramVec
	outcomes   *prometheus.CounterVec
	endToEnd   *prometheus.HistogramVec
	queueWait  *prometheus.HistogramVec
	deliveries *prometheus.CounterVec
	loops      *prometheus.CounterVec
	capacity   *prometheus.GaugeVec
	localErrs  *prometheus.CounterVec
	// lanes caches each lane's series of Observe (wire.Lane → *laneSeries),
	// so that an attempt does not hash its labels three times.
	lanes sync.Map
	// waits caches each lane's ferry_task_queue_wait_seconds series
	// (wire.Lane → prometheus.Observer): tasks only, so trigger lanes
	// get none.
	waits sync.Map
}

// laneSeries are one lane's series that every attempt touches.
type laneSeries struct {
	inFlight prometheus.Gauge
	duration prometheus.Observer
	success  prometheus.Counter
}

func (m *Metrics) series(tenant, function string) *laneSeries {
	lane := wire.Lane{Tenant: tenant, Function: function}
	if s, ok := m.lanes.Load(lane); ok {
		return s.(*laneSeries)
	}
	s, _ := m.lanes.LoadOrStore(lane, &laneSeries{
		inFlight: m.inFlight.WithLabelValues(tenant, function),
		duration: m.attemptDur.WithLabelValues(tenant, function),
		success:  m.attempts.WithLabelValues(tenant, function, "success"),
	})
	return s.(*laneSeries)
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_invocations_in_flight",
			Help: "Invocations running now, per tenant and function.",
		}, []string{"tenant", "function"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_attempts_total",
			Help: "Backend attempts by result (success, or the error code).",
		}, []string{"tenant", "function", "result"}),
		attemptDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_attempt_duration_seconds",
			Help:    "Duration of one backend attempt.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"tenant", "function"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_task_outcomes_total",
			Help: "Task outcomes: succeeded, failed (by code), retried, released, lease_lost.",
		}, []string{"tenant", "function", "outcome"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_task_latency_seconds",
			Help:    "Time from submission to a final outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}, []string{"tenant", "function", "status"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_deliveries_total",
			Help: "Outcome delivery attempts by sink kind and result (delivered, retried, failed).",
		}, []string{"kind", "result"}),
		loops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_loops_detected_total",
			Help: "Invocations refused by the loop guard, by what caught them (hops, trace).",
		}, []string{"tenant", "function", "by"}),
		capacity: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_function_concurrency_limit",
			Help: "A function's concurrency limit now: max_concurrency, or less while its backend signals overload (adaptive, AIMD).",
		}, []string{"tenant", "function"}),
	}
	m.localErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_local_resource_errors_total",
		Help: "Attempts (task, trigger message or outcome delivery) that failed on a resource of Ferry's own, by errno (emfile, enfile, enomem, enobufs, eaddrnotavail, eagain): not spent, tried again after a short backoff.",
	}, []string{"kind"})
	m.queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_task_queue_wait_seconds",
		Help:    "Time from when a task is due (submitted, or its delay or retry over) to the start of its attempt.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
	}, []string{"tenant", "function"})
	reg.MustRegister(m.inFlight, m.attempts, m.attemptDur, m.outcomes, m.endToEnd, m.queueWait, m.deliveries, m.loops, m.capacity, m.localErrs)
	return m
}

// Observe is the middleware that counts attempts, their duration and the
// invocations in flight.
func (m *Metrics) Observe() Middleware {
	return func(next Backend) Backend {
		if m == nil {
			return next
		}
		return BackendFunc(func(ctx context.Context, inv *Invocation) (*Result, error) {
			s := m.series(inv.Tenant, inv.Function)
			s.inFlight.Inc()
			start := time.Now()
			res, err := next.Invoke(ctx, inv)
			s.inFlight.Dec()
			s.duration.Observe(time.Since(start).Seconds())
			if err != nil {
				m.attempts.WithLabelValues(inv.Tenant, inv.Function, Classify(err).Code).Inc()
			} else {
				s.success.Inc()
			}
			return res, err
		})
	}
}

// refused counts an invocation the loop guard refused as an attempt with
// the result loop_detected (it took no time).
func (m *Metrics) refused(lane wire.Lane) {
	if m != nil {
		m.attempts.WithLabelValues(lane.Tenant, lane.Function, wire.CodeLoopDetected).Inc()
	}
}

func (m *Metrics) outcome(tenant, function, outcome string) {
	if m != nil {
		m.outcomes.WithLabelValues(tenant, function, outcome).Inc()
	}
}

func (m *Metrics) finished(tenant, function, status string, age time.Duration) {
	if m != nil {
		m.endToEnd.WithLabelValues(tenant, function, status).Observe(age.Seconds())
	}
}

// started records how long a task waited between being due and its
// attempt starting.
func (m *Metrics) started(lane wire.Lane, waited time.Duration) {
	if m == nil {
		return
	}
	o, ok := m.waits.Load(lane)
	if !ok {
		o, _ = m.waits.LoadOrStore(lane, m.queueWait.WithLabelValues(lane.Tenant, lane.Function))
	}
	o.(prometheus.Observer).Observe(max(waited, 0).Seconds())
}

func (m *Metrics) delivery(kind, result string) {
	if m != nil {
		m.deliveries.WithLabelValues(kind, result).Inc()
	}
}

// local counts an attempt that failed on a resource of Ferry's own.
func (m *Metrics) local(kind string) {
	if m != nil {
		m.localErrs.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) loop(lane wire.Lane, by string) {
	if m != nil {
		m.loops.WithLabelValues(lane.Tenant, lane.Function, by).Inc()
	}
}

// limitGauge resolves a lane's ferry_function_concurrency_limit once, so
// that invocations do not look the series up (nil without metrics).
func (m *Metrics) limitGauge(lane wire.Lane) prometheus.Gauge {
	if m == nil {
		return nil
	}
	return m.capacity.WithLabelValues(lane.Tenant, lane.Function)
}
