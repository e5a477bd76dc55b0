package queuetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

const (
	// timeSlack is how far apart two times the suite compares may be: a
	// store may keep milliseconds, and a store that shifts its own clock
	// to the suite's (Redis's TIME plus the skew) runs ahead of it by the
	// latency of a call, which on a loaded machine under -race reaches
	// tens of milliseconds. The suite's steps that matter are longer (a
	// quarter second, mostly seconds).
	timeSlack = 100 * time.Millisecond
	// readyWait bounds the wait for a Ready signal, which a shared store
	// may deliver asynchronously.
	readyWait = 5 * time.Second
	// leaseTTL is the lease mustLease takes.
	leaseTTL = time.Minute
	// tick is how far the clock moves before each task the suite builds
	// (env.task) and each lease (env.lease): more than a store's clock
	// may run ahead (timeSlack).
	tick = timeSlack
)

// env is one scenario's queue, its clock and the harness that opened it.
type env struct {
	h     Harness
	clock *Clock
	q     async.Queue
}

func setup(t *testing.T, h Harness) *env {
	t.Helper()
	e := &env{h: h, clock: &Clock{}}
	e.q = h.Open(t, e.clock)
	if e.q == nil {
		t.Fatal("queuetest: Harness.Open returned nil")
	}
	return e
}

// reopen restarts e.q (gracefully or as after a crash: the suite asserts
// only what holds for both).
func (e *env) reopen(t testing.TB) {
	t.Helper()
	e.q = e.h.Reopen(t, e.q)
	if e.q == nil {
		t.Fatal("queuetest: Harness.Reopen returned nil")
	}
}

// second opens another node on e.q's storage.
func (e *env) second(t testing.TB) async.Queue {
	t.Helper()
	q := e.h.Second(t, e.q)
	if q == nil {
		t.Fatal("queuetest: Harness.Second returned nil")
	}
	return q
}

// upkeep runs one upkeep pass on q and stops the test if it failed.
func (e *env) upkeep(t testing.TB, q async.Queue) {
	t.Helper()
	e.h.Upkeep(t, q)
	if t.Failed() {
		t.FailNow()
	}
}

// stats returns e.q's Stats after an upkeep pass, sorted by lane.
func (e *env) stats(t testing.TB) []async.LaneStats {
	t.Helper()
	e.upkeep(t, e.q)
	s := e.q.Stats()
	slices.SortFunc(s, func(a, b async.LaneStats) int { return strings.Compare(a.Lane.String(), b.Lane.String()) })
	return s
}

// task moves the clock on by tick and builds a task created and ready
// then, so a store that stamps times itself, with a jitter, still orders
// tasks as the suite made them.
func (e *env) task(id, tenant, fn string) *async.Task {
	e.clock.Advance(tick)
	now := e.clock.Now()
	return &async.Task{ID: id, Tenant: tenant, Function: fn, Payload: []byte(`{"n":1}`), CreatedAt: now, ReadyAt: now}
}

func mustEnqueue(t testing.TB, q async.Queue, task *async.Task) *async.Task {
	t.Helper()
	got, created, err := q.Enqueue(context.Background(), task, 0)
	if err != nil || !created || got == nil {
		t.Fatalf("Enqueue(%s) = %v, created %v, err %v", task.ID, got, created, err)
	}
	return got
}

// lease moves the clock on by tick, then leases from q. A store whose
// clock runs ahead may stamp a task enqueued, released or retried "now"
// a little later than the suite's clock reads; the tick passes that
// boundary instead of meeting it.
func (e *env) lease(q async.Queue, req async.LeaseRequest) (*async.Task, time.Time, error) {
	e.clock.Advance(tick)
	return q.Lease(context.Background(), req)
}

// mustLease leases the next task from q for leaseTTL.
func (e *env) mustLease(t testing.TB, q async.Queue) *async.Task {
	t.Helper()
	got, next, err := e.lease(q, async.LeaseRequest{TTL: leaseTTL})
	if err != nil || got == nil {
		t.Fatalf("Lease = %v, next %v, err %v", got, next, err)
	}
	return got
}

