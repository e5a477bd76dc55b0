package embedded

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/queuetest"
)

// TestSweep checks the sweeper's bookkeeping, which the contract suite
// sees only through Get: it deletes what the expiry index says is due, at
// the exact time, counting tasks and idempotency keys; it leaves a task
// with pending deliveries alone until they settle; and the keys it
// deletes are gone on disk (a reopened queue loads none).
func TestSweep(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	keyed := newTask(b, "t1", "acme", "echo")
	keyed.IdempotencyKey = "k"
	mustEnqueue(t, q, keyed)
	mustEnqueue(t, q, newTask(b, "t2", "acme", "echo"))
	l := mustLease(t, q)
	if _, err := q.Complete(ctx, l.ID, l.Lease, async.Completion{Status: async.StatusFailed, Error: &async.TaskError{Code: "rejected"}, Attempted: true}); err != nil {
		t.Fatal(err)
	}
	l = mustLease(t, q)
	pending := []async.Delivery{{Destination: "on_success[0]", Kind: "webhook", State: async.DeliveryPending}}
	if _, err := q.Complete(ctx, l.ID, l.Lease, async.Completion{Status: async.StatusSucceeded, Deliveries: pending, Attempted: true}); err != nil {
		t.Fatal(err)
	}
	sweep := func(want int) {
		t.Helper()
		if n, err := q.sweep(); n != want || err != nil {
			t.Fatalf("sweep at +%v = %d, %v; want %d", b.clock.Now().Sub(keyed.CreatedAt), n, err, want)
		}
	}

	b.clock.Advance(queuetest.Retention - time.Millisecond)
	sweep(0)
	b.clock.Advance(time.Millisecond)
	sweep(1) // t1; t2's delivery is pending
	b.clock.Advance(queuetest.IdempotencyTTL - queuetest.Retention)
	sweep(1) // the key
	q = reopen(t, q, b)
	if len(q.idem) != 0 {
		t.Fatalf("idempotency keys after expiry and reopen: %v", q.idem)
	}
	d := pending[0]
	d.State = async.DeliveryDelivered
	if err := q.UpdateDelivery(ctx, "acme", "t2", d); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(queuetest.Retention)
	sweep(1) // t2, Retention after its delivery settled
	if _, err := q.Get(ctx, "acme", "t2"); !errors.Is(err, async.ErrNotFound) {
		t.Fatalf("t2 after the sweep: %v", err)
	}
}

// TestRunAfterClose: Run on a closed queue returns nil at once, and
// Upkeep says the store is unavailable.
func TestRunAfterClose(t *testing.T) {
	t.Parallel()
	q, _ := setup(t)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Run(context.Background()); err != nil {
		t.Fatalf("Run after Close = %v", err)
	}
	if err := q.Upkeep(context.Background()); !errors.Is(err, async.ErrUnavailable) {
		t.Fatalf("Upkeep after Close = %v", err)
	}
}

func TestRunReapsAndStops(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()

	mustEnqueue(t, q, newTask(b, "t1", "acme", "echo"))
	<-q.Ready()
	if _, _, err := q.Lease(ctx, async.LeaseRequest{TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Hour)
	// Run wakes at the lease's expiry (about a second of real time) and
	// signals Ready when it requeued the task.
	select {
	case <-q.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not reap the expired lease")
	}
	if g := mustGet(t, q, "acme", "t1"); g.Status != async.StatusQueued || g.Recoveries != 1 {
		t.Fatalf("after Run = %+v", g)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}
