package queuetest

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

// The scenarios below need Harness.Second: two nodes, a and b, on one
// storage.

// twoNodesExpiredLease: a lease taken on a that expired is requeued by
// b's upkeep and leased by b; a's Complete, Retry and Release then get
// ErrLeaseLost, and b's completion is what both nodes read.
func twoNodesExpiredLease(t *testing.T, e *env) {
	ctx := context.Background()
	a, b := e.q, e.second(t)
	mustEnqueue(t, a, e.task("t1", "acme", "echo"))
	onA := e.mustLease(t, a)
	e.clock.Advance(leaseTTL + time.Second)
	e.upkeep(t, b)
	onB := e.mustLease(t, b)
	if onB.ID != "t1" || onB.Lease != onA.Lease+1 || onB.Recoveries != 1 || onB.Attempts != 0 {
		t.Fatalf("leased on b = %+v, want t1 with token %d", onB, onA.Lease+1)
	}
	_, err := a.Complete(ctx, "t1", onA.Lease, async.Completion{Status: async.StatusSucceeded, Attempted: true})
	wantErr(t, err, async.ErrLeaseLost)
	wantErr(t, a.Retry(ctx, "t1", onA.Lease, e.clock.Now(), &async.TaskError{Code: "timeout"}), async.ErrLeaseLost)
	wantErr(t, a.Release(ctx, "t1", onA.Lease), async.ErrLeaseLost)
	if g := mustGet(t, a, "acme", "t1"); g.Status != async.StatusRunning || g.Lease != onB.Lease || g.Attempts != 0 {
		t.Fatalf("a's stale calls changed the task: %+v", g)
	}
	done := mustComplete(t, b, onB, async.Completion{Status: async.StatusSucceeded, Output: []byte("b"), Attempted: true})
	wantSameTask(t, "b's completion read on a", done, mustGet(t, a, "acme", "t1"))
}

// twoNodesIdempotency: a key used on a returns a's task on b.
func twoNodesIdempotency(t *testing.T, e *env) {
	ctx := context.Background()
	a, b := e.q, e.second(t)
	keyed := func(id string) *async.Task {
		task := e.task(id, "acme", "echo")
		task.IdempotencyKey = "order-1"
		return task
	}
	first := mustEnqueue(t, a, keyed("t1"))
	got, created, err := b.Enqueue(ctx, keyed("t2"), 0)
	if err != nil || created || got == nil || got.ID != "t1" {
		t.Fatalf("same key on b = %v, created %v, err %v; want a's t1", got, created, err)
	}
	wantSameTask(t, "a's task as b returns it", first, got)
	wantGone(t, b, "acme", "t2")
}

// twoNodesShareTasks: a task enqueued on a wakes b (Ready), is leased and
// completed on b, and a reads it succeeded; Stats agree on both nodes.
func twoNodesShareTasks(t *testing.T, e *env) {
	a, b := e.q, e.second(t)
	drainReady(b)
	mustEnqueue(t, a, e.task("t1", "acme", "echo"))
	waitReady(t, b, "Enqueue on the other node")
	l := e.mustLease(t, b)
	if l.ID != "t1" {
		t.Fatalf("leased %s on b", l.ID)
	}
	if g := mustGet(t, a, "acme", "t1"); g.Status != async.StatusRunning || g.Lease != l.Lease {
		t.Fatalf("a reads b's lease as %+v", g)
	}
	e.upkeep(t, a)
	e.upkeep(t, b)
	for name, q := range map[string]async.Queue{"a": a, "b": b} {
		if s := q.Stats(); len(s) != 1 || s[0].Running != 1 || s[0].Queued != 0 {
			t.Fatalf("Stats on %s = %+v", name, s)
		}
	}
	mustComplete(t, b, l, async.Completion{Status: async.StatusSucceeded, Output: []byte("ok"), Attempted: true})
	if g := mustGet(t, a, "acme", "t1"); g.Status != async.StatusSucceeded || string(g.Output) != "ok" || g.Attempts != 1 {
		t.Fatalf("a reads %+v", g)
	}
}

// twoNodesFair: fairness across tenants holds (within one task in ten)
// while leases alternate between a and b: the fairness cursor lives in
// the store.
func twoNodesFair(t *testing.T, e *env) {
	a, b := e.q, e.second(t)
	for i := range 100 {
		mustEnqueue(t, a, e.task(seqID("a", i), "A", "f"))
	}
	for i := range 5 {
		mustEnqueue(t, b, e.task(seqID("b", i), "B", "f"))
	}
	byTenant := map[string][]string{}
	for i := range 10 {
		q := a
		if i%2 == 1 {
			q = b
		}
		l := e.mustLease(t, q)
		byTenant[l.Tenant] = append(byTenant[l.Tenant], l.ID)
	}
	// Each node reuses its pick of tenants for a moment (the Redis store:
	// up to 50 ms), so on a loaded machine one turn may go to the other
	// tenant: fair within one task in ten, each tenant in enqueue order.
	for tenant, prefix := range map[string]string{"A": "a", "B": "b"} {
		got := byTenant[tenant]
		if len(got) < 4 || len(got) > 6 {
			t.Fatalf("first 10 leases on alternating nodes = %v: %s got %d, want 5 ± 1", byTenant, tenant, len(got))
		}
		for i, id := range got {
			if id != seqID(prefix, i) {
				t.Fatalf("first 10 leases on alternating nodes = %v: %s's not in enqueue order", byTenant, tenant)
			}
		}
	}
}
