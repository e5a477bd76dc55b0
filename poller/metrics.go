package poller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the per-trigger metrics, shared by every trigger. A nil
// *Metrics records nothing.
type Metrics struct {
	messages  *prometheus.CounterVec
	inFlight  *prometheus.GaugeVec
	lag       *prometheus.GaugeVec
	connected *prometheus.GaugeVec
	errors    *prometheus.CounterVec
	partLag   *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_trigger_messages_total",
			Help: "Trigger messages by event: consumed, filtered, invoked, succeeded, failed, redelivered.",
		}, []string{"trigger", "event"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_trigger_in_flight",
			Help: "Messages read and not yet settled, per trigger.",
		}, []string{"trigger"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_trigger_lag",
			Help: "Messages the trigger's consumer group is behind, where the broker tells; absent while it cannot be read (broker unreachable), never a stale or made-up 0.",
		}, []string{"trigger"}),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_trigger_connected",
			Help: "1 while the trigger's source is connected to its broker, 0 before its first connect, while it reconnects and after it stopped.",
		}, []string{"trigger"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_trigger_errors_total",
			Help: "Trigger source errors by kind: connect (a connect failed), connection_lost (a read found the connection gone), read (a read failed otherwise).",
		}, []string{"trigger", "kind"}),
	}
	m.partLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ferry_trigger_partition_lag",
		Help: "Messages the trigger's consumer group is behind per partition (Kafka) or message queue (RocketMQ, broker/queueId).",
	}, []string{"trigger", "partition"})
	reg.MustRegister(m.messages, m.inFlight, m.lag, m.connected, m.errors, m.partLag)
	return m
}

// triggerEvents are the values of the event label.
var triggerEvents = []string{"consumed", "filtered", "invoked", "succeeded", "failed", "redelivered"}

// sourceErrors are the values of ferry_trigger_errors_total's kind label.
var sourceErrors = []string{errConnect, errConnectionLost, errRead}

const (
	errConnect        = "connect"
	errConnectionLost = "connection_lost"
	errRead           = "read"
)

// triggerMetrics are one trigger's series, resolved once so the per-message
// path does not look label values up again. A nil *triggerMetrics records
// nothing.
type triggerMetrics struct {
	events    map[string]prometheus.Counter
	inFlight  prometheus.Gauge
	lag       *prometheus.GaugeVec // the series exists only while the lag is known
	connected prometheus.Gauge
	errors    map[string]prometheus.Counter
	// name and partLag set the per-partition lag; parts are the
	// partitions it has a series of (only the lag watcher touches them).
	name    string
	partLag *prometheus.GaugeVec
	parts   map[string]bool
}

// trigger resolves the series of one trigger (nil when m is nil).
func (m *Metrics) trigger(name string) *triggerMetrics {
	if m == nil {
		return nil
	}
	t := &triggerMetrics{
		events:    make(map[string]prometheus.Counter, len(triggerEvents)),
		inFlight:  m.inFlight.WithLabelValues(name),
		lag:       m.lag,
		connected: m.connected.WithLabelValues(name),
		errors:    make(map[string]prometheus.Counter, len(sourceErrors)),
		name:      name,
		partLag:   m.partLag,
		parts:     map[string]bool{},
	}
	for _, e := range triggerEvents {
		t.events[e] = m.messages.WithLabelValues(name, e)
	}
	for _, k := range sourceErrors {
		t.errors[k] = m.errors.WithLabelValues(name, k)
	}
	return t
}

func (t *triggerMetrics) count(event string, n int) {
	if t != nil && n > 0 {
		t.events[event].Add(float64(n))
	}
}

func (t *triggerMetrics) inflight(delta int) {
	if t != nil {
		t.inFlight.Add(float64(delta))
	}
}

func (t *triggerMetrics) setLag(n int64) {
	if t != nil {
		t.lag.WithLabelValues(t.name).Set(float64(n))
	}
}

// unknownLag removes the trigger's lag series (and its partitions'): the
// lag could not be read, and an old or zero value would say all is well.
func (t *triggerMetrics) unknownLag() {
	if t == nil {
		return
	}
	t.lag.DeleteLabelValues(t.name)
	for p := range t.parts {
		t.partLag.DeleteLabelValues(t.name, p)
		delete(t.parts, p)
	}
}

// setPartitionLag sets the lag of each partition, and the total; a
// partition the trigger no longer reads loses its series.
func (t *triggerMetrics) setPartitionLag(parts map[string]int64) {
	if t == nil {
		return
	}
	var total int64
	for p, n := range parts {
		total += n
		t.partLag.WithLabelValues(t.name, p).Set(float64(n))
		t.parts[p] = true
	}
	for p := range t.parts {
		if _, ok := parts[p]; !ok {
			t.partLag.DeleteLabelValues(t.name, p)
			delete(t.parts, p)
		}
	}
	t.lag.WithLabelValues(t.name).Set(float64(total))
}

// setConnected records whether the source is connected.
func (t *triggerMetrics) setConnected(up bool) {
	if t != nil {
		v := 0.0
		if up {
			v = 1
		}
		t.connected.Set(v)
	}
}

// sourceError counts an error of the source (kind: errConnect,
// errConnectionLost or errRead).
func (t *triggerMetrics) sourceError(kind string) {
	if t != nil {
		t.errors[kind].Inc()
	}
}
