package dispatcher_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// flakySink fails its first failures deliveries, then accepts.
type flakySink struct {
	failures  int32
	calls     atomic.Int32
	delivered atomic.Int32
}

func (s *flakySink) Deliver(context.Context, *wire.Outcome) error {
	if s.calls.Add(1) <= s.failures {
		return errors.New("receiver down")
	}
	s.delivered.Add(1)
	return nil
}

func okBackend() dispatcher.Backend {
	return dispatcher.BackendFunc(func(context.Context, *dispatcher.Invocation) (*dispatcher.Result, error) {
		return &dispatcher.Result{Output: []byte(`"done"`)}, nil
	})
}

// waitDelivery polls the task until its first delivery leaves pending.
func waitDelivery(t *testing.T, q *embedded.Queue, id string) async.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got, err := q.Get(context.Background(), "t", id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Deliveries) > 0 && got.Deliveries[0].State != async.DeliveryPending {
			return got.Deliveries[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("delivery of %s still pending after 10s", id)
	return async.Delivery{}
}

func TestOutboxRetriesThenDelivers(t *testing.T) {
	sink := &flakySink{failures: 2}
	b := setup(t, dispatcher.Config{Functions: []*dispatcher.Function{{
		Lane: lane("t", "f"), Backend: okBackend(), Retry: fastRetry(1),
		OnSuccess: []dispatcher.Destination{{Name: "on_success[0]", Kind: "test", Sink: sink, Retry: fastRetry(5), Timeout: time.Second}},
	}}}, dispatcher.TaskRunnerConfig{Workers: 2})
	id := b.submit(t, "t", "f", 0, "x")
	d := waitDelivery(t, b.q, id)
	if d.State != async.DeliveryDelivered || d.Attempts != 3 || sink.delivered.Load() != 1 {
		t.Fatalf("delivery %+v, sink delivered %d; want delivered on attempt 3, once", d, sink.delivered.Load())
	}
}

func TestOutboxGivesUpVisibly(t *testing.T) {
	sink := &flakySink{failures: 1 << 30}
	b := setup(t, dispatcher.Config{Functions: []*dispatcher.Function{{
		Lane: lane("t", "f"), Backend: okBackend(), Retry: fastRetry(1),
		OnSuccess: []dispatcher.Destination{{Name: "on_success[0]", Kind: "test", Sink: sink, Retry: fastRetry(3), Timeout: time.Second}},
	}}}, dispatcher.TaskRunnerConfig{Workers: 2})
	id := b.submit(t, "t", "f", 0, "x")
	d := waitDelivery(t, b.q, id)
	if d.State != async.DeliveryFailed || d.Attempts != 3 || d.LastError != "receiver down" {
		t.Fatalf("delivery %+v; want failed after 3 attempts with the last error recorded", d)
	}
	if n := sink.calls.Load(); n != 3 {
		t.Fatalf("sink called %d times, want 3", n)
	}
}

func TestOutboxResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	retry := dispatcher.RetryPolicy{MaxAttempts: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2, MaxAge: time.Hour}
	start := func(sink dispatcher.Sink) (*embedded.Queue, func()) {
		q, err := embedded.Open(dir, embedded.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		d, err := dispatcher.New(dispatcher.Config{Logger: quiet, Functions: []*dispatcher.Function{{
			Lane: lane("t", "f"), Backend: okBackend(), Retry: fastRetry(1),
			OnSuccess: []dispatcher.Destination{{Name: "on_success[0]", Kind: "test", Sink: sink, Retry: retry, Timeout: time.Second}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		ob := dispatcher.NewOutbox(d, q)
		r := dispatcher.NewTaskRunner(d, q, ob, dispatcher.TaskRunnerConfig{Workers: 1})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = ob.Run(ctx, 1) })
		wg.Go(func() { _ = r.Run(ctx) })
		return q, func() { cancel(); wg.Wait(); _ = q.Close() }
	}

	down := &flakySink{failures: 1 << 30}
	q, stop := start(down)
	b := &bundle{q: q}
	id := b.submit(t, "t", "f", 0, "x")
	deadline := time.Now().Add(10 * time.Second)
	for down.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop() // the delivery is still pending: one failed attempt recorded

	up := &flakySink{}
	q, stop = start(up)
	defer stop()
	d := waitDelivery(t, q, id)
	if d.State != async.DeliveryDelivered || up.delivered.Load() != 1 || d.Attempts < 2 {
		t.Fatalf("after restart: delivery %+v, delivered %d; want delivered once, attempts counted across the restart", d, up.delivered.Load())
	}
}

// TestOutboxResumeSkipsTasksInProgress: on a shared store the outbox asks
// for pending deliveries again and again, and the store reports the
// tasks this node holds among them; each delivery must still be attempted
// once per retry, not once per look.
func TestOutboxResumeSkipsTasksInProgress(t *testing.T) {
	q, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	sink := &flakySink{failures: 2}
	slow := dispatcher.RetryPolicy{MaxAttempts: 5, InitialInterval: 150 * time.Millisecond, MaxInterval: time.Second, Multiplier: 1, MaxAge: time.Hour}
	d, err := dispatcher.New(dispatcher.Config{Logger: quiet, Functions: []*dispatcher.Function{{
		Lane: lane("t", "f"), Backend: okBackend(), Retry: fastRetry(1),
		OnSuccess: []dispatcher.Destination{{Name: "on_success[0]", Kind: "test", Sink: sink, Retry: slow, Timeout: time.Second}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ob := dispatcher.NewOutbox(d, q)
	ob.ResumeEvery(5 * time.Millisecond) // the embedded store reports every pending task each time
	r := dispatcher.NewTaskRunner(d, q, ob, dispatcher.TaskRunnerConfig{Workers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = ob.Run(ctx, 4) })
	wg.Go(func() { _ = r.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	id := (&bundle{q: q}).submit(t, "t", "f", 0, "x")
	dl := waitDelivery(t, q, id)
	if dl.State != async.DeliveryDelivered || dl.Attempts != 3 || sink.calls.Load() != 3 || sink.delivered.Load() != 1 {
		t.Fatalf("delivery %+v, sink calls %d, delivered %d; want 3 attempts (2 failures, one delivery), however often the outbox looked",
			dl, sink.calls.Load(), sink.delivered.Load())
	}
}
