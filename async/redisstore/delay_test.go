package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

// leaseWithin polls Lease until a task comes or the deadline passes.
func leaseWithin(t *testing.T, q *Queue, d time.Duration) *async.Task {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		lt, _, err := q.Lease(context.Background(), async.LeaseRequest{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if lt != nil {
			return lt
		}
	}
	t.Fatalf("no task leased within %s", d)
	return nil
}

// TestDelayNeverEarly: a delayed or retried task is never leased before its
// time, though scripts count Redis's clock in whole ms.
func TestDelayNeverEarly(t *testing.T) {
	q := openTest(t, Options{})
	for i, d := range []time.Duration{time.Millisecond, 1500 * time.Microsecond, 7 * time.Millisecond, 30 * time.Millisecond} {
		t.Run(d.String(), func(t *testing.T) {
			ctx := context.Background()
			now := time.Now()
			task := &async.Task{ID: fmt.Sprintf("d%d", i), Tenant: "a", Function: "f", CreatedAt: now, ReadyAt: now.Add(d)}
			if _, _, err := q.Enqueue(ctx, task, 0); err != nil {
				t.Fatal(err)
			}
			lt := leaseWithin(t, q, 5*time.Second)
			if early := time.Until(now.Add(d)); early > 0 {
				t.Fatalf("delayed task leased %s before its time", early)
			}
			at := time.Now().Add(d)
			if err := q.Retry(ctx, lt.ID, lt.Lease, at, &async.TaskError{Code: "x"}); err != nil {
				t.Fatal(err)
			}
			lt = leaseWithin(t, q, 5*time.Second)
			if early := time.Until(at); early > 0 {
				t.Fatalf("retried task leased %s before its time", early)
			}
			if _, err := q.Complete(ctx, lt.ID, lt.Lease, async.Completion{Status: async.StatusSucceeded, Attempted: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