func mustGet(t testing.TB, q async.Queue, tenant, id string) *async.Task {
	t.Helper()
	got, err := q.Get(context.Background(), tenant, id)
	if err != nil || got == nil {
		t.Fatalf("Get(%s, %s) = %v, %v", tenant, id, got, err)
	}
	return got
}

func mustComplete(t testing.TB, q async.Queue, l *async.Task, c async.Completion) *async.Task {
	t.Helper()
	got, err := q.Complete(context.Background(), l.ID, l.Lease, c)
	if err != nil || got == nil {
		t.Fatalf("Complete(%s, %d) = %v, %v", l.ID, l.Lease, got, err)
	}
	return got
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// wantGone checks that the tenant's task id no longer exists.
func wantGone(t testing.TB, q async.Queue, tenant, id string) {
	t.Helper()
	if got, err := q.Get(context.Background(), tenant, id); !errors.Is(err, async.ErrNotFound) {
		t.Fatalf("Get(%s, %s) = %+v, %v; want ErrNotFound", tenant, id, got, err)
	}
}

// drainReady consumes a Ready signal already pending, so that a later
// wait sees a new one.
func drainReady(q async.Queue) {
	select {
	case <-q.Ready():
	default:
	}
}

// waitReady waits up to readyWait for q's Ready signal, after what.
func waitReady(t testing.TB, q async.Queue, what string) {
	t.Helper()
	timer := time.NewTimer(readyWait)
	defer timer.Stop()
	select {
	case <-q.Ready():
	case <-timer.C:
		t.Fatalf("Ready not signalled within %v after %s", readyWait, what)
	}
}

func seqID(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }

// sameTime reports whether a and b are within timeSlack of each other.
func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return a.IsZero() == b.IsZero() && d <= timeSlack && d >= -timeSlack
}

// wantSameTask fails t unless got equals want, with times compared by
// sameTime and empty slices equal to nil.
func wantSameTask(t testing.TB, what string, want, got *async.Task) {
	t.Helper()
	w, g := want.Clone(), got.Clone()
	var diffs []string
	for _, f := range []struct {
		name string
		w, g *time.Time
	}{
		{"CreatedAt", &w.CreatedAt, &g.CreatedAt},
		{"UpdatedAt", &w.UpdatedAt, &g.UpdatedAt},
		{"ReadyAt", &w.ReadyAt, &g.ReadyAt},
		{"ReplayedAt", &w.ReplayedAt, &g.ReplayedAt},
		{"LeaseExpiresAt", &w.LeaseExpiresAt, &g.LeaseExpiresAt},
		{"FinishedAt", &w.FinishedAt, &g.FinishedAt},
	} {
		if !sameTime(*f.w, *f.g) {
			diffs = append(diffs, fmt.Sprintf("%s: want %v, got %v", f.name, *f.w, *f.g))
		}
		*f.w, *f.g = time.Time{}, time.Time{}
	}
	if len(w.Deliveries) == len(g.Deliveries) {
		for i := range w.Deliveries {
			wd, gd := &w.Deliveries[i], &g.Deliveries[i]
			if !sameTime(wd.FirstAttemptAt, gd.FirstAttemptAt) || !sameTime(wd.NextAttemptAt, gd.NextAttemptAt) {
				diffs = append(diffs, fmt.Sprintf("Deliveries[%d] times: want %+v, got %+v", i, *wd, *gd))
			}
			wd.FirstAttemptAt, wd.NextAttemptAt, gd.FirstAttemptAt, gd.NextAttemptAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		}
	}
	for _, tk := range []*async.Task{w, g} {
		if len(tk.Payload) == 0 {
			tk.Payload = nil
		}
		if len(tk.Output) == 0 {
			tk.Output = nil
		}
		if len(tk.Deliveries) == 0 {
			tk.Deliveries = nil
		}
	}
	if !reflect.DeepEqual(w, g) {
		diffs = append(diffs, fmt.Sprintf("want %+v\n got %+v", *w, *g))
	}
	if len(diffs) > 0 {
		t.Fatalf("%s:\n%s", what, strings.Join(diffs, "\n"))
	}
}

// idsOf returns the ids of tasks, in order.
func idsOf(tasks []*async.Task) []string {
	ids := make([]string, 0, len(tasks))
	for _, task := range tasks {
		ids = append(ids, task.ID)
	}
	return ids
}
