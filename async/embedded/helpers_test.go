package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testBundle struct {
	dir   string
	clock *fakeClock
	opts  Options
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// setup opens a queue in a temporary directory with a fake clock.
func setup(t testing.TB) (*Queue, *testBundle) {
	t.Helper()
	clock := newFakeClock()
	b := &testBundle{
		dir:   t.TempDir(),
		clock: clock,
		opts:  Options{Retention: time.Hour, IdempotencyTTL: 2 * time.Hour, Now: clock.Now, Logger: quietLogger},
	}
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

// reopen closes q and opens its directory again (a graceful restart, or a
// kill -9 as far as task records go: Close adds nothing Open relies on).
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

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func seqID(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }
