package poller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the per-trigger metrics, shared by every trigger. A nil
// *Metrics records nothing.
type Metrics struct {
	messages *prometheus.CounterVec
	inFlight *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
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
	}
	reg.MustRegister(m.messages, m.inFlight, m.lag)
	return m
}

func (m *Metrics) count(trigger, event string, n int) {
	if m != nil && n > 0 {
		m.messages.WithLabelValues(trigger, event).Add(float64(n))
	}
}

func (m *Metrics) inflight(trigger string, delta int) {
	if m != nil {
		m.inFlight.WithLabelValues(trigger).Add(float64(delta))
	}
}

func (m *Metrics) setLag(trigger string, n int64) {
	if m != nil {
		m.lag.WithLabelValues(trigger).Set(float64(n))
	}
}
