// Package dashboard serves Ferry's live dashboard at /ui/ and the JSON it
// reads, GET /v1/stats: per tenant and function the queue, the running
// invocations against their limits, outcome rates and latencies, and per
// trigger its message rates, in flight and lag, with 15 minutes of history.
// The figures come from the node's own Prometheus registry and the task
// store's counts, sampled every two seconds.
package dashboard

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

const (
	// step is how often the sampler reads the metrics.
	step = 2 * time.Second
	// rateWindow is the window of the per-minute rates and quantiles.
	rateWindow = time.Minute
	// pointEvery is the history's resolution; historyPoints of them make
	// its 15 minutes.
	pointEvery    = 15 * time.Second
	historyPoints = 60
)

// Sampler reads the registry and the queue's counts every two seconds
// and keeps what the dashboard shows: the last minute of readings, and
// 15 minutes of history points.
type Sampler struct {
	gather prometheus.Gatherer
	stats  func() []async.LaneStats
	now    func() time.Time

	mu      sync.Mutex
	started time.Time
	recent  []*sample // the readings of the last rateWindow, and one before it
	last    *sample   // the reading the newest history point ended at
	points  []point   // oldest first, at most historyPoints
}

// point is one history point: the rates over the pointEvery before at,
// and the counts at at.
type point struct {
	at       time.Time
	lanes    map[wire.Lane]lanePoint
	triggers map[string]triggerPoint
}

type lanePoint struct {
	succeededPerMin, failedPerMin float64
	queued, running               float64
	waitP99                       float64 // seconds; 0 when nothing started
	succeeded, failed             float64 // cumulative, for the window's totals
}

type triggerPoint struct {
	consumedPerMin, invokedPerMin, failedPerMin float64
	inFlight, lag                               float64
}

// NewSampler returns a Sampler of gather and the queue counts stats.
func NewSampler(gather prometheus.Gatherer, stats func() []async.LaneStats, now func() time.Time) *Sampler {
	if now == nil {
		now = time.Now
	}
	return &Sampler{gather: gather, stats: stats, now: now}
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context) error {
	s.Sample()
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.Sample()
		}
	}
}

// Sample takes one reading now (Run calls it every two seconds).
func (s *Sampler) Sample() {
	families, _ := s.gather.Gather() // a failing collector leaves its metrics out
	at := s.now()
	cur := read(at, families, s.stats())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started.IsZero() {
		s.started = at
		s.last = &sample{at: at}
	}
	s.recent = append(s.recent, cur)
	for len(s.recent) > 2 && !s.recent[1].at.After(at.Add(-rateWindow)) {
		s.recent = s.recent[1:]
	}
	if at.Sub(s.last.at) >= pointEvery {
		s.points = append(s.points, pointOf(s.last, cur))
		if len(s.points) > historyPoints {
			s.points = s.points[len(s.points)-historyPoints:]
		}
		s.last = cur
	}
}

// pointOf makes the history point of the interval from prev to cur.
func pointOf(prev, cur *sample) point {
	perMin := perMinute(prev.at, cur.at)
	p := point{at: cur.at, lanes: map[wire.Lane]lanePoint{}, triggers: map[string]triggerPoint{}}
	for l, c := range cur.lanes {
		b := prev.lanes[l]
		if b == nil {
			b = &laneSample{}
		}
		lp := lanePoint{
			succeededPerMin: (c.succeeded - b.succeeded) * perMin, failedPerMin: (c.failed - b.failed) * perMin,
			queued: c.queued, running: c.running, succeeded: c.succeeded, failed: c.failed,
		}
		if q, ok := c.wait.minus(b.wait).quantile(0.99); ok {
			lp.waitP99 = q
		}
		p.lanes[l] = lp
	}
	for name, c := range cur.triggers {
		b := prev.triggers[name]
		if b == nil {
			b = &triggerSample{}
		}
		p.triggers[name] = triggerPoint{
			consumedPerMin: (c.consumed - b.consumed) * perMin, invokedPerMin: (c.invoked - b.invoked) * perMin,
			failedPerMin: (c.failed - b.failed) * perMin, inFlight: c.inFlight, lag: c.lag,
		}
	}
	return p
}

// perMinute is the factor that turns a count over [from, to] into a rate
// per minute.
func perMinute(from, to time.Time) float64 {
	d := to.Sub(from)
	if d <= 0 {
		return 0
	}
	return float64(time.Minute) / float64(d)
}

// window is what a view is computed from: the newest reading, the one it
// measures rates from, the history and the first point's totals.
type window struct {
	cur, base *sample
	points    []point
}

// snapshot returns the current window; ok is false before the first
// reading.
func (s *Sampler) snapshot() (w window, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recent) == 0 {
		return w, false
	}
	w.cur = s.recent[len(s.recent)-1]
	w.base = &sample{at: s.started}
	if len(s.recent) > 1 {
		w.base = s.recent[0]
	}
	w.points = append([]point(nil), s.points...)
	return w, true
}
