package embedded

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

func TestList(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	for i := range 25 {
		fn := "even"
		if i%2 == 1 {
			fn = "odd"
		}
		mustEnqueue(t, q, newTask(b, seqID("t", i), "acme", fn))
		b.clock.Advance(time.Millisecond)
	}
	mustEnqueue(t, q, newTask(b, "foreign", "other", "even"))
	// Lease and finish the two oldest "even" tasks.
	for range 2 {
		l, _, _ := q.Lease(ctx, async.LeaseRequest{TTL: time.Minute, BlockedTenants: []string{"other"}, BlockedLanes: []wire.Lane{{Tenant: "acme", Function: "odd"}}})
		if _, err := q.Complete(ctx, l.ID, l.Lease, async.Completion{Status: async.StatusSucceeded}); err != nil {
			t.Fatal(err)
		}
	}

	all := func(opts async.ListOptions) ([]string, int) {
		var ids []string
		pages := 0
		for {
			tasks, next, err := q.List(ctx, opts)
			if err != nil {
				t.Fatalf("List(%+v): %v", opts, err)
			}
			pages++
			for _, task := range tasks {
				ids = append(ids, task.ID)
			}
			if next == "" {
				return ids, pages
			}
			opts.Cursor = next
		}
	}
	for _, tc := range []struct {
		name      string
		opts      async.ListOptions
		wantN     int
		wantFirst string
		wantPages int
	}{
		{"AllPages", async.ListOptions{Tenant: "acme", Limit: 10}, 25, "t-00024", 3},
		{"DefaultLimit", async.ListOptions{Tenant: "acme"}, 25, "t-00024", 1},
		{"ExactPages", async.ListOptions{Tenant: "acme", Limit: 5}, 25, "t-00024", 5},
		{"Function", async.ListOptions{Tenant: "acme", Function: "odd", Limit: 4}, 12, "t-00023", 3},
		{"Status", async.ListOptions{Tenant: "acme", Status: async.StatusSucceeded, Limit: 1}, 2, "t-00002", 2},
		{"FunctionAndStatus", async.ListOptions{Tenant: "acme", Function: "even", Status: async.StatusQueued}, 11, "t-00024", 1},
		{"OtherTenant", async.ListOptions{Tenant: "other"}, 1, "foreign", 1},
		{"NoTasks", async.ListOptions{Tenant: "nobody"}, 0, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, pages := all(tc.opts)
			if len(ids) != tc.wantN || pages != tc.wantPages || (tc.wantN > 0 && ids[0] != tc.wantFirst) {
				t.Fatalf("got %d ids in %d pages (first %v), want %d in %d (first %s)", len(ids), pages, ids, tc.wantN, tc.wantPages, tc.wantFirst)
			}
			for i := 1; i < len(ids); i++ {
				if ids[i] >= ids[i-1] {
					t.Fatalf("not newest first: %v", ids)
				}
			}
		})
	}

	_, next, err := q.List(ctx, async.ListOptions{Tenant: "acme", Limit: 2})
	if err != nil || next == "" {
		t.Fatalf("List: %q, %v", next, err)
	}
	for _, tc := range []struct {
		name string
		opts async.ListOptions
	}{
		{"Garbage", async.ListOptions{Tenant: "acme", Cursor: "!!not-base64"}},
		{"Short", async.ListOptions{Tenant: "acme", Cursor: "AQ"}},
		{"OtherTenant", async.ListOptions{Tenant: "other", Cursor: next}},
		{"OtherFilter", async.ListOptions{Tenant: "acme", Function: "odd", Cursor: next}},
	} {
		t.Run("BadCursor"+tc.name, func(t *testing.T) {
			_, _, err := q.List(ctx, tc.opts)
			wantErr(t, err, async.ErrBadCursor)
		})
	}
	if _, _, err := q.List(ctx, async.ListOptions{}); err == nil {
		t.Fatal("List without tenant succeeded")
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	task := newTask(b, "t1", "acme", "echo")
	task.IdempotencyKey = "k"
	mustEnqueue(t, q, task)
	l := mustLease(t, q)
	if _, err := q.Complete(ctx, l.ID, l.Lease, async.Completion{Status: async.StatusFailed, Error: &async.TaskError{Code: "rejected"}, Attempted: true}); err != nil {
		t.Fatal(err)
	}
	g := mustGet(t, q, "acme", "t1")
	if g.Error == nil || g.LastError == nil || g.Attempts != 1 {
		t.Fatalf("failed task = %+v", g)
	}

	b.clock.Advance(b.opts.Retention - time.Second)
	if n, err := q.sweep(); n != 0 || err != nil {
		t.Fatalf("early sweep = %d, %v", n, err)
	}
	mustGet(t, q, "acme", "t1")
	b.clock.Advance(time.Second)
	if n, err := q.sweep(); n != 1 || err != nil {
		t.Fatalf("sweep = %d, %v", n, err)
	}
	if _, err := q.Get(ctx, "acme", "t1"); !errors.Is(err, async.ErrNotFound) {
		t.Fatalf("task survived retention: %v", err)
	}
	if tasks, _, _ := q.List(ctx, async.ListOptions{Tenant: "acme"}); len(tasks) != 0 {
		t.Fatalf("listing survived retention: %d", len(tasks))
	}
	// The idempotency key (TTL 2h) outlived its task: the same key makes a new task.
	again := newTask(b, "t2", "acme", "echo")
	again.IdempotencyKey = "k"
	if got := mustEnqueue(t, q, again); got.ID != "t2" {
		t.Fatalf("got %s", got.ID)
	}

	// Key expiry: after the TTL the sweeper deletes it, on disk too.
	b.clock.Advance(b.opts.IdempotencyTTL)
	if n, err := q.sweep(); n != 1 || err != nil { // the key; t2 is still queued
		t.Fatalf("key sweep = %d, %v", n, err)
	}
	q = reopen(t, q, b)
	if len(q.idem) != 0 {
		t.Fatalf("idempotency keys after expiry and reopen: %v", q.idem)
	}
	third := newTask(b, "t3", "acme", "echo")
	third.IdempotencyKey = "k"
	if got := mustEnqueue(t, q, third); got.ID != "t3" {
		t.Fatalf("got %s", got.ID)
	}
}

