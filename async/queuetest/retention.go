package queuetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// list: List pages through a tenant's tasks newest first, filtered by
// function and status, with cursors that belong to their query
// (ErrBadCursor otherwise); a tenant is required.
func list(t *testing.T, e *env) {
	ctx := context.Background()
	for i := range 25 {
		fn := "even"
		if i%2 == 1 {
			fn = "odd"
		}
		mustEnqueue(t, e.q, e.task(seqID("t", i), "acme", fn))
		e.clock.Advance(time.Second) // well apart, for a store that stamps CreatedAt itself
	}
	mustEnqueue(t, e.q, e.task("foreign", "other", "even"))
	// Lease and finish the two oldest "even" tasks.
	evens := async.LeaseRequest{TTL: time.Minute, BlockedTenants: []string{"other"}, BlockedLanes: []wire.Lane{{Tenant: "acme", Function: "odd"}}}
	for range 2 {
		l, _, err := e.lease(e.q, evens)
		if err != nil || l == nil {
			t.Fatalf("Lease(even) = %v, %v", l, err)
		}
		mustComplete(t, e.q, l, async.Completion{Status: async.StatusSucceeded})
	}

	all := func(opts async.ListOptions) ([]string, int) {
		var ids []string
		pages := 0
		for {
			tasks, next, err := e.q.List(ctx, opts)
			if err != nil {
				t.Fatalf("List(%+v): %v", opts, err)
			}
			pages++
			ids = append(ids, idsOf(tasks)...)
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

	_, next, err := e.q.List(ctx, async.ListOptions{Tenant: "acme", Limit: 2})
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
			_, _, err := e.q.List(ctx, tc.opts)
			wantErr(t, err, async.ErrBadCursor)
		})
	}
	if _, _, err := e.q.List(ctx, async.ListOptions{}); err == nil {
		t.Fatal("List without tenant succeeded")
	}
}

// retention: a finished task is kept for Retention, then upkeep deletes it
// (Get and List no longer find it); its idempotency key lives on for
// IdempotencyTTL and then makes new tasks, also after a restart.
func retention(t *testing.T, e *env) {
	ctx := context.Background()
	keyed := func(id string) *async.Task {
		task := e.task(id, "acme", "echo")
		task.IdempotencyKey = "k"
		return task
	}
	mustEnqueue(t, e.q, keyed("t1"))
	l := e.mustLease(t, e.q)
	mustComplete(t, e.q, l, async.Completion{Status: async.StatusFailed, Error: &async.TaskError{Code: "rejected"}, Attempted: true})
	g := mustGet(t, e.q, "acme", "t1")
	if g.Error == nil || g.LastError == nil || g.Attempts != 1 {
		t.Fatalf("failed task = %+v", g)
	}

	e.clock.Advance(Retention - time.Second)
	e.upkeep(t, e.q)
	mustGet(t, e.q, "acme", "t1")
	e.clock.Advance(2 * time.Second)
	e.upkeep(t, e.q)
	wantGone(t, e.q, "acme", "t1")
	if tasks, _, err := e.q.List(ctx, async.ListOptions{Tenant: "acme"}); err != nil || len(tasks) != 0 {
		t.Fatalf("listing survived retention: %v, %v", idsOf(tasks), err)
	}
	// The idempotency key (IdempotencyTTL > Retention) outlived its task:
	// the same key makes a new task.
	if got := mustEnqueue(t, e.q, keyed("t2")); got.ID != "t2" {
		t.Fatalf("got %s", got.ID)
	}

	// After IdempotencyTTL upkeep deletes the key; the restart keeps it
	// deleted.
	e.clock.Advance(IdempotencyTTL + time.Second)
	e.upkeep(t, e.q)
	e.reopen(t)
	if got := mustEnqueue(t, e.q, keyed("t3")); got.ID != "t3" {
		t.Fatalf("got %s", got.ID)
	}
}

// deliveries: a finished task's pending deliveries are listed by
// PendingDeliveries (also after a restart) and keep the task past its
// retention; UpdateDelivery settles them, and retention counts from the
// last change.
func deliveries(t *testing.T, e *env) {
	ctx := context.Background()
	mustEnqueue(t, e.q, e.task("t1", "acme", "echo"))
	mustEnqueue(t, e.q, e.task("t2", "acme", "echo"))
	l := e.mustLease(t, e.q)
	deliveries := []async.Delivery{
		{Destination: "on_success[0]", Kind: "webhook", State: async.DeliveryPending},
		{Destination: "on_success[1]", Kind: "log", State: async.DeliveryPending},
	}
	done := mustComplete(t, e.q, l, async.Completion{Status: async.StatusSucceeded, Deliveries: deliveries, Attempted: true})
	if len(done.Deliveries) != 2 || done.Deliveries[1].Index != 1 || done.Deliveries[1].State != async.DeliveryPending {
		t.Fatalf("completed task's deliveries = %+v", done.Deliveries)
	}
	pendingIDs := func() []string {
		t.Helper()
		tasks, err := e.q.PendingDeliveries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := idsOf(tasks)
		slices.Sort(ids)
		return ids
	}
	if ids := pendingIDs(); len(ids) != 1 || ids[0] != "t1" {
		t.Fatalf("pending = %v", ids)
	}
	e.reopen(t)
	if ids := pendingIDs(); len(ids) != 1 || ids[0] != "t1" {
		t.Fatalf("pending after restart = %v", ids)
	}

	// Pending deliveries keep the task past its retention.
	e.clock.Advance(2 * Retention)
	e.upkeep(t, e.q)
	mustGet(t, e.q, "acme", "t1")
	for i := range deliveries {
		d := deliveries[i]
		d.Index, d.State, d.Attempts = i, async.DeliveryDelivered, 1
		if err := e.q.UpdateDelivery(ctx, "acme", "t1", d); err != nil {
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
	g := mustGet(t, e.q, "acme", "t1")
	if g.Deliveries[1].State != async.DeliveryDelivered || g.Deliveries[1].Index != 1 || g.Deliveries[1].Attempts != 1 {
		t.Fatalf("deliveries = %+v", g.Deliveries)
	}
	if err := e.q.UpdateDelivery(ctx, "acme", "t1", async.Delivery{Index: 5}); err == nil {
		t.Fatal("out-of-range delivery accepted")
	}
	wantErr(t, e.q.UpdateDelivery(ctx, "other", "t1", deliveries[0]), async.ErrNotFound)

	// Retention counts from the last delivery; a later change moves it on.
	e.clock.Advance(Retention / 2)
	late := deliveries[0]
	late.State = async.DeliveryFailed
	if err := e.q.UpdateDelivery(ctx, "acme", "t1", late); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(Retention / 2)
	e.upkeep(t, e.q)
	mustGet(t, e.q, "acme", "t1")
	e.clock.Advance(Retention/2 + time.Second)
	e.upkeep(t, e.q)
	wantGone(t, e.q, "acme", "t1")
	if g := mustGet(t, e.q, "acme", "t2"); g.Status != async.StatusQueued {
		t.Fatalf("unfinished task after the sweep = %+v", g)
	}
}
