package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrydev/ferry/wire"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// LoopGuard stops invocation chains that would run for ever: a function
// whose output lands where it is triggered from. It refuses an invocation
//   - whose hop count has reached maxHops (every output Ferry emits carries
//     the invocation's hop count + 1), or
//   - of a function that already ran maxHops times in the same W3C trace
//     within the trace window, which catches code that forwards
//     traceparent but drops ferry-hops.
//
// A refused invocation fails with the permanent error loop_detected (never
// retried; it goes to on_failure), is counted in
// ferry_loops_detected_total and logged as a warning naming the function
// and the trace. Only first attempts are counted per trace, so retries of
// one event never look like a loop.
type LoopGuard struct {
	maxHops int
	traces  *traceCounter // nil: trace counting off
	metrics *Metrics
	log     *slog.Logger
}

// NewLoopGuard returns a LoopGuard (maxHops <= 0: off; window <= 0: no
// trace counting).
func NewLoopGuard(maxHops int, window time.Duration, m *Metrics, log *slog.Logger) *LoopGuard {
	g := &LoopGuard{maxHops: maxHops, metrics: m, log: log}
	if log == nil {
		g.log = slog.Default()
	}
	if maxHops > 0 && window > 0 {
		g.traces = newTraceCounter(window, maxTraceEntries)
	}
	return g
}

// checkHops returns a loop_detected error when hops has reached maxHops,
// after counting and logging it.
func (g *LoopGuard) checkHops(lane wire.Lane, hops int, traceParent string) error {
	if g == nil || g.maxHops <= 0 || hops < g.maxHops {
		return nil
	}
	g.detected(lane, "hops", traceParent, "hops", hops)
	return Permanent(wire.CodeLoopDetected,
		fmt.Errorf("%w: hop count %d reached loop_guard.max_hops %d", ErrLoopDetected, hops, g.maxHops))
}

// checkTrace counts a first attempt of lane in its trace and returns a
// loop_detected error when lane already ran maxHops times in it.
func (g *LoopGuard) checkTrace(lane wire.Lane, inv *Invocation, now time.Time) error {
	if g.traces == nil || inv.TraceParent == "" || inv.Attempt > 1 {
		return nil
	}
	tid := traceID(inv.TraceParent)
	if !tid.IsValid() {
		return nil
	}
	n, ok := g.traces.add(traceKey{trace: tid, lane: lane}, g.maxHops, now)
	if ok {
		return nil
	}
	g.detected(lane, "trace", inv.TraceParent, "invocations_in_trace", n)
	return Permanent(wire.CodeLoopDetected, fmt.Errorf("%w: function already ran %d times in trace %s (loop_guard.max_hops %d)",
		ErrLoopDetected, n, tid, g.maxHops))
}

func (g *LoopGuard) detected(lane wire.Lane, by, traceParent string, k string, n int) {
	g.metrics.loop(lane, by)
	g.log.Warn("loop detected: invocation refused", "tenant", lane.Tenant, "function", lane.Function,
		"by", by, k, n, "max_hops", g.maxHops, "trace_id", traceID(traceParent).String())
}

// screen applies the loop guard to inv before its attempt (see
// Dispatcher.Attempt). A single invocation whose hop count reached maxHops
// is refused. A batch loses the events whose hop count did (their indices
// are appended to refused, and the batch is named anew) and is refused
// when none is left. What remains is counted in its trace (first attempts
// only) and refused when the function already ran maxHops times in it. It
// returns the invocation to run: inv itself when nothing was taken out.
func (g *LoopGuard) screen(lane wire.Lane, inv *Invocation, refused *[]Refusal) (*Invocation, error) {
	if g == nil || g.maxHops <= 0 {
		return inv, nil
	}
	run := inv
	if inv.Batch == nil {
		if err := g.checkHops(lane, inv.Hops, inv.TraceParent); err != nil {
			return nil, err
		}
	} else {
		var keep []Event
		var last error
		for i, ev := range inv.Batch {
			if err := g.checkHops(lane, ev.Hops, ev.TraceParent); err != nil {
				if keep == nil {
					keep = append(make([]Event, 0, len(inv.Batch)), inv.Batch[:i]...)
				}
				*refused = append(*refused, Refusal{Index: i, Failure: Classify(err)})
				last = err
				continue
			}
			if keep != nil {
				keep = append(keep, ev)
			}
		}
		switch {
		case last != nil && len(keep) == 0:
			return nil, last
		case last != nil:
			// The batch is named, traced and dated by its first kept event,
			// as if the refused ones had never been in it.
			c := *inv
			c.Batch, c.Hops = keep, 0
			c.TraceParent, c.Source, c.Time = keep[0].TraceParent, keep[0].Source, keep[0].Time
			for _, ev := range keep {
				c.Hops = max(c.Hops, ev.Hops)
			}
			c.ID = BatchID(keep[0].ID, len(keep))
			run = &c
		}
	}
	if err := g.checkTrace(lane, run, time.Now()); err != nil {
		return nil, err
	}
	return run, nil
}

// traceID extracts the trace id of a W3C traceparent (invalid when
// malformed or empty).
func traceID(traceParent string) trace.TraceID {
	if traceParent == "" {
		return trace.TraceID{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{wire.HeaderTraceParent: traceParent})
	return trace.SpanContextFromContext(ctx).TraceID()
}

// maxTraceEntries bounds the trace counter's memory (about 100 bytes per
// entry); past it, the window shortens.
const maxTraceEntries = 1 << 20

type traceKey struct {
	trace trace.TraceID
	lane  wire.Lane
}

// traceCounter counts invocations per (trace, lane) over a sliding window
// made of two generations of half a window each: a count lives between
// half a window and a whole window. A generation that reaches maxEntries
// is retired early, which bounds memory at the cost of a shorter window
// under very high rates of distinct traces (hop counting stays exact).
type traceCounter struct {
	mu         sync.Mutex
	half       time.Duration
	maxEntries int
	cur, prev  map[traceKey]int
	started    time.Time
}

func newTraceCounter(window time.Duration, maxEntries int) *traceCounter {
	return &traceCounter{half: window / 2, maxEntries: maxEntries, cur: map[traceKey]int{}, prev: map[traceKey]int{}}
}

// add counts one invocation of k unless k already has limit; it returns
// the count before this one and whether it was counted.
func (c *traceCounter) add(k traceKey, limit int, now time.Time) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.started) >= c.half || len(c.cur) >= c.maxEntries {
		if now.Sub(c.started) >= 2*c.half { // both generations are older than the window
			clear(c.cur)
			clear(c.prev)
		} else {
			c.prev, c.cur = c.cur, c.prev
			clear(c.cur)
		}
		c.started = now
	}
	n := c.cur[k] + c.prev[k]
	if n >= limit {
		return n, false
	}
	c.cur[k]++
	return n, true
}
