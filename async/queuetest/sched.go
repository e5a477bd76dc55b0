package queuetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// fairAcrossTenants: a tenant with a long backlog does not delay one with
// a few tasks: leases alternate between them, each tenant's tasks in
// enqueue order.
func fairAcrossTenants(t *testing.T, e *env) {
	for i := range 1000 {
		mustEnqueue(t, e.q, e.task(seqID("a", i), "A", "f"))
	}
	for i := range 10 {
		mustEnqueue(t, e.q, e.task(seqID("b", i), "B", "f"))
	}
	byTenant := map[string]int{}
	for range 20 {
		byTenant[e.mustLease(t, e.q).Tenant]++
	}
	if byTenant["B"] != 10 || byTenant["A"] != 10 {
		t.Fatalf("first 20 leases by tenant = %v, want B 10", byTenant)
	}
	// A's tasks come out in enqueue order.
	if l := e.mustLease(t, e.q); l.ID != seqID("a", 10) {
		t.Fatalf("next A task = %s", l.ID)
	}
}

// lanesAlternateAndBlock: a tenant's lanes take turns; a blocked lane is
// skipped, and Lease reports nothing when only blocked lanes have tasks;
// Stats counts each lane's queued and running tasks.
func lanesAlternateAndBlock(t *testing.T, e *env) {
	for i := range 4 {
		mustEnqueue(t, e.q, e.task(seqID("x", i), "A", "x"))
	}
	for i := range 4 {
		mustEnqueue(t, e.q, e.task(seqID("y", i), "A", "y"))
	}

	t.Run("FunctionsAlternate", func(t *testing.T) {
		var fns []string
		for range 4 {
			fns = append(fns, e.mustLease(t, e.q).Function)
		}
		for i := 1; i < len(fns); i++ {
			if fns[i] == fns[i-1] {
				t.Fatalf("lanes did not alternate: %v", fns)
			}
		}
	})
	t.Run("BlockedLaneSkipped", func(t *testing.T) {
		onlyY := async.LeaseRequest{TTL: time.Minute, BlockedLanes: []wire.Lane{{Tenant: "A", Function: "x"}}}
		for range 2 {
			got, _, err := e.lease(e.q, onlyY)
			if err != nil || got == nil || got.Function != "y" {
				t.Fatalf("Lease(only y) = %v, %v", got, err)
			}
		}
		got, next, err := e.lease(e.q, onlyY)
		if got != nil || !next.IsZero() || err != nil {
			t.Fatalf("Lease(only y) with y empty = %v, %v, %v", got, next, err)
		}
	})
	if s := e.stats(t); len(s) != 2 || s[0] != (async.LaneStats{Lane: wire.Lane{Tenant: "A", Function: "x"}, Queued: 2, Running: 2}) ||
		s[1] != (async.LaneStats{Lane: wire.Lane{Tenant: "A", Function: "y"}, Queued: 0, Running: 4}) {
		t.Fatalf("Stats = %+v", s)
	}
}

// leaseSkipsBlocked: Lease honours the tenants and lanes a request
// blocks, with short lists and long ones (a store may index those); each
// list on a queue of its own.
func leaseSkipsBlocked(t *testing.T, e *env) {
	for _, extra := range []int{0, 20} {
		t.Run(fmt.Sprintf("%dMore", extra), func(t *testing.T) {
			e := e
			if extra > 0 {
				e = setup(t, e.h)
			}
			for i, tenant := range []string{"A", "A", "B", "C"} {
				fn := "f"
				if i == 1 {
					fn = "g"
				}
				mustEnqueue(t, e.q, e.task(seqID("t", i), tenant, fn))
			}
			req := async.LeaseRequest{TTL: time.Minute, BlockedTenants: []string{"B"}, BlockedLanes: []wire.Lane{{Tenant: "A", Function: "f"}}}
			for i := range extra {
				req.BlockedTenants = append(req.BlockedTenants, seqID("none", i))
			}
			var got []string
			for {
				l, _, err := e.lease(e.q, req)
				if err != nil {
					t.Fatal(err)
				}
				if l == nil {
					break
				}
				got = append(got, l.Lane().String())
			}
			slices.Sort(got)
			if want := []string{"A/g", "C/f"}; !slices.Equal(got, want) {
				t.Fatalf("leased %v, want %v (B and A/f blocked)", got, want)
			}
		})
	}
}

// delayedTask: a task is not leased before its ReadyAt, which Lease
// reports as next.
func delayedTask(t *testing.T, e *env) {
	task := e.task("later", "acme", "echo")
	task.ReadyAt = e.clock.Now().Add(30 * time.Second)
	mustEnqueue(t, e.q, task)

	got, next, err := e.lease(e.q, async.LeaseRequest{TTL: time.Minute})
	if got != nil || err != nil || !sameTime(next, task.ReadyAt) {
		t.Fatalf("Lease before ReadyAt = %v, next %v, %v; want next %v", got, next, err, task.ReadyAt)
	}
	e.clock.Advance(29 * time.Second)
	if got, next, err := e.lease(e.q, async.LeaseRequest{TTL: time.Minute}); got != nil || err != nil || !sameTime(next, task.ReadyAt) {
		t.Fatalf("Lease 1s early = %v, next %v, %v", got, next, err)
	}
	e.clock.Advance(2 * time.Second)
	if got := e.mustLease(t, e.q); got.ID != "later" {
		t.Fatalf("leased %s", got.ID)
	}
}

