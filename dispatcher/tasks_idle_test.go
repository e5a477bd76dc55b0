package dispatcher_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
	"github.com/ferrydev/ferry/dispatcher"
)

// countingQueue counts the task runner's lease calls.
type countingQueue struct {
	*embedded.Queue
	leases atomic.Int64
}

func (c *countingQueue) Lease(ctx context.Context, req async.LeaseRequest) (*async.Task, time.Time, error) {
	c.leases.Add(1)
	return c.Queue.Lease(ctx, req)
}

func (c *countingQueue) LeaseMany(ctx context.Context, req async.LeaseRequest, n int) ([]*async.Task, time.Time, error) {
	c.leases.Add(1)
	return c.Queue.LeaseMany(ctx, req, n)
}

// TestRunnerIdleThroughReleases: while no task is queued, slots a trigger
// takes and gives back (a message each) do not wake the task runner: it
// leases only when something it held back could run.
func TestRunnerIdleThroughReleases(t *testing.T) {
	eq, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	q := &countingQueue{Queue: eq}
	fn := &dispatcher.Function{Lane: lane("t", "f"), Retry: fastRetry(1), MaxConcurrency: 4,
		Backend: dispatcher.BackendFunc(func(context.Context, *dispatcher.Invocation) (*dispatcher.Result, error) {
			return &dispatcher.Result{}, nil
		})}
	d, err := dispatcher.New(dispatcher.Config{Functions: []*dispatcher.Function{fn}, MaxHops: 16, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := dispatcher.NewTaskRunner(d, q, dispatcher.NewOutbox(d, q), dispatcher.TaskRunnerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); _ = eq.Close() })

	// Idle: the runner leased and found nothing.
	deadline := time.Now().Add(5 * time.Second)
	for q.leases.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	before := q.leases.Load()
	for range 200 {
		slot, err := d.Acquire(ctx, d.Function(fn.Lane))
		if err != nil {
			t.Fatal(err)
		}
		slot.Release()
		time.Sleep(200 * time.Microsecond) // paced as a trigger's messages, not all at once
	}
	// A queued task still starts: the runner is idle, not stuck.
	now := time.Now()
	if _, _, err := eq.Enqueue(ctx, &async.Task{ID: "t1", Tenant: "t", Function: "f", CreatedAt: now, ReadyAt: now}, 0); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		got, err := eq.Get(ctx, "t", "t1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == async.StatusSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task queued after the releases is %s", got.Status)
		}
		time.Sleep(time.Millisecond)
	}
	if n := q.leases.Load() - before; n > 20 {
		t.Fatalf("the runner leased %d times through 200 releases and one task, want a few", n)
	}
}

// racingQueue takes the function's last slot inside its second lease (the
// first finds the queue empty), after the runner read Limits.Blocked: a
// trigger winning the slot in between. It hands the slot over once that
// lease has returned.
type racingQueue struct {
	*embedded.Queue
	take  func() *dispatcher.Slot
	idle  chan struct{} // the first lease returned
	taken chan *dispatcher.Slot
	calls atomic.Int64
}

func (q *racingQueue) around(lease func()) {
	switch q.calls.Add(1) {
	case 1:
		defer close(q.idle)
	case 2:
		slot := q.take()
		defer func() { q.taken <- slot }()
	}
	lease()
}

func (q *racingQueue) LeaseMany(ctx context.Context, req async.LeaseRequest, n int) (ts []*async.Task, next time.Time, err error) {
	q.around(func() { ts, next, err = q.Queue.LeaseMany(ctx, req, n) })
	return ts, next, err
}

func (q *racingQueue) Lease(ctx context.Context, req async.LeaseRequest) (t *async.Task, next time.Time, err error) {
	q.around(func() { t, next, err = q.Queue.Lease(ctx, req) })
	return t, next, err
}

// TestRunnerWakesForSlotTakenDuringLease: a lane that fills up between
// Blocked and the lease is skipped by the store without being listed as
// blocked; when its slot comes back the queued task still starts, with no
// new task to wake the runner (a lost wakeup once left it queued forever).
func TestRunnerWakesForSlotTakenDuringLease(t *testing.T) {
	eq, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	fn := &dispatcher.Function{Lane: lane("t", "f"), Retry: fastRetry(1), MaxConcurrency: 1,
		Backend: dispatcher.BackendFunc(func(context.Context, *dispatcher.Invocation) (*dispatcher.Result, error) {
			return &dispatcher.Result{}, nil
		})}
	d, err := dispatcher.New(dispatcher.Config{Functions: []*dispatcher.Function{fn}, MaxHops: 16, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); _ = eq.Close() })
	q := &racingQueue{Queue: eq, idle: make(chan struct{}), taken: make(chan *dispatcher.Slot, 1), take: func() *dispatcher.Slot {
		slot, err := d.Acquire(ctx, d.Function(fn.Lane))
		if err != nil {
			panic(err)
		}
		return slot
	}}
	r := dispatcher.NewTaskRunner(d, q, dispatcher.NewOutbox(d, q), dispatcher.TaskRunnerConfig{Workers: 4})
	wg.Go(func() { _ = r.Run(ctx) })

	<-q.idle
	now := time.Now()
	if _, _, err := eq.Enqueue(ctx, &async.Task{ID: "t1", Tenant: "t", Function: "f", CreatedAt: now, ReadyAt: now}, 0); err != nil {
		t.Fatal(err)
	}
	slot := <-q.taken // the lease found the lane full and returned nothing
	slot.Release()    // the trigger's message is done
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := eq.Get(ctx, "t", "t1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == async.StatusSucceeded {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task t1 is %s 10s after the slot came back, want succeeded", got.Status)
		}
		time.Sleep(time.Millisecond)
	}
}
