package queuetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/async"
)

// enqueueBatch: EnqueueBatch answers task by task in order (created, the
// task of a live idempotency key, a duplicate key inside the batch, the
// quota), stores the created ones durably, refuses a batch of two tenants
// whole, and the tasks lease in the order given.
func enqueueBatch(t *testing.T, e *env) {
	ctx := context.Background()
	old := e.task("k0", "acme", "echo")
	old.IdempotencyKey = "old"
	mustEnqueue(t, e.q, old)

	keyed := func(id, key string) *async.Task {
		task := e.task(id, "acme", "echo")
		task.IdempotencyKey = key
		return task
	}
	batch := []*async.Task{
		keyed("a1", ""), keyed("a2", "old"), keyed("a3", "x"), keyed("a4", "x"),
		keyed("a5", ""), keyed("a6", ""), keyed("a7", ""),
	}
	want := []struct {
		id       string // "" with an error
		created  bool
		errQuota bool
	}{
		{"a1", true, false}, {"k0", false, false}, {"a3", true, false}, {"a3", false, false},
		{"a5", true, false}, {"a6", true, false}, {"", false, true},
	}
	res, err := e.q.EnqueueBatch(ctx, batch, 5)
	if err != nil || len(res) != len(batch) {
		t.Fatalf("EnqueueBatch = %d results, %v; want %d", len(res), err, len(batch))
	}
	for i, w := range want {
		r := res[i]
		switch {
		case w.errQuota:
			if !errors.Is(r.Err, async.ErrQuotaExceeded) || r.Task != nil {
				t.Errorf("task %d: %+v, want ErrQuotaExceeded", i, r)
			}
		case r.Err != nil || r.Task == nil || r.Task.ID != w.id || r.Created != w.created:
			t.Errorf("task %d: %+v, want %s created %v", i, r, w.id, w.created)
		case r.Created && (r.Task.Status != async.StatusQueued || string(r.Task.Payload) != `{"n":1}`):
			t.Errorf("task %d stored as %+v", i, r.Task)
		}
	}

	e.reopen(t)
	for _, id := range []string{"a1", "a3", "a5", "a6"} {
		if got := mustGet(t, e.q, "acme", id); got.Status != async.StatusQueued || string(got.Payload) != `{"n":1}` {
			t.Errorf("after a restart %s is %+v", id, got)
		}
	}
	for _, id := range []string{"a2", "a4", "a7"} {
		wantGone(t, e.q, "acme", id)
	}
	var order []string
	for range 5 {
		order = append(order, e.mustLease(t, e.q).ID)
	}
	if got := strings.Join(order, " "); got != "k0 a1 a3 a5 a6" {
		t.Errorf("leased %s, want k0 a1 a3 a5 a6", got)
	}

	mixed := []*async.Task{e.task("m1", "acme", "echo"), e.task("m2", "other", "echo")}
	if _, err := e.q.EnqueueBatch(ctx, mixed, 0); err == nil {
		t.Error("a batch of two tenants was accepted")
	}
	wantGone(t, e.q, "acme", "m1")
	wantGone(t, e.q, "other", "m2")
}

// leaseMany: a store that leases in batches (async.BatchLeaser) takes up
// to n ready tasks in one call (which ones is the store's fairness), each
// once, running with its own token and its payload; what it leased
// completes.
func leaseMany(t *testing.T, e *env) {
	bl, ok := e.q.(async.BatchLeaser)
	if !ok {
		t.Skip("the store leases one task per call")
	}
	for i := range 3 {
		mustEnqueue(t, e.q, e.task(seqID("a", i), "A", "f"))
		mustEnqueue(t, e.q, e.task(seqID("b", i), "B", "f"))
	}
	e.clock.Advance(tick)
	ctx := context.Background()
	var got []*async.Task
	for call := 0; len(got) < 6; call++ {
		ts, _, err := bl.LeaseMany(ctx, async.LeaseRequest{TTL: leaseTTL}, 4)
		if err != nil || len(ts) == 0 || len(ts) > 4 || call == 6 {
			t.Fatalf("LeaseMany(4) call %d = %d tasks, %v; want 1 to 4 while %d are ready", call, len(ts), err, 6-len(got))
		}
		got = append(got, ts...)
	}
	if ts, _, err := bl.LeaseMany(ctx, async.LeaseRequest{TTL: leaseTTL}, 4); err != nil || len(ts) != 0 {
		t.Fatalf("LeaseMany with nothing ready = %v, %v", idsOf(ts), err)
	}
	seen := map[string]bool{}
	for _, l := range got {
		if l.Status != async.StatusRunning || l.Lease == 0 || seen[l.ID] || string(l.Payload) != `{"n":1}` {
			t.Fatalf("leased %+v: want each task once, running, with a token and its payload", l)
		}
		seen[l.ID] = true
	}
	for _, l := range got {
		mustComplete(t, e.q, l, async.Completion{Status: async.StatusSucceeded, Attempted: true})
	}
}
