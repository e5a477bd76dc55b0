package timer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the timer triggers' metrics, shared by every timer. A nil
// *Metrics records nothing.
type Metrics struct {
	ticks *prometheus.CounterVec
	next  *prometheus.GaugeVec
}

// results are the values of ferry_timer_ticks_total's result label.
var results = []string{ResultFired, ResultCaughtUp, ResultDuplicate, ResultSkipped, ResultFailed}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_timer_ticks_total",
			Help: "Timer trigger ticks on this node by result: fired (task created on time), caught_up (task created for a tick missed while down or paused), duplicate (the tick's task existed: another node or an earlier run made it), skipped (paused, passed over by catch_up, or older than max_lateness), failed (every submit failed until too late). Cluster-wide, fired + caught_up is the number of tasks.",
		}, []string{"trigger", "result"}),
		next: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_timer_next_tick_seconds",
			Help: "Unix time of the timer trigger's next tick; absent when its schedule has none.",
		}, []string{"trigger"}),
	}
	reg.MustRegister(m.ticks, m.next)
	return m
}

// timerMetrics are one timer's series. A nil *timerMetrics records
// nothing.
type timerMetrics struct {
	ticks map[string]prometheus.Counter
	name  string
	next  *prometheus.GaugeVec
}

// timer resolves the series of one timer (nil when m is nil); every
// result starts at 0.
func (m *Metrics) timer(name string) *timerMetrics {
	if m == nil {
		return nil
	}
	tm := &timerMetrics{ticks: map[string]prometheus.Counter{}, name: name, next: m.next}
	for _, r := range results {
		tm.ticks[r] = m.ticks.WithLabelValues(name, r)
	}
	return tm
}

func (tm *timerMetrics) tick(result string) {
	if tm != nil {
		tm.ticks[result].Inc()
	}
}

func (tm *timerMetrics) setNext(at time.Time) {
	if tm == nil {
		return
	}
	if at.IsZero() {
		tm.next.DeleteLabelValues(tm.name)
		return
	}
	tm.next.WithLabelValues(tm.name).Set(float64(at.Unix()))
}
