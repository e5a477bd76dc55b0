package poller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the per-trigger metrics, shared by every trigger. A nil
// *Metrics records nothing.
type Metrics struct {
	messages *prometheus.CounterVec
	inFlight *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
	partLag  *prometheus.GaugeVec
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
			Help: "Messages the trigger's consumer group is behind, where the broker tells.",
		}, []string{"trigger"}),
		partLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_trigger_partition_lag",
			Help: "Messages the trigger's consumer group is behind per partition (Kafka) or message queue (RocketMQ, broker/queueId).",
		}, []string{"trigger", "partition"}),
	}
	reg.MustRegister(m.messages, m.inFlight, m.lag, m.partLag)
	return m
}

// triggerEvents are the values of the event label.
var triggerEvents = []string{"consumed", "filtered", "invoked", "succeeded", "failed", "redelivered"}

// triggerMetrics are one trigger's series, resolved once so the per-message
// path does not look label values up again. A nil *triggerMetrics records
// nothing.
type triggerMetrics struct {
	events   map[string]prometheus.Counter
	inFlight prometheus.Gauge
	lag      prometheus.Gauge
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
		events:   make(map[string]prometheus.Counter, len(triggerEvents)),
		inFlight: m.inFlight.WithLabelValues(name),
		lag:      m.lag.WithLabelValues(name),
		name:     name,
		partLag:  m.partLag,
		parts:    map[string]bool{},
	}
	for _, e := range triggerEvents {
		t.events[e] = m.messages.WithLabelValues(name, e)
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
		t.lag.Set(float64(n))
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
	t.lag.Set(float64(total))
}
