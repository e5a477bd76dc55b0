package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// TaskQueue is what the TaskRunner needs of the durable queue.
type TaskQueue interface {
	Lease(ctx context.Context, req async.LeaseRequest) (*async.Task, time.Time, error)
	Ready() <-chan struct{}
	Complete(ctx context.Context, id string, token uint64, c async.Completion) (*async.Task, error)
	Retry(ctx context.Context, id string, token uint64, at time.Time, err *async.TaskError) error
	Release(ctx context.Context, id string, token uint64) error
}

// TaskRunnerConfig configures a TaskRunner.
type TaskRunnerConfig struct {
	// Workers bounds the tasks in flight across all tenants. Defaults to 64.
	Workers int
	// DrainTimeout bounds how long Run waits for in-flight tasks once its
	// context ends; tasks still running then are cancelled and released
	// back to the queue without spending an attempt. Defaults to 30s.
	DrainTimeout time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// RatesAtLease says the queue's Lease takes the rate token of every
	// task it hands out, from the same buckets as the dispatcher's
	// RateStore (redisstore's Queue does, in its Lease script): the runner
	// then hands Lease only the tenants and lanes without a free slot
	// (Limits.BlockedSlots) and takes a slot without a token
	// (Dispatcher.TryAcquireLeased), so no task takes two tokens. A task
	// leased while a poller took the last slot is released, and its token
	// is spent. Defaults to false: the runner takes the tokens (the
	// embedded store).
	RatesAtLease bool
}

// TaskRunner leases async tasks fairly across tenants, within the tenant and
// function limits, invokes them, and records each result: success or
// permanent failure (with the outcome deliveries, which the Outbox sends),
// or a retry at the time the function's RetryPolicy gives.
type TaskRunner struct {
	d      *Dispatcher
	q      TaskQueue
	outbox *Outbox
	cfg    TaskRunnerConfig
	log    *slog.Logger
}

// NewTaskRunner returns a TaskRunner; outbox receives finished tasks.
func NewTaskRunner(d *Dispatcher, q TaskQueue, outbox *Outbox, cfg TaskRunnerConfig) *TaskRunner {
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &TaskRunner{d: d, q: q, outbox: outbox, cfg: cfg, log: d.log}
}

