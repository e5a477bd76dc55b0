package poller

import (
	"context"
	"strings"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// worker collects batches from its channel (and the shared one) and runs
// them one after the other, so the order of its channel is the order of
// invocation.
type worker struct {
	p  *Poller
	in chan *Message
}

// item is a message and its retry state.
type item struct {
	m        *Message
	hops     int
	attempts int
	first    time.Time // the message's age counts from here (retry.max_age)
}

func newItem(m *Message) *item {
	hops, _ := wire.ParseHops(m.Headers[wire.HeaderHops]) // malformed counts as 0, as a missing one
	first := m.Time
	if first.IsZero() {
		first = time.Now()
	}
	return &item{m: m, hops: hops, first: first}
}

// run processes batches until the reader has stopped and every message it
// read is done: a graceful stop finishes what was read, so it leaves no gap
// in a partition for the broker to redeliver past (no duplicates). Retry
// backoffs end at stop; work bounds invocations and ends only when the
// drain takes longer than DrainTimeout.
func (w *worker) run(stop context.Context, readerDone <-chan struct{}, work context.Context) {
	for {
		batch := w.collect(stop, readerDone)
		if batch == nil {
			return
		}
		ctx, end := w.p.traceBatch(work, batch) // SpanBatch, when spans are recorded
		w.attempt(stop, ctx, batch)
		end()
	}
}

// collect waits for a first message, then fills the batch up to BatchSize
// for at most BatchWindow (with no window: what has already arrived). It
// returns nil once the reader is done and nothing is left.
func (w *worker) collect(stop context.Context, readerDone <-chan struct{}) []*item {
	var m *Message
	select {
	case m = <-w.in:
	case m = <-w.p.shared:
	case <-readerDone:
		select {
		case m = <-w.in:
		case m = <-w.p.shared:
		default:
			return nil
		}
	}
	items := []*item{newItem(m)}
	size, window := w.p.cfg.BatchSize, w.p.cfg.BatchWindow
	var deadline <-chan time.Time
	if window > 0 && size > 1 {
		t := time.NewTimer(window)
		defer t.Stop()
		deadline = t.C
	}
	for len(items) < size {
		if deadline == nil {
			select {
			case m = <-w.in:
			case m = <-w.p.shared:
			default:
				return items
			}
		} else {
			select {
			case m = <-w.in:
			case m = <-w.p.shared:
			case <-deadline:
				return items
			case <-stop.Done():
				return items
			}
		}
		items = append(items, newItem(m))
	}
	return items
}

// attempt invokes items until each has succeeded or failed for good:
// messages the loop guard refuses fail with loop_detected; partial batch
// failures retry only the named items; a failing batch without a report
// is bisected (when enabled) without spending attempts; otherwise every
// item spends an attempt and waits for the retry policy's backoff (outside
// the function's concurrency slot). Items waiting for a retry when stop
// ends are handed back.
func (w *worker) attempt(stop, work context.Context, items []*item) {
	cfg := &w.p.cfg
	for len(items) > 0 {
		a, err := w.invoke(work, items)
		if err != nil || work.Err() != nil {
			w.handBack(items)
			return
		}
		if !a.Invoked || len(a.Refused) > 0 {
			// The loop guard refused some messages for their hop count
			// (Refused), or every one (not Invoked: the rest for their
			// trace). A refusal is not an attempt; the others ran.
			refused := make([]*dispatcher.Classified, len(items))
			for _, r := range a.Refused {
				refused[r.Index] = &r.Failure
			}
			keep := items[:0:0]
			for i, it := range items {
				switch {
				case refused[i] != nil:
					w.fail(work, it, wire.CodeLoopDetected, *refused[i])
				case !a.Invoked:
					w.fail(work, it, wire.CodeLoopDetected, a.Failure)
				default:
					keep = append(keep, it)
				}
			}
			if !a.Invoked {
				return
			}
			items = keep
		}
		c := a.Failure
		if a.Err == nil {
			var failed, done []*item
			if cfg.BatchSize > 1 {
				failed = pick(items, ParseBatchFailures(a.Result.Output))
			}
			for _, it := range items {
				if !has(failed, it) {
					done = append(done, it)
				}
			}
			if err := w.onSuccess(work, done, a.Result); err != nil {
				w.p.log.Error("on_success delivery failed; leaving the messages for redelivery", "messages", len(done), "error", err)
				w.handBack(done)
			} else {
				w.succeed(done)
			}
			if len(failed) == 0 {
				return
			}
			items = failed
			c = dispatcher.Classified{Code: wire.CodeBatchItemFailure, Message: "the function reported the item as failed in batchItemFailures"}
		} else if c.Local != "" {
			// Ferry's own resources failed, not the function: no attempt
			// is spent and the messages stay unacked; try again shortly.
			w.p.log.Warn("invocation failed on a resource of Ferry's own; retrying without spending an attempt",
				"kind", c.Local, "messages", len(items), "error", c.Message)
			if sleep(stop, dispatcher.LocalBackoff) != nil {
				w.handBack(items)
				return
			}
			continue
		} else if !c.Permanent && cfg.BisectOnError && len(items) > 1 {
			mid := len(items) / 2
			w.attempt(stop, work, items[:mid])
			w.attempt(stop, work, items[mid:])
			return
		}
		now := time.Now()
		var retry time.Time
		keep := items[:0:0]
		for _, it := range items {
			it.attempts++
			dec := cfg.Retry.Decide(c, it.attempts, it.first, now)
			if !dec.Retry {
				w.fail(work, it, dec.Code, c)
				continue
			}
			keep = append(keep, it)
			retry = later(retry, dec.At)
		}
		items = keep
		if len(items) > 0 {
			w.p.log.Info("invocation failed; retrying", "code", c.Code, "messages", len(items), "retry_at", retry)
			if sleep(stop, time.Until(retry)) != nil {
				w.handBack(items)
				return
			}
		}
	}
}

// invoke runs one attempt of items through the dispatcher, within a slot
// of the function's limits (waiting for one is the back-pressure that
// stops the reader); an error only when ctx ended while waiting.
func (w *worker) invoke(ctx context.Context, items []*item) (*dispatcher.Attempted, error) {
	cfg := &w.p.cfg
	slot, err := cfg.Dispatcher.Acquire(ctx, cfg.Function)
	if err != nil {
		return nil, err
	}
	a := cfg.Dispatcher.Attempt(ctx, slot, w.invocation(items), nil)
	if a.Invoked {
		w.p.metrics.count("invoked", len(items)-len(a.Refused))
	}
	return a, nil
}

// invocation builds a single-message or batch invocation.
func (w *worker) invocation(items []*item) *dispatcher.Invocation {
	fn := w.p.cfg.Function
	first := items[0].m
	inv := &dispatcher.Invocation{
		Tenant: fn.Lane.Tenant, Function: fn.Lane.Function, Type: w.p.typ,
		ID: first.ID, Source: first.Source, Time: first.Time,
		TraceParent: first.Headers[wire.HeaderTraceParent],
	}
	for _, it := range items {
		inv.Hops = max(inv.Hops, it.hops)
		inv.Attempt = max(inv.Attempt, it.attempts+1)
	}
	if w.p.cfg.BatchSize == 1 {
		inv.Payload, inv.ContentType, inv.Headers = first.Payload, first.ContentType, carried(first.Headers)
		return inv
	}
	inv.ID = dispatcher.BatchID(first.ID, len(items))
	inv.Batch = make([]dispatcher.Event, len(items))
	for i, it := range items {
		m := it.m
		inv.Batch[i] = dispatcher.Event{
			ID: m.ID, Source: m.Source, Type: w.p.typ, Time: m.Time, Payload: m.Payload,
			ContentType: m.ContentType, Key: m.Key, Headers: carried(m.Headers), Hops: it.hops,
			TraceParent: m.Headers[wire.HeaderTraceParent],
		}
	}
	return inv
}

// carried returns the headers that travel to the function as they are: the
// hop count and trace context are set by Ferry itself.
func carried(h map[string]string) map[string]string {
	n := len(h)
	for _, k := range [...]string{wire.HeaderHops, wire.HeaderTraceParent} {
		if _, ok := h[k]; ok {
			n--
		}
	}
	if n == 0 {
		return nil // nothing to carry: no map per message
	}
	out := make(map[string]string, n)
	for k, v := range h {
		if k != wire.HeaderHops && k != wire.HeaderTraceParent {
			out[k] = v
		}
	}
	return out
}

// ending describes how items ended, for their outcome record: one message,
// or the batch they were invoked in (named by BatchID).
func (w *worker) ending(items []*item, batch bool) dispatcher.Ending {
	cfg := &w.p.cfg
	first := items[0]
	e := dispatcher.Ending{
		ID: first.m.ID, Lane: cfg.Function.Lane, Source: first.m.Source, Trigger: cfg.Name,
		TraceParent: first.m.Headers[wire.HeaderTraceParent], CreatedAt: first.m.Time, At: time.Now().UTC(),
	}
	if batch {
		e.ID = dispatcher.BatchID(first.m.ID, len(items))
	}
	for _, it := range items {
		e.Hops = max(e.Hops, it.hops)
		e.Attempts = max(e.Attempts, it.attempts)
	}
	return e
}

// onSuccess delivers the outcome of a successful invocation of items to
// the function's on_success destinations (one outcome per invocation: a
// batch's names the batch) and waits until they have it.
func (w *worker) onSuccess(ctx context.Context, items []*item, res *dispatcher.Result) error {
	cfg := &w.p.cfg
	if len(cfg.Function.OnSuccess) == 0 || len(items) == 0 {
		return nil
	}
	e := w.ending(items, cfg.BatchSize > 1)
	e.Attempts++ // the attempt that succeeded
	e.Output, e.LastStatus = res.Output, res.StatusCode
	return cfg.Dispatcher.DeliverNow(ctx, cfg.Function.OnSuccess, dispatcher.NewOutcome(e))
}

func (w *worker) succeed(items []*item) {
	msgs := make([]*Message, len(items))
	for i, it := range items {
		msgs[i] = it.m
	}
	w.p.settle(msgs, nil)
	w.p.metrics.inflight(-len(items))
	w.p.metrics.count("succeeded", len(items))
}

// fail delivers the message's failure to the on_failure destinations and
// then commits it, so one poison message never stalls its scope. When the
// destinations cannot take it either, the message is left for redelivery:
// it is never dropped silently. c is the last attempt's failure.
func (w *worker) fail(ctx context.Context, it *item, code string, c dispatcher.Classified) {
	cfg := &w.p.cfg
	e := w.ending([]*item{it}, false)
	e.Failed, e.Payload = true, it.m.Payload
	e.Error = &wire.OutcomeError{Code: code, Message: dispatcher.FailureMessage(code, it.attempts, c), HTTPStatus: c.StatusCode}
	e.LastStatus, e.LastError = c.StatusCode, dispatcher.AttemptError(c)
	w.p.log.Warn("message failed", "id", it.m.ID, "code", code, "attempts", it.attempts, "error", e.Error.Message)
	if err := cfg.Dispatcher.DeliverNow(ctx, cfg.OnFailure, dispatcher.NewOutcome(e)); err != nil {
		w.p.log.Error("on_failure delivery failed; leaving the message for redelivery", "id", it.m.ID, "error", err)
		w.handBack([]*item{it})
		return
	}
	w.p.settle([]*Message{it.m}, nil)
	w.p.metrics.inflight(-1)
	w.p.metrics.count("failed", 1)
}

func (w *worker) handBack(items []*item) {
	msgs := make([]*Message, len(items))
	for i, it := range items {
		msgs[i] = it.m
	}
	w.p.metrics.inflight(-len(items))
	w.p.nack(msgs)
}

// pick returns the items whose ids are in ids.
func pick(items []*item, ids []string) []*item {
	var out []*item
	for _, it := range items {
		for _, id := range ids {
			// CloudEvents ids travel trimmed (the SDK trims them, and so
			// does HTTP a ce-id header): " 7" comes back as "7".
			if strings.TrimSpace(it.m.ID) == strings.TrimSpace(id) {
				out = append(out, it)
				break
			}
		}
	}
	return out
}

func has(items []*item, it *item) bool {
	for _, x := range items {
		if x == it {
			return true
		}
	}
	return false
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