func TestDeliveries(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	mustEnqueue(t, q, newTask(b, "t1", "acme", "echo"))
	l := mustLease(t, q)
	deliveries := []async.Delivery{
		{Destination: "on_success[0]", Kind: "webhook", State: async.DeliveryPending},
		{Destination: "on_success[1]", Kind: "log", State: async.DeliveryPending},
	}
	if _, err := q.Complete(ctx, l.ID, l.Lease, async.Completion{Status: async.StatusSucceeded, Deliveries: deliveries, Attempted: true}); err != nil {
		t.Fatal(err)
	}
	pendingIDs := func() []string {
		t.Helper()
		tasks, err := q.PendingDeliveries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, task := range tasks {
			ids = append(ids, task.ID)
		}
		return ids
	}
	if ids := pendingIDs(); len(ids) != 1 || ids[0] != "t1" {
		t.Fatalf("pending = %v", ids)
	}
	q = reopen(t, q, b)
	if ids := pendingIDs(); len(ids) != 1 || ids[0] != "t1" {
		t.Fatalf("pending after reopen = %v", ids)
	}

	// Pending deliveries keep the task past its retention.
	b.clock.Advance(2 * b.opts.Retention)
	if n, _ := q.sweep(); n != 0 {
		t.Fatal("swept a task with pending deliveries")
	}
	for i := range deliveries {
		d := deliveries[i]
		d.Index, d.State, d.Attempts = i, async.DeliveryDelivered, 1
		if err := q.UpdateDelivery(ctx, "acme", "t1", d); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if ids := pendingIDs(); len(ids) != 1 {
				t.Fatalf("pending after one delivery = %v", ids)
			}
		}
	}
	if ids := pendingIDs(); len(ids) != 0 {
		t.Fatalf("pending after all delivered = %v", ids)
	}
	g := mustGet(t, q, "acme", "t1")
	if g.Deliveries[1].State != async.DeliveryDelivered || g.Deliveries[1].Index != 1 {
		t.Fatalf("deliveries = %+v", g.Deliveries)
	}
	if err := q.UpdateDelivery(ctx, "acme", "t1", async.Delivery{Index: 5}); err == nil {
		t.Fatal("out-of-range delivery accepted")
	}

	// Retention counts from the last delivery; a later change moves it on.
	b.clock.Advance(b.opts.Retention / 2)
	late := deliveries[0]
	late.State = async.DeliveryFailed
	if err := q.UpdateDelivery(ctx, "acme", "t1", late); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(b.opts.Retention / 2)
	if n, _ := q.sweep(); n != 0 {
		t.Fatal("swept before Retention after the last delivery change")
	}
	b.clock.Advance(b.opts.Retention / 2)
	if n, err := q.sweep(); n != 1 || err != nil {
		t.Fatalf("sweep = %d, %v", n, err)
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