// Run leases and runs tasks until ctx ends, then drains: it waits up to
// DrainTimeout for the tasks in flight, cancels the rest (they are released
// to the queue) and returns once every worker has stopped.
func (r *TaskRunner) Run(ctx context.Context) error {
	invokeCtx, cancelInvokes := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelInvokes(nil)
	workers := make(chan struct{}, r.cfg.Workers)
	var wg sync.WaitGroup
	ttl := r.d.leaseTTL()
	if _, ok := r.q.(async.Extender); ok {
		ttl = heartbeatLease // renewed while the attempt runs (heartbeat)
	}
	limits := r.d.limits
	rw := &roomWatch{room: limits.Room}
	room := rw.Room // one method value, not one per lease
	timer := time.NewTimer(time.Hour)
	timer.Stop()

loop:
	for {
		select {
		case workers <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		var freed <-chan struct{} // watched only while idle: releases then cost nothing
		for {
			req := async.LeaseRequest{TTL: ttl, Room: room}
			if r.cfg.RatesAtLease {
				req.BlockedTenants, req.BlockedLanes = limits.BlockedSlots()
			} else {
				req.BlockedTenants, req.BlockedLanes = limits.Blocked()
			}
			extra := r.reserve(workers)
			rw.held = false
			tasks, next, err := r.lease(ctx, req, 1+extra)
			if len(tasks) == 0 {
				r.unreserve(workers, extra) // keep the first worker only
			}
			if err != nil {
				if ctx.Err() != nil {
					<-workers
					break loop
				}
				r.log.Error("lease failed; retrying in 1s", "error", err)
				next = r.cfg.Now().Add(time.Second)
			}
			if len(tasks) > 0 {
				started := 0
				for _, t := range tasks {
					fn := r.d.Function(t.Lane())
					var slot *Slot
					if fn != nil {
						var ok bool
						if slot, ok = r.acquire(fn); !ok {
							// A poller took the last slot between Blocked and here.
							r.release(t)
							continue
						}
					}
					started++
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer func() { <-workers }()
						r.process(invokeCtx, t, fn, slot)
					}()
				}
				if started == 0 {
					r.unreserve(workers, extra)
					continue // keep the first worker; look again
				}
				r.unreserve(workers, 1+extra-started)
				break
			}
			if freed == nil && (rw.held || len(req.BlockedTenants)+len(req.BlockedLanes) > 0) {
				// Something was held back: watch for releases, then look
				// once more (a slot freed since Blocked would otherwise go
				// unnoticed). With nothing held back a release cannot
				// make a task leasable, and the runner would wake for every
				// message a trigger finishes.
				freed = limits.Freed()
				continue
			}
			if w := limits.RateWake(); !w.IsZero() && (next.IsZero() || w.Before(next)) {
				next = w // a lane held back by its rate gets a token then
			}
			var wake <-chan time.Time
			if !next.IsZero() {
				timer.Reset(max(next.Sub(r.cfg.Now()), time.Millisecond))
				wake = timer.C
			}
			select {
			case <-r.q.Ready():
			case <-freed:
			case <-wake:
			case <-ctx.Done():
				timer.Stop()
				<-workers
				break loop
			}
			timer.Stop()
			freed = nil
		}
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.cfg.DrainTimeout):
		r.log.Warn("drain timeout: cancelling in-flight tasks; they stay queued", "timeout", r.cfg.DrainTimeout)
		cancelInvokes(errShutdown)
		<-done
	}
	return nil
}

var errShutdown = errors.New("ferry is shutting down")

// roomWatch notes whether Limits.Room held a lane back during one lease: a
// lane that filled up between Blocked and the lease is skipped by the store
// without being listed as blocked, and its release must wake the runner
// like a blocked lane's.
type roomWatch struct {
	room func(wire.Lane) int
	held bool // Room returned 0 during the last lease
}

// Room is Limits.Room, noting a lane without room.
func (w *roomWatch) Room(l wire.Lane) int {
	n := w.room(l)
	if n == 0 {
		w.held = true
	}
	return n
}

// maxLeaseBatch bounds the tasks one LeaseMany takes.
const maxLeaseBatch = 16

