package embedded

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

func TestReplay(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	mustEnqueue(t, q, newTask(b, "fail", "acme", "echo"))
	mustEnqueue(t, q, newTask(b, "ok", "acme", "echo"))
	mustEnqueue(t, q, newTask(b, "pending", "acme", "echo"))
	finish := func(id string, st async.Status, deliveries []async.Delivery) {
		t.Helper()
		l := mustLease(t, q)
		if l.ID != id {
			t.Fatalf("leased %s, want %s", l.ID, id)
		}
		c := async.Completion{Status: st, Attempted: true, Deliveries: deliveries}
		if st == async.StatusFailed {
			c.Error = &async.TaskError{Code: wire.CodeRetriesExhausted, Message: "gave up"}
		}
		if _, err := q.Complete(ctx, id, l.Lease, c); err != nil {
			t.Fatal(err)
		}
	}
	finish("fail", async.StatusFailed, nil)
	finish("ok", async.StatusSucceeded, nil)
	finish("pending", async.StatusFailed, []async.Delivery{{Destination: "on_failure[0]", Kind: "webhook", State: async.DeliveryPending}})
	mustEnqueue(t, q, newTask(b, "queued", "acme", "other"))
	b.clock.Advance(time.Minute)

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
			got, err := q.Replay(ctx, tc.tenant, tc.id)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && (got.Status != async.StatusQueued || got.Attempts != 0 || got.Replays != 1 ||
				got.Error != nil || got.LastError == nil || !got.ReplayedAt.Equal(b.clock.Now()) || !got.AgeFrom().Equal(b.clock.Now())) {
				t.Fatalf("replayed task = %+v", got)
			}
		})
	}
	// The replayed task survives a restart queued, then runs again.
	q = reopen(t, q, b)
	if g := mustGet(t, q, "acme", "fail"); g.Status != async.StatusQueued || g.Replays != 1 {
		t.Fatalf("after reopen: %+v", g)
	}
	echo := async.LeaseRequest{TTL: time.Minute, BlockedLanes: []wire.Lane{{Tenant: "acme", Function: "other"}}}
	l, _, err := q.Lease(ctx, echo)
	if err != nil || l == nil || l.ID != "fail" {
		t.Fatalf("lease = %+v, %v; want the replayed task", l, err)
	}
	if _, err := q.Complete(ctx, l.ID, l.Lease, async.Completion{Status: async.StatusSucceeded, Attempted: true}); err != nil {
		t.Fatal(err)
	}
	if g := mustGet(t, q, "acme", "fail"); g.Status != async.StatusSucceeded || g.Attempts != 1 {
		t.Fatalf("after the replayed run: %+v", g)
	}
}
