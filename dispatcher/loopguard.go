package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrydev/ferry/wire"
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
// one event never look like a loop. The counts are in this node's memory
// (TraceCounts) unless a shared TraceCounter is set (SetTraceCounter).
type LoopGuard struct {
	maxHops int
	traces  TraceCounter // nil: trace counting off
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
		g.traces = NewTraceCounts(window)
	}
	return g
}

// SetTraceCounter makes g count first attempts per trace in c, a counter
// that nodes share, built with the same trace window. It does nothing
// when trace counting is off (maxHops or window <= 0). Set it before use.
func (g *LoopGuard) SetTraceCounter(c TraceCounter) {
	if g.traces != nil && c != nil {
		g.traces = c
	}
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
// loop_detected error when lane already ran maxHops times in it. When the
// counter fails (a shared one cannot be reached) the invocation goes
// through, with a warning: hop counting still bounds chains.
func (g *LoopGuard) checkTrace(ctx context.Context, lane wire.Lane, inv *Invocation) error {
	if g.traces == nil || inv.TraceParent == "" || inv.Attempt > 1 {
		return nil
	}
	tid := traceID(inv.TraceParent)
	if !tid.IsValid() {
		return nil
	}
	n, err := g.traces.Count(ctx, tid, lane)
	if err != nil {
		g.log.Warn("loop guard: cannot count the invocation in its trace; letting it through", "tenant", lane.Tenant,
			"function", lane.Function, "trace_id", tid.String(), "error", err)
		return nil
	}
	if n <= g.maxHops {
		return nil
	}
	g.detected(lane, "trace", inv.TraceParent, "invocations_in_trace", n)
	return Permanent(wire.CodeLoopDetected, fmt.Errorf("%w: invocation %d of the function in trace %s within loop_guard.trace_window (loop_guard.max_hops %d)",
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
func (g *LoopGuard) screen(ctx context.Context, lane wire.Lane, inv *Invocation, refused *[]Refusal) (*Invocation, error) {
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
	if err := g.checkTrace(ctx, lane, run); err != nil {
		return nil, err
	}
	return run, nil
}

// traceID extracts the trace id of a W3C traceparent (invalid when
// malformed or empty).
func traceID(traceParent string) trace.TraceID {
	tid, _, _ := parseTraceParent(traceParent) // as the OpenTelemetry propagator reads it
	return tid
}

// TraceCounter counts the loop guard's first attempts per (W3C trace,
// lane) within the trace window it was built with. TraceCounts keeps the
// counts in this node's memory; a shared counter (redisstore.Traces) keeps
// them where every node counts, so that a loop through several nodes is
// caught as soon as on one.
type TraceCounter interface {
	// Count counts one first attempt of lane in trace tid and returns the
	// attempts of lane counted in tid within the window, this one
	// included. An error (the counter cannot be reached) counts nothing.
	Count(ctx context.Context, tid trace.TraceID, lane wire.Lane) (int, error)
}

var _ TraceCounter = (*TraceCounts)(nil)

// maxTraceEntries bounds the trace counter's memory (about 100 bytes per
// entry); past it, the window shortens.
const maxTraceEntries = 1 << 20

type traceKey struct {
	trace trace.TraceID
	lane  wire.Lane
}

// TraceCounts counts invocations per (trace, lane) in memory, over a
// sliding window made of two generations of half a window each: a count
// lives between half a window and a whole window. A generation that
// reaches its bound (about 2^20 entries, 100 MB) is retired early, which
// bounds memory at the cost of a shorter window under very high rates of
// distinct traces (hop counting stays exact). It is safe for concurrent
// use.
type TraceCounts struct {
	mu         sync.Mutex
	half       time.Duration
	maxEntries int
	cur, prev  map[traceKey]int
	started    time.Time
}

// NewTraceCounts returns in-memory counts over window.
func NewTraceCounts(window time.Duration) *TraceCounts {
	return newTraceCounts(window, maxTraceEntries)
}

func newTraceCounts(window time.Duration, maxEntries int) *TraceCounts {
	return &TraceCounts{half: window / 2, maxEntries: maxEntries, cur: map[traceKey]int{}, prev: map[traceKey]int{}}
}

// Count counts one first attempt of lane in tid now; it never fails.
func (c *TraceCounts) Count(_ context.Context, tid trace.TraceID, lane wire.Lane) (int, error) {
	return c.add(traceKey{trace: tid, lane: lane}, time.Now()), nil
}

// add counts one invocation of k at now and returns its count within the
// window, this one included.
func (c *TraceCounts) add(k traceKey, now time.Time) int {
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
	c.cur[k]++
	return c.cur[k] + c.prev[k]
}
