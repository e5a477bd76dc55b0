package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	q := openTest(t, Options{})
	now := time.Now()
	for i, tn := range []string{"a", "a", "b"} {
		task := &async.Task{ID: "id" + string(rune('0'+i)), Tenant: tn, Function: "f", Payload: []byte("p"), CreatedAt: now, ReadyAt: now}
		got, created, err := q.Enqueue(ctx, task, 0)
		if err != nil || !created || got.Status != async.StatusQueued {
			t.Fatalf("enqueue: %v %v %+v", err, created, got)
		}
	}
	var order []string
	for range 3 {
		deadline := time.Now().Add(5 * time.Second)
		var lt *async.Task
		for lt == nil && time.Now().Before(deadline) {
			var err error
			lt, _, err = q.Lease(ctx, async.LeaseRequest{TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
		}
		if lt == nil {
			t.Fatal("no lease")
		}
		order = append(order, lt.Tenant)
		done, err := q.Complete(ctx, lt.ID, lt.Lease, async.Completion{Status: async.StatusSucceeded, Attempted: true, Output: []byte("ok")})
		if err != nil || done.Attempts != 1 {
			t.Fatalf("complete: %v %+v", err, done)
		}
		got, err := q.Get(ctx, lt.Tenant, lt.ID)
		if err != nil || got.Status != async.StatusSucceeded || string(got.Output) != "ok" || string(got.Payload) != "p" {
			t.Fatalf("get: %v %+v", err, got)
		}
	}
	t.Logf("order %v", order)
	list, next, err := q.List(ctx, async.ListOptions{Tenant: "a"})
	if err != nil || len(list) != 2 || next != "" {
		t.Fatalf("list: %v %d %q", err, len(list), next)
	}
}