// idempotency: a key maps to its task within IdempotencyTTL, per tenant;
// once it expired the key makes a new task, which it then maps to.
func idempotency(t *testing.T, e *env) {
	ctx := context.Background()
	keyed := func(id, tenant string) *async.Task {
		task := e.task(id, tenant, "echo")
		task.IdempotencyKey = "order-1"
		return task
	}
	first := mustEnqueue(t, e.q, keyed("t1", "acme"))

	for _, tc := range []struct {
		name        string
		advance     time.Duration
		id, tenant  string
		wantID      string
		wantCreated bool
	}{
		{"SameKeySameTenant", 0, "t2", "acme", "t1", false},
		{"SameKeyOtherTenant", 0, "t3", "other", "t3", true},
		{"JustBeforeExpiry", IdempotencyTTL - 5*time.Second, "t4", "acme", "t1", false},
		{"Expired", 10 * time.Second, "t5", "acme", "t5", true},
		{"NewKeyHolds", 0, "t6", "acme", "t5", false},
	} {
		e.clock.Advance(tc.advance)
		got, created, err := e.q.Enqueue(ctx, keyed(tc.id, tc.tenant), 0)
		if err != nil || got == nil || created != tc.wantCreated || got.ID != tc.wantID {
			t.Fatalf("%s: got %v created %v err %v; want %s created %v", tc.name, got, created, err, tc.wantID, tc.wantCreated)
		}
	}
	if first.ID != "t1" {
		t.Fatal(first.ID)
	}
	for _, id := range []string{"t2", "t4", "t6"} {
		wantGone(t, e.q, "acme", id)
	}
}

// idempotencyConcurrent: of concurrent enqueues with one key, one creates
// the task and the others get it.
func idempotencyConcurrent(t *testing.T, e *env) {
	ctx := context.Background()
	type result struct {
		id      string
		created bool
		err     error
	}
	results := make(chan result, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			task := e.task(seqID("c", i), "acme", "echo")
			task.IdempotencyKey = "same"
			got, created, err := e.q.Enqueue(ctx, task, 0)
			r := result{created: created, err: err}
			if got != nil {
				r.id = got.ID
			}
			results <- r
		})
	}
	wg.Wait()
	close(results)
	created, ids := 0, map[string]bool{}
	for r := range results {
		if r.err != nil {
			t.Fatalf("Enqueue: %v", r.err)
		}
		if r.created {
			created++
		}
		ids[r.id] = true
	}
	if created != 1 || len(ids) != 1 {
		t.Fatalf("created %d tasks, ids %v", created, ids)
	}
	if s := e.stats(t); len(s) != 1 || s[0].Queued != 1 {
		t.Fatalf("Stats = %+v", s)
	}
}

// quota: a tenant with max_queued unfinished tasks (running ones count)
// gets ErrQuotaExceeded, other tenants do not; finishing one frees a slot.
func quota(t *testing.T, e *env) {
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := e.q.Enqueue(ctx, e.task(seqID("q", i), "acme", "echo"), 3); err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	_, _, err := e.q.Enqueue(ctx, e.task("q-4", "acme", "echo"), 3)
	wantErr(t, err, async.ErrQuotaExceeded)
	if _, _, err := e.q.Enqueue(ctx, e.task("o-1", "other", "echo"), 3); err != nil {
		t.Fatalf("other tenant: %v", err)
	}
	// Running tasks still count; finishing one frees a slot.
	l := e.mustLease(t, e.q)
	for l.Tenant != "acme" {
		l = e.mustLease(t, e.q)
	}
	_, _, err = e.q.Enqueue(ctx, e.task("q-4", "acme", "echo"), 3)
	wantErr(t, err, async.ErrQuotaExceeded)
	mustComplete(t, e.q, l, async.Completion{Status: async.StatusSucceeded})
	if _, _, err := e.q.Enqueue(ctx, e.task("q-4", "acme", "echo"), 3); err != nil {
		t.Fatalf("after finishing one: %v", err)
	}
}

// concurrentWorkers: with producers and workers running together, every
// task is leased and completed exactly once.
func concurrentWorkers(t *testing.T, e *env) {
	ctx := context.Background()
	const producers, perProducer, workers = 4, 50, 6
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				task := e.task(seqID(string(rune('a'+p)), i), string(rune('A'+p%2)), string(rune('f'+i%3)))
				if _, _, err := e.q.Enqueue(ctx, task, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var mu sync.Mutex
	done := map[string]int{}
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				n := len(done)
				mu.Unlock()
				if n == producers*perProducer || t.Failed() {
					return
				}
				// Every lease moves the clock on while workers wait for
				// tasks: a lease long enough never to expire here.
				task, _, err := e.lease(e.q, async.LeaseRequest{TTL: 1000 * time.Hour})
				if err != nil {
					t.Error(err)
					return
				}
				if task == nil {
					continue
				}
				if _, err := e.q.Complete(ctx, task.ID, task.Lease, async.Completion{Status: async.StatusSucceeded, Attempted: true}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				done[task.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for id, n := range done {
		if n != 1 {
			t.Fatalf("%s completed %d times", id, n)
		}
	}
	if s := e.stats(t); len(s) != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}
