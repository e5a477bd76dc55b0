package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrydev/ferry/async"
)

// DeliveryStore keeps the progress of outcome deliveries durable.
type DeliveryStore interface {
	UpdateDelivery(ctx context.Context, tenant, id string, d async.Delivery) error
	PendingDeliveries(ctx context.Context) ([]*async.Task, error)
}

// Outbox delivers the outcomes of finished tasks to their destinations. The
// deliveries were recorded as pending in the same write as the task's final
// status, so a crash never loses one: Run resumes them at start-up. Each
// attempt's result is recorded; a failed attempt is retried on the
// destination's schedule, and when retries run out the delivery is marked
// failed, counted and logged, never dropped silently. A redelivery after a
// crash carries the same id (webhook-id), so receivers can drop duplicates.
type Outbox struct {
	d     *Dispatcher
	store DeliveryStore
	log   *slog.Logger

	resume time.Duration // 0: resume pending deliveries at start only

	jobs    chan job
	done    chan struct{}
	mu      sync.Mutex
	timers  map[*time.Timer]struct{}
	tasks   map[string]struct{} // tasks with deliveries in progress here
	stopped bool
}

type job struct {
	task *async.Task
	idx  int
}

// NewOutbox returns an Outbox delivering through d's destinations and
// recording progress in store (Run's workers bound concurrent attempts).
func NewOutbox(d *Dispatcher, store DeliveryStore) *Outbox {
	return &Outbox{
		d: d, store: store, log: d.log,
		jobs:   make(chan job, 1024),
		done:   make(chan struct{}),
		timers: map[*time.Timer]struct{}{},
		tasks:  map[string]struct{}{},
	}
}

// ResumeEvery makes Run look for pending deliveries every d as well as at
// start: on a shared store, those a dead node claimed and left (the store
// returns each task to one node only). Call it before Run.
func (o *Outbox) ResumeEvery(d time.Duration) { o.resume = d }

// Add schedules the pending deliveries of a finished task now, unless the
// Outbox already has the task (a shared store reports the tasks this node
// holds again).
func (o *Outbox) Add(t *async.Task) {
	o.mu.Lock()
	_, have := o.tasks[t.ID]
	if !have && t.HasPendingDeliveries() {
		o.tasks[t.ID] = struct{}{}
	}
	o.mu.Unlock()
	if have {
		return
	}
	for i, d := range t.Deliveries {
		if d.State == async.DeliveryPending {
			o.schedule(job{task: t, idx: i}, d.NextAttemptAt)
		}
	}
}

// schedule queues j at time at (now if zero or past) unless stopped.
func (o *Outbox) schedule(j job, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		return // still pending in the store: resumed at the next start
	}
	var tm *time.Timer
	tm = time.AfterFunc(max(time.Until(at), 0), func() {
		o.mu.Lock()
		_, live := o.timers[tm]
		delete(o.timers, tm)
		o.mu.Unlock()
		if live {
			select {
			case o.jobs <- j:
			case <-o.done:
			}
		}
	})
	o.timers[tm] = struct{}{}
}

// Run resumes the deliveries left pending by a previous run, then delivers
// with workers goroutines until ctx ends. On return, attempts in progress
// have finished; deliveries not yet attempted stay pending in the store.
func (o *Outbox) Run(ctx context.Context, workers int) error {
	if err := o.resumePending(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	if o.resume > 0 {
		wg.Go(func() {
			t := time.NewTicker(o.resume)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if err := o.resumePending(ctx); err != nil && ctx.Err() == nil {
					o.log.Warn("cannot look for pending outcome deliveries; trying again", "error", err)
				}
			}
		})
	}
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				select {
				case j := <-o.jobs:
					o.attempt(ctx, j)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	<-ctx.Done()
	o.mu.Lock()
	o.stopped = true
	close(o.done)
	for tm := range o.timers {
		tm.Stop()
	}
	clear(o.timers)
	o.mu.Unlock()
	wg.Wait()
	return nil
}

// resumePending schedules the deliveries the store reports pending.
func (o *Outbox) resumePending(ctx context.Context) error {
	pending, err := o.store.PendingDeliveries(ctx)
	for _, t := range pending {
		o.Add(t)
	}
	if len(pending) > 0 {
		o.log.Info("resuming outcome deliveries", "tasks", len(pending))
	}
	return err
}

// attempt makes one delivery attempt and records its result.
func (o *Outbox) attempt(ctx context.Context, j job) {
	t := j.task
	fn := o.d.Function(t.Lane())
	d := t.Deliveries[j.idx]
	dest := o.destination(fn, t, d)
	if dest == nil {
		d.State, d.LastError = async.DeliveryFailed, "destination "+d.Destination+" is no longer configured"
		o.record(t, d)
		return
	}
	now := time.Now()
	if d.FirstAttemptAt.IsZero() {
		d.FirstAttemptAt = now
	}
	d.Attempts++
	r, ok := o.d.deliverAttempt(ctx, dest, NewOutcome(TaskEnding(t)), d.Attempts, d.FirstAttemptAt)
	if !ok {
		// Shutting down: the attempt does not count; the delivery stays
		// pending and resumes at the next start.
		return
	}
	if r.Local {
		d.Attempts-- // Ferry's own resources failed, not the destination
	}
	d.State, d.NextAttemptAt, d.LastError = r.State, r.RetryAt, ""
	if r.Err != nil {
		d.LastError = r.Err.Error()
	}
	o.record(t, d)
	if d.State == async.DeliveryPending {
		o.schedule(job{task: t, idx: j.idx}, d.NextAttemptAt)
	}
}

func (o *Outbox) destination(fn *Function, t *async.Task, d async.Delivery) *Destination {
	if fn == nil {
		return nil
	}
	dests := fn.OnSuccess
	if t.Status != async.StatusSucceeded {
		dests = fn.OnFailure
	}
	for i := range dests {
		if dests[i].Name == d.Destination {
			return &dests[i]
		}
	}
	return nil
}

func (o *Outbox) record(t *async.Task, d async.Delivery) {
	o.mu.Lock()
	t.Deliveries[d.Index] = d
	if !t.HasPendingDeliveries() {
		delete(o.tasks, t.ID)
	}
	o.mu.Unlock()
	if err := o.store.UpdateDelivery(context.Background(), t.Tenant, t.ID, d); err != nil && !errors.Is(err, async.ErrNotFound) {
		o.log.Error("cannot record delivery progress", "task", t.ID, "destination", d.Destination, "error", err)
	}
}