// reserve takes the free workers (up to maxLeaseBatch-1 besides the one
// held) when the store leases in batches, so one round trip fills them.
func (r *TaskRunner) reserve(workers chan struct{}) int {
	if _, ok := r.q.(async.BatchLeaser); !ok {
		return 0
	}
	n := 0
	for n < maxLeaseBatch-1 {
		select {
		case workers <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// unreserve gives n workers back.
func (r *TaskRunner) unreserve(workers chan struct{}, n int) {
	for range n {
		<-workers
	}
}

// lease takes up to n tasks (more than one only from a BatchLeaser).
func (r *TaskRunner) lease(ctx context.Context, req async.LeaseRequest, n int) ([]*async.Task, time.Time, error) {
	if bl, ok := r.q.(async.BatchLeaser); ok && n > 1 {
		return bl.LeaseMany(ctx, req, n)
	}
	t, next, err := r.q.Lease(ctx, req)
	if t == nil {
		return nil, next, err
	}
	return []*async.Task{t}, next, err
}

// acquire takes the slot of a leased task of fn, and its rate token
// unless the Lease took it.
func (r *TaskRunner) acquire(fn *Function) (*Slot, bool) {
	if r.cfg.RatesAtLease {
		return r.d.TryAcquireLeased(fn)
	}
	return r.d.TryAcquire(fn)
}

// process runs one leased task within slot and records its result while
// the slot is held (Dispatcher.Attempt); the outcome deliveries start once
// the slot is given back.
func (r *TaskRunner) process(ctx context.Context, t *async.Task, fn *Function, slot *Slot) {
	if fn == nil {
		r.complete(t, nil, async.Completion{Status: async.StatusFailed, Error: &async.TaskError{
			Code: wire.CodeFunctionNotFound, Message: fmt.Sprintf("function %q of tenant %q is no longer configured", t.Function, t.Tenant),
		}})
		return
	}
	due := t.ReadyAt
	if due.IsZero() {
		due = t.CreatedAt
	}
	r.d.metrics.started(t.Lane(), r.cfg.Now().Sub(due))
	inv := &Invocation{
		ID: t.ID, Tenant: t.Tenant, Function: t.Function,
		Source: TaskSource(t.Lane()), Type: TypeTask, Time: t.EventAt(),
		Payload: t.Payload, ContentType: t.ContentType,
		Hops: t.Hops, TraceParent: t.TraceParent, Attempt: t.Attempts + 1,
	}
	var done *async.Task
	var local *Attempted // failed on Ferry's own resources: not spent
	stop := r.heartbeat(t)
	defer stop()
	r.d.Attempt(ctx, slot, inv, func(a *Attempted) {
		stop()
		if a.Err != nil && a.Failure.Local != "" && !errors.Is(context.Cause(ctx), errShutdown) {
			local = a
			return
		}
		done = r.record(ctx, t, fn, a)
	})
	if local != nil {
		r.requeueLocal(ctx, t, local.Failure)
		return
	}
	if done != nil && len(done.Deliveries) > 0 && r.outbox != nil {
		r.outbox.Add(done)
	}
}

// requeueLocal puts back a task whose attempt failed on a resource of
// Ferry's own (CodeLocalResource) without spending the attempt, after
// localBackoff: the worker (not the function's slot) waits, so a host out
// of file descriptors or memory is not hammered by the same tasks again
// at once. The lease outlives the wait (at least 30 s, or renewed).
func (r *TaskRunner) requeueLocal(ctx context.Context, t *async.Task, c Classified) {
	wait := localBackoff()
	r.log.Warn("attempt failed on a resource of Ferry's own; the task goes back to the queue without spending an attempt",
		"task", t.ID, "tenant", t.Tenant, "function", t.Function, "kind", c.Local, "in", wait, "error", c.Message)
	_ = sleepUntil(ctx, time.Now().Add(wait)) // a shutdown releases it at once
	r.releaseAs(t, CodeLocalResource)
}

// record writes the result of one attempt of t: a completion (returning
// the task as stored), a retry or, on shutdown, a release.
func (r *TaskRunner) record(ctx context.Context, t *async.Task, fn *Function, a *Attempted) *async.Task {
	if a.Err == nil {
		res := a.Result
		return r.complete(t, fn, async.Completion{
			Status: async.StatusSucceeded, Output: res.Output, OutputType: res.ContentType, StatusCode: res.StatusCode,
			Attempted: true, Deliveries: deliveriesFor(fn.OnSuccess),
		})
	}
	if errors.Is(context.Cause(ctx), errShutdown) {
		r.release(t)
		return nil
	}
	c := a.Failure
	attempts := t.Attempts
	if a.Invoked {
		attempts++
	}
	dec := fn.Retry.Decide(c, attempts, t.AgeFrom(), r.cfg.Now())
	if dec.Retry {
		r.log.Info("attempt failed; retrying", "task", t.ID, "tenant", t.Tenant, "function", t.Function,
			"attempt", attempts, "code", c.Code, "retry_at", dec.At)
		attemptErr := &async.TaskError{Code: c.Code, Message: c.Message, HTTPStatus: c.StatusCode}
		if err := r.q.Retry(context.WithoutCancel(ctx), t.ID, t.Lease, dec.At, attemptErr); err != nil {
			r.recordErr(t, "retry", err)
			return nil
		}
		r.d.metrics.outcome(t.Tenant, t.Function, "retried")
		return nil
	}
	final := &async.TaskError{Code: dec.Code, Message: FailureMessage(dec.Code, attempts, c), HTTPStatus: c.StatusCode}
	return r.complete(t, fn, async.Completion{
		Status: async.StatusFailed, Error: final, StatusCode: c.StatusCode, Attempted: a.Invoked, Deliveries: deliveriesFor(fn.OnFailure),
	})
}

// heartbeatLease is the lease a store with heartbeats (async.Extender)
// gives a task: a killed node's tasks run elsewhere after at most this
// long. The attempt renews it every heartbeatLease/3.
const heartbeatLease = 15 * time.Second

// heartbeat renews t's lease every heartbeatLease/3 while its attempt
// runs, when the store has heartbeats; the returned func stops it and
// waits until it has stopped.
func (r *TaskRunner) heartbeat(t *async.Task) (stop func()) {
	ext, ok := r.q.(async.Extender)
	if !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(heartbeatLease / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := ext.Extend(ctx, t.ID, t.Lease, heartbeatLease)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, async.ErrLeaseLost):
				r.log.Warn("lease lost while the attempt runs; its result will be dropped", "task", t.ID, "lease", t.Lease)
				return
			case err != nil:
				r.log.Warn("cannot renew the lease; trying again", "task", t.ID, "error", err)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// FailureMessage explains a final failure code for the outcome record.
func FailureMessage(code string, attempts int, c Classified) string {
	switch code {
	case wire.CodeRetriesExhausted:
		return fmt.Sprintf("gave up after %d attempts; last error: %s", attempts, c.Message)
	case wire.CodeMaxAgeExceeded:
		return fmt.Sprintf("retry.max_age reached after %d attempts; last error: %s", attempts, c.Message)
	case wire.CodeRejected:
		return "permanent failure, not retried: " + c.Message
	}
	return c.Message
}

// complete records a final result and returns the task as the store
// wrote it (nil when it could not be written).
func (r *TaskRunner) complete(t *async.Task, fn *Function, c async.Completion) *async.Task {
	if fn == nil {
		c.Deliveries = nil
	}
	done, err := r.q.Complete(context.Background(), t.ID, t.Lease, c)
	if err != nil {
		r.recordErr(t, "complete", err)
		return nil
	}
	outcome := string(c.Status)
	if c.Error != nil {
		outcome += ":" + c.Error.Code
		r.log.Warn("task failed", "task", t.ID, "tenant", t.Tenant, "function", t.Function,
			"code", c.Error.Code, "attempts", done.Attempts, "error", c.Error.Message)
	}
	r.d.metrics.outcome(t.Tenant, t.Function, outcome)
	r.d.metrics.finished(t.Tenant, t.Function, string(c.Status), done.FinishedAt.Sub(t.CreatedAt))
	return done
}

// release puts a task back without spending an attempt.
func (r *TaskRunner) release(t *async.Task) { r.releaseAs(t, "released") }

// releaseAs is release, counted as outcome.
func (r *TaskRunner) releaseAs(t *async.Task, outcome string) {
	if err := r.q.Release(context.Background(), t.ID, t.Lease); err != nil {
		r.recordErr(t, "release", err)
		return
	}
	r.d.metrics.outcome(t.Tenant, t.Function, outcome)
}

func (r *TaskRunner) recordErr(t *async.Task, op string, err error) {
	if errors.Is(err, async.ErrLeaseLost) {
		// The lease expired and the task was taken over: the newer attempt
		// owns the task, this result is dropped (fencing).
		r.log.Warn("result dropped: lease lost", "task", t.ID, "op", op, "lease", t.Lease)
		r.d.metrics.outcome(t.Tenant, t.Function, "lease_lost")
		return
	}
	// The lease stays; when it expires the task is run again.
	r.log.Error("cannot record task result; it will run again when its lease expires",
		"task", t.ID, "op", op, "error", err)
}
