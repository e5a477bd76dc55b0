package dashboard

import (
	"math"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// sample is one reading of the node's metrics and the queue's counts.
// Counters are cumulative since the process started; histograms are
// cumulative bucket counts.
type sample struct {
	at       time.Time
	lanes    map[wire.Lane]*laneSample
	triggers map[string]*triggerSample
}

// laneSample is one function's reading.
type laneSample struct {
	queued, running   float64 // the store's counts (cluster-wide on Redis)
	inFlight, limit   float64 // this node's invocations and adaptive limit
	succeeded, failed float64 // final outcomes
	retried           float64
	wait, run         histogram // queue wait; attempt duration
}

// triggerSample is one trigger's reading.
type triggerSample struct {
	consumed, invoked, succeeded, failed float64
	inFlight, lag                        float64
	hasLag                               bool
	partitions                           map[string]float64 // lag per partition or queue
}

// histogram is a Prometheus histogram's cumulative buckets.
type histogram struct {
	bounds []float64 // upper bounds, ascending, +Inf last when present
	counts []float64 // cumulative counts per bound
}

// read builds a sample from the gathered metric families and the queue's
// lane counts.
func read(at time.Time, families []*dto.MetricFamily, stats []async.LaneStats) *sample {
	s := &sample{at: at, lanes: map[wire.Lane]*laneSample{}, triggers: map[string]*triggerSample{}}
	lane := func(m *dto.Metric) *laneSample {
		l := wire.Lane{Tenant: label(m, "tenant"), Function: label(m, "function")}
		ls := s.lanes[l]
		if ls == nil {
			ls = &laneSample{}
			s.lanes[l] = ls
		}
		return ls
	}
	trig := func(m *dto.Metric) *triggerSample {
		name := label(m, "trigger")
		ts := s.triggers[name]
		if ts == nil {
			ts = &triggerSample{}
			s.triggers[name] = ts
		}
		return ts
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "ferry_task_outcomes_total":
				ls, v := lane(m), m.GetCounter().GetValue()
				switch o := label(m, "outcome"); {
				case o == "succeeded":
					ls.succeeded += v
				case o == "failed" || strings.HasPrefix(o, "failed:"):
					ls.failed += v
				case o == "retried":
					ls.retried += v
				}
			case "ferry_invocations_in_flight":
				lane(m).inFlight = m.GetGauge().GetValue()
			case "ferry_function_concurrency_limit":
				lane(m).limit = m.GetGauge().GetValue()
			case "ferry_task_queue_wait_seconds":
				lane(m).wait = histogramOf(m.GetHistogram())
			case "ferry_attempt_duration_seconds":
				lane(m).run = histogramOf(m.GetHistogram())
			case "ferry_trigger_messages_total":
				ts, v := trig(m), m.GetCounter().GetValue()
				switch label(m, "event") {
				case "consumed":
					ts.consumed = v
				case "invoked":
					ts.invoked = v
				case "succeeded":
					ts.succeeded = v
				case "failed":
					ts.failed = v
				}
			case "ferry_trigger_in_flight":
				trig(m).inFlight = m.GetGauge().GetValue()
			case "ferry_trigger_lag":
				ts := trig(m)
				ts.lag, ts.hasLag = m.GetGauge().GetValue(), true
			case "ferry_trigger_partition_lag":
				ts := trig(m)
				if ts.partitions == nil {
					ts.partitions = map[string]float64{}
				}
				ts.partitions[label(m, "partition")] = m.GetGauge().GetValue()
			}
		}
	}
	for _, st := range stats {
		ls := s.lanes[st.Lane]
		if ls == nil {
			ls = &laneSample{}
			s.lanes[st.Lane] = ls
		}
		ls.queued, ls.running = float64(st.Queued), float64(st.Running)
	}
	return s
}

func label(m *dto.Metric, name string) string {
	for _, p := range m.GetLabel() {
		if p.GetName() == name {
			return p.GetValue()
		}
	}
	return ""
}

func histogramOf(h *dto.Histogram) histogram {
	var out histogram
	for _, b := range h.GetBucket() {
		out.bounds = append(out.bounds, b.GetUpperBound())
		out.counts = append(out.counts, float64(b.GetCumulativeCount()))
	}
	if n := len(out.bounds); n == 0 || !math.IsInf(out.bounds[n-1], 1) {
		out.bounds = append(out.bounds, math.Inf(1))
		out.counts = append(out.counts, float64(h.GetSampleCount()))
	}
	return out
}

// minus returns h's counts less earlier's (the observations in between);
// earlier may be empty (everything since start).
func (h histogram) minus(earlier histogram) histogram {
	d := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts))}
	for i, c := range h.counts {
		d.counts[i] = c
		if i < len(earlier.counts) && len(earlier.bounds) == len(h.bounds) {
			d.counts[i] -= earlier.counts[i]
		}
	}
	return d
}

// quantile estimates the q-quantile as PromQL's histogram_quantile does:
// linear within the bucket that holds it, the highest finite bound when it
// falls in +Inf. ok is false when the histogram holds nothing.
func (h histogram) quantile(q float64) (v float64, ok bool) {
	n := len(h.counts)
	if n == 0 || h.counts[n-1] <= 0 {
		return 0, false
	}
	rank := q * h.counts[n-1]
	i := sort.Search(n, func(i int) bool { return h.counts[i] >= rank })
	if i >= n {
		i = n - 1
	}
	if math.IsInf(h.bounds[i], 1) {
		if i == 0 {
			return 0, true
		}
		return h.bounds[i-1], true
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = h.bounds[i-1], h.counts[i-1]
	}
	inBucket := h.counts[i] - below
	if inBucket <= 0 {
		return h.bounds[i], true
	}
	return lower + (h.bounds[i]-lower)*(rank-below)/inBucket, true
}
