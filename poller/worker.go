package poller

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrydev/ferry/async"
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
		w.process(stop, work, batch)
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

// process refuses the messages that reached max_hops, then invokes the rest.
func (w *worker) process(stop, work context.Context, items []*item) {
	run := make([]*item, 0, len(items))
	guard, lane := w.p.cfg.Dispatcher.LoopGuard(), w.p.cfg.Function.Lane
	for _, it := range items {
		if err := guard.CheckHops(lane, it.hops, it.m.Headers[wire.HeaderTraceParent]); err != nil {
			w.fail(work, it, wire.CodeLoopDetected, dispatcher.Classify(err))
			continue
		}
		run = append(run, it)
	}
	w.attempt(stop, work, run)
}

// attempt invokes items until each has succeeded or failed for good:
// partial batch failures retry only the named items; a failing batch
// without a report is bisected (when enabled) without spending attempts;
// otherwise every item spends an attempt and waits for the retry policy's
// backoff. Items waiting for a retry when stop ends are handed back.
func (w *worker) attempt(stop, work context.Context, items []*item) {
	cfg := &w.p.cfg
	for len(items) > 0 {
		res, err := w.invoke(work, items)
		if work.Err() != nil {
			w.handBack(items)
			return
		}
		var c dispatcher.Classified
		if err == nil {
			var failed, done []*item
			if cfg.BatchSize > 1 {
				failed = pick(items, ParseBatchFailures(res.Output))
			}
			for _, it := range items {
				if !has(failed, it) {
					done = append(done, it)
				}
			}
			if err := w.onSuccess(work, done, res); err != nil {
				w.p.log.Error("on_success delivery failed; leaving the messages for redelivery", "messages", len(done), "error", err)
				w.handBack(done)
			} else {
				w.succeed(done)
			}
			if len(failed) == 0 {
				return
			}
			items = failed
			c = dispatcher.Classified{Code: "batch_item_failure", Message: "the function reported the item as failed in batchItemFailures"}
		} else {
			c = dispatcher.Classify(err)
			if !c.Permanent && cfg.BisectOnError && len(items) > 1 {
				mid := len(items) / 2
				w.attempt(stop, work, items[:mid])
				w.attempt(stop, work, items[mid:])
				return
			}
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

// invoke runs one attempt of items, holding a slot of the function's limits
// (waiting for one is the back-pressure that stops the reader).
func (w *worker) invoke(ctx context.Context, items []*item) (*dispatcher.Result, error) {
	cfg := &w.p.cfg
	fn := cfg.Function
	if err := cfg.Dispatcher.Limits().Acquire(ctx, fn.Lane); err != nil {
		return nil, err
	}
	defer cfg.Dispatcher.Limits().Release(fn.Lane)
	w.p.metrics.count("invoked", len(items))
	return cfg.Dispatcher.Invoke(ctx, fn, w.invocation(items))
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
	inv.ID = fmt.Sprintf("batch:%s+%d", first.ID, len(items))
	inv.Batch = make([]dispatcher.Event, len(items))
	for i, it := range items {
		m := it.m
		inv.Batch[i] = dispatcher.Event{
			ID: m.ID, Source: m.Source, Type: w.p.typ, Time: m.Time, Payload: m.Payload,
			ContentType: m.ContentType, Key: m.Key, Headers: carried(m.Headers), Hops: it.hops,
		}
	}
	return inv
}

// carried returns the headers that travel to the function as they are: the
// hop count and trace context are set by Ferry itself.
func carried(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if k != wire.HeaderHops && k != wire.HeaderTraceParent {
			out[k] = v
		}
	}
	return out
}

// onSuccess delivers the outcome of a successful invocation of items to
// the function's on_success destinations (one outcome per invocation: a
// batch's names the batch) and waits until they have it.
func (w *worker) onSuccess(ctx context.Context, items []*item, res *dispatcher.Result) error {
	cfg := &w.p.cfg
	if len(cfg.Function.OnSuccess) == 0 || len(items) == 0 {
		return nil
	}
	first, hops, attempts := items[0], 0, 0
	for _, it := range items {
		hops, attempts = max(hops, it.hops), max(attempts, it.attempts+1)
	}
	id := first.m.ID
	if cfg.BatchSize > 1 {
		id = fmt.Sprintf("batch:%s+%d", first.m.ID, len(items))
	}
	o := &wire.Outcome{
		Type: wire.TypeSucceeded, ID: id, Tenant: cfg.Function.Lane.Tenant, Function: cfg.Function.Lane.Function,
		Status: string(async.StatusSucceeded), Attempts: attempts, Output: wire.OutputJSON(res.Output),
		Source: first.m.Source, Hops: hops + 1, Time: time.Now().UTC(), TraceParent: first.m.Headers[wire.HeaderTraceParent],
		RequestContext: &wire.RequestContext{
			RequestID: id, Condition: wire.ConditionSuccess, Attempts: attempts, LastStatus: res.StatusCode,
			Trigger: cfg.Name, CreatedAt: first.m.Time,
		},
	}
	return cfg.Dispatcher.DeliverNow(ctx, cfg.Function.OnSuccess, o)
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
// it is never dropped silently.
func (w *worker) fail(ctx context.Context, it *item, code string, c dispatcher.Classified) {
	cfg := &w.p.cfg
	o := &wire.Outcome{
		Type: wire.TypeFailed, ID: it.m.ID, Tenant: cfg.Function.Lane.Tenant, Function: cfg.Function.Lane.Function,
		Status: string(async.StatusFailed), Attempts: it.attempts,
		Error:  &wire.OutcomeError{Code: code, Message: dispatcher.FailureMessage(code, it.attempts, c), HTTPStatus: c.StatusCode},
		Source: it.m.Source, Hops: it.hops + 1, Time: time.Now().UTC(), TraceParent: it.m.Headers[wire.HeaderTraceParent],
		RequestContext: &wire.RequestContext{
			RequestID: it.m.ID, Condition: code, Attempts: it.attempts, LastStatus: c.StatusCode,
			LastError: &wire.OutcomeError{Code: c.Code, Message: c.Message, HTTPStatus: c.StatusCode},
			Trigger:   cfg.Name, CreatedAt: it.m.Time,
		},
		RequestPayload: wire.OutputJSON(it.m.Payload),
	}
	w.p.log.Warn("message failed", "id", it.m.ID, "code", code, "attempts", it.attempts, "error", o.Error.Message)
	if err := cfg.Dispatcher.DeliverNow(ctx, cfg.OnFailure, o); err != nil {
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
			if it.m.ID == id {
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
