package queuetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// replay: only a failed task whose deliveries are settled is replayed,
// once per failure, with a fresh retry budget; the replayed task survives
// a restart queued and runs again.
func replay(t *testing.T, e *env) {
	ctx := context.Background()
	mustEnqueue(t, e.q, e.task("fail", "acme", "echo"))
	mustEnqueue(t, e.q, e.task("ok", "acme", "echo"))
	mustEnqueue(t, e.q, e.task("pending", "acme", "echo"))
	finish := func(id string, st async.Status, deliveries []async.Delivery) {
		t.Helper()
		l := e.mustLease(t, e.q)
		if l.ID != id {
			t.Fatalf("leased %s, want %s", l.ID, id)
		}
		c := async.Completion{Status: st, Attempted: true, Deliveries: deliveries}
		if st == async.StatusFailed {
			c.Error = &async.TaskError{Code: wire.CodeRetriesExhausted, Message: "gave up"}
		}
		mustComplete(t, e.q, l, c)
	}
	finish("fail", async.StatusFailed, nil)
	finish("ok", async.StatusSucceeded, nil)
	finish("pending", async.StatusFailed, []async.Delivery{{Destination: "on_failure[0]", Kind: "webhook", State: async.DeliveryPending}})
	mustEnqueue(t, e.q, e.task("queued", "acme", "other"))
	e.clock.Advance(time.Minute)

	for _, tc := range []struct {
		name, tenant, id string
		want             error
	}{
		{"OtherTenant", "other", "fail", async.ErrNotFound},
		{"Missing", "acme", "nope", async.ErrNotFound},
		{"Succeeded", "acme", "ok", async.ErrConflict},
		{"Queued", "acme", "queued", async.ErrConflict},
		{"DeliveriesPending", "acme", "pending", async.ErrConflict},
		{"Failed", "acme", "fail", nil},
		{"AlreadyReplayed", "acme", "fail", async.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.q.Replay(ctx, tc.tenant, tc.id)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			now := e.clock.Now()
			if tc.want == nil && (got.Status != async.StatusQueued || got.Attempts != 0 || got.Replays != 1 ||
				got.Error != nil || got.LastError == nil || !sameTime(got.ReplayedAt, now) || !sameTime(got.AgeFrom(), now)) {
				t.Fatalf("replayed task = %+v", got)
			}
		})
	}
	// The replayed task survives a restart queued, then runs again.
	e.reopen(t)
	if g := mustGet(t, e.q, "acme", "fail"); g.Status != async.StatusQueued || g.Replays != 1 {
		t.Fatalf("after restart: %+v", g)
	}
	echo := async.LeaseRequest{TTL: time.Minute, BlockedLanes: []wire.Lane{{Tenant: "acme", Function: "other"}}}
	l, _, err := e.lease(e.q, echo)
	if err != nil || l == nil || l.ID != "fail" {
		t.Fatalf("lease = %+v, %v; want the replayed task", l, err)
	}
	mustComplete(t, e.q, l, async.Completion{Status: async.StatusSucceeded, Attempted: true})
	if g := mustGet(t, e.q, "acme", "fail"); g.Status != async.StatusSucceeded || g.Attempts != 1 {
		t.Fatalf("after the replayed run: %+v", g)
	}
}
