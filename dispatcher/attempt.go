package dispatcher

import (
	"context"
	"sync/atomic"
	"time"
)

// Slot is one place within a function's max_concurrency and its tenant's
// (with one token of their rates), held for one attempt. Both entry points
// hold it the same way:
//
//   - it is taken before the work is pulled: the task runner leases only
//     from lanes with a free slot (Limits.Blocked) and takes the slot as it
//     leases (TryAcquire; TryAcquireLeased when the Lease took the
//     token); a poller takes it once a batch is collected
//     (Acquire, which waits: the back-pressure that stops its reader);
//   - it covers the attempt (loop guard, middleware, backend) and the
//     recording of its result by the entry point (Attempt's record): for
//     a task, the store write that completes, retries or releases it; a
//     trigger keeps the result in memory, so it records nothing there and
//     its slot ends with the attempt;
//   - Attempt gives it back once the result is recorded, so outcome
//     deliveries and the wait before a retry never hold a slot.
//
// An invocation the loop guard refuses has taken its slot and rate token
// too (both entry points take them before the guard looks).
//
// A Slot is released once; Release after that does nothing.
type Slot struct {
	d        *Dispatcher
	fn       *Function
	released atomic.Bool
}

// TryAcquire takes a slot of fn (and of its tenant) and a rate token now,
// if all are free.
func (d *Dispatcher) TryAcquire(fn *Function) (*Slot, bool) {
	if !d.limits.TryAcquire(fn.Lane) {
		return nil, false
	}
	return &Slot{d: d, fn: fn}, true
}

// TryAcquireLeased takes a slot of fn (and of its tenant) now, if both are
// free, without a rate token: for a task whose Lease took the token from
// the same buckets (TaskRunnerConfig.RatesAtLease), so that it is not
// taken twice.
func (d *Dispatcher) TryAcquireLeased(fn *Function) (*Slot, bool) {
	if !d.limits.TryAcquireSlot(fn.Lane) {
		return nil, false
	}
	return &Slot{d: d, fn: fn}, true
}

// Acquire waits for a slot of fn and a rate token, or for ctx to end.
func (d *Dispatcher) Acquire(ctx context.Context, fn *Function) (*Slot, error) {
	if err := d.limits.Acquire(ctx, fn.Lane); err != nil {
		return nil, err
	}
	return &Slot{d: d, fn: fn}, nil
}

// Release gives the slot back (Attempt does it; a caller that took a slot
// and then does not attempt releases it itself).
func (s *Slot) Release() {
	if s.released.CompareAndSwap(false, true) {
		s.d.limits.Release(s.fn.Lane)
	}
}

// Attempted is what one attempt came to.
type Attempted struct {
	// Result is the backend's answer on success.
	Result *Result
	// Err is the attempt's error (nil on success) and Failure its
	// classification.
	Err     error
	Failure Classified
	// Invoked reports whether the backend was called: false when the loop
	// guard refused the whole invocation (an attempt that is not spent).
	Invoked bool
	// Refused lists the events of a batch that the loop guard refused for
	// their hop count; the backend got the others.
	Refused []Refusal
}

// Refusal is one event of a batch refused by the loop guard.
type Refusal struct {
	// Index is the event's place in Invocation.Batch.
	Index int
	// Failure is the refusal, classified (code loop_detected, permanent).
	Failure Classified
}

// Attempt runs one attempt of inv within slot, the one path both entry
// points take: the loop guard (hop count per event, then the trace count),
// the function's middleware and backend (see Standard), the adaptive
// limit's feedback, and the classification of the result. record, when not
// nil, is called with the result while the slot is still held; then the
// slot is released and the result returned.
func (d *Dispatcher) Attempt(ctx context.Context, slot *Slot, inv *Invocation, record func(*Attempted)) *Attempted {
	defer slot.Release()
	a := d.attempt(ctx, slot.fn, inv)
	if record != nil {
		record(a)
	}
	return a
}

func (d *Dispatcher) attempt(ctx context.Context, fn *Function, inv *Invocation) *Attempted {
	a := &Attempted{}
	run, err := d.guard.screen(ctx, fn.Lane, inv, &a.Refused)
	if err != nil {
		a.Err, a.Failure = err, Classify(err)
		d.metrics.refused(fn.Lane)
		return a
	}
	a.Invoked = true
	start := time.Now()
	a.Result, a.Err = fn.invoker.Invoke(ctx, run)
	if ctx.Err() == nil { // a shutdown says nothing about the backend
		d.limits.Feedback(fn.Lane, start, SignalOf(a.Err))
		if fn.capacity != nil {
			fn.capacity.Set(float64(d.limits.Capacity(fn.Lane)))
		}
	}
	if a.Err != nil {
		a.Failure = Classify(a.Err)
		if a.Failure.Local != "" {
			d.metrics.local(a.Failure.Local)
		}
	}
	return a
}
