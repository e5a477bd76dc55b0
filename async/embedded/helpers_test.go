package embedded

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/queuetest"
)

// testBundle is where a test's queue lives and how it is opened.
type testBundle struct {
	dir   string
	clock *queuetest.Clock
	opts  Options
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newBundle is a temporary directory and the suite's settings, on clock c.
func newBundle(t testing.TB, c *queuetest.Clock) *testBundle {
	return &testBundle{
		dir:   t.TempDir(),
		clock: c,
		opts:  Options{Retention: queuetest.Retention, IdempotencyTTL: queuetest.IdempotencyTTL, Now: c.Now, Logger: quietLogger},
	}
}

// setup opens a queue in a temporary directory with a fake clock.
func setup(t testing.TB) (*Queue, *testBundle) {
	t.Helper()
	b := newBundle(t, &queuetest.Clock{})
	return open(t, b), b
}

func open(t testing.TB, b *testBundle) *Queue {
	t.Helper()
	q, err := Open(b.dir, b.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// reopen closes q and opens its directory again.
func reopen(t testing.TB, q *Queue, b *testBundle) *Queue {
	t.Helper()
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return open(t, b)
}

func newTask(b *testBundle, id, tenant, fn string) *async.Task {
	now := b.clock.Now()
	return &async.Task{ID: id, Tenant: tenant, Function: fn, Payload: []byte(`{"n":1}`), CreatedAt: now, ReadyAt: now}
}

func mustEnqueue(t testing.TB, q *Queue, task *async.Task) *async.Task {
	t.Helper()
	got, created, err := q.Enqueue(context.Background(), task, 0)
	if err != nil || !created {
		t.Fatalf("Enqueue(%s) = created %v, err %v", task.ID, created, err)
	}
	return got
}

func mustLease(t testing.TB, q *Queue) *async.Task {
	t.Helper()
	got, next, err := q.Lease(context.Background(), async.LeaseRequest{TTL: time.Minute})
	if err != nil || got == nil {
		t.Fatalf("Lease = %v, next %v, err %v", got, next, err)
	}
	return got
}

func mustGet(t testing.TB, q *Queue, tenant, id string) *async.Task {
	t.Helper()
	got, err := q.Get(context.Background(), tenant, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return got
}

func seqID(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }
