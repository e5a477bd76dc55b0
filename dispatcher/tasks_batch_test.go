package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/dispatcher"
)

// batchQueue is a queue that leases in batches (async.BatchLeaser) and
// fails its first leases, as a shared store does while it is unreachable.
type batchQueue struct {
	mu       sync.Mutex
	todo     []*async.Task
	failures int
	done     atomic.Int32
	ready    chan struct{}
}

func (q *batchQueue) LeaseMany(_ context.Context, _ async.LeaseRequest, n int) ([]*async.Task, time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failures > 0 {
		q.failures--
		return nil, time.Time{}, errors.New("store unreachable")
	}
	n = min(n, len(q.todo))
	got := q.todo[:n]
	q.todo = q.todo[n:]
	return got, time.Time{}, nil
}

func (q *batchQueue) Lease(ctx context.Context, req async.LeaseRequest) (*async.Task, time.Time, error) {
	ts, next, err := q.LeaseMany(ctx, req, 1)
	if len(ts) == 0 {
		return nil, next, err
	}
	return ts[0], next, err
}

func (q *batchQueue) Ready() <-chan struct{} { return q.ready }

func (q *batchQueue) Complete(_ context.Context, id string, _ uint64, c async.Completion) (*async.Task, error) {
	q.done.Add(1)
	return &async.Task{ID: id, Status: c.Status}, nil
}

func (q *batchQueue) Retry(context.Context, string, uint64, time.Time, *async.TaskError) error {
	return nil
}

func (q *batchQueue) Release(context.Context, string, uint64) error { return nil }

// TestBatchLeaseSurvivesStoreErrors: the runner reserves its free workers
// for a batch lease and gives them back when the lease fails, exactly once
// (giving them back twice once blocked the runner for good after an
// outage), then runs every task when the store answers again.
func TestBatchLeaseSurvivesStoreErrors(t *testing.T) {
	q := &batchQueue{failures: 3, ready: make(chan struct{}, 1)}
	for i := range 40 {
		q.todo = append(q.todo, &async.Task{ID: fmt.Sprint(i), Tenant: "t", Function: "f", Lease: 1})
	}
	d, err := dispatcher.New(dispatcher.Config{Logger: quiet, Functions: []*dispatcher.Function{{
		Lane: lane("t", "f"), Backend: okBackend(), Retry: fastRetry(1),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	r := dispatcher.NewTaskRunner(d, q, nil, dispatcher.TaskRunnerConfig{Workers: 8})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = r.Run(ctx); close(stopped) }()
	defer func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Error("the runner did not stop within 10s of its context's end")
		}
	}()

	deadline := time.Now().Add(20 * time.Second)
	for q.done.Load() < 40 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := q.done.Load(); n != 40 {
		t.Fatalf("%d of 40 tasks completed after three failed leases; want all", n)
	}
}
