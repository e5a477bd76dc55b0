package queuetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// roundTripSurvivesRestart: a task enqueued, leased and completed reads
// back the same after a restart; Enqueue and Get never alias the stored
// copy; Complete returns what Get reads; the idempotency key outlives the
// restart.
func roundTripSurvivesRestart(t *testing.T, e *env) {
	ctx := context.Background()
	in := e.task("t1", "acme", "echo")
	in.IdempotencyKey = "k1"
	got := mustEnqueue(t, e.q, in)
	if got.Status != async.StatusQueued || !sameTime(got.UpdatedAt, e.clock.Now()) {
		t.Fatalf("enqueued task = %+v", got)
	}
	if in.Status != "" {
		t.Fatalf("Enqueue modified its argument: status %q", in.Status)
	}
	got.Payload[0] = 'X' // must not alias the stored copy
	if g := mustGet(t, e.q, "acme", "t1"); string(g.Payload) != `{"n":1}` {
		t.Fatalf("payload = %q", g.Payload)
	}

	leased := e.mustLease(t, e.q)
	if leased.ID != "t1" || leased.Status != async.StatusRunning || leased.Lease != 1 ||
		!sameTime(leased.LeaseExpiresAt, e.clock.Now().Add(leaseTTL)) {
		t.Fatalf("leased = %+v", leased)
	}
	if s := e.stats(t); len(s) != 1 || s[0].Running != 1 || s[0].Queued != 0 {
		t.Fatalf("Stats = %+v", s)
	}
	e.clock.Advance(1234 * time.Millisecond) // FinishedAt shows a store that keeps whole seconds
	stored, err := e.q.Complete(ctx, "t1", 1, async.Completion{Status: async.StatusSucceeded, Output: []byte("ok"), OutputType: "text/plain", Attempted: true})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	// Complete returns the task as stored: what a Get reads back.
	wantSameTask(t, "Complete's task against Get's", stored, mustGet(t, e.q, "acme", "t1"))
	if s := e.stats(t); len(s) != 0 {
		t.Fatalf("Stats after complete = %+v", s)
	}

	e.reopen(t)
	g := mustGet(t, e.q, "acme", "t1")
	if g.Status != async.StatusSucceeded || g.Attempts != 1 || string(g.Output) != "ok" ||
		g.OutputType != "text/plain" || !sameTime(g.FinishedAt, e.clock.Now()) || g.Recoveries != 0 {
		t.Fatalf("after restart = %+v", g)
	}
	again, created, err := e.q.Enqueue(ctx, in, 0)
	if err != nil || created || again.ID != "t1" {
		t.Fatalf("idempotent enqueue after restart = %v, %v, %v", again, created, err)
	}
	if task, next, err := e.lease(e.q, async.LeaseRequest{TTL: time.Minute}); task != nil || !next.IsZero() || err != nil {
		t.Fatalf("Lease on empty queue = %v, %v, %v", task, next, err)
	}
}

// crashRequeues: a task leased by a process that died is queued again
// once its lease is up (at the restart, or by upkeep after the lease
// expired) without spending an attempt, and Ready says so; the dead
// process's token is fenced off; a retry survives a restart.
func crashRequeues(t *testing.T, e *env) {
	ctx := context.Background()
	mustEnqueue(t, e.q, e.task("t1", "acme", "echo"))
	e.mustLease(t, e.q)

	e.reopen(t) // the process holding the lease is gone
	e.clock.Advance(leaseTTL + time.Second)
	e.upkeep(t, e.q)
	g := mustGet(t, e.q, "acme", "t1")
	if g.Status != async.StatusQueued || g.Recoveries != 1 || g.Attempts != 0 || g.Lease != 1 {
		t.Fatalf("after restart = %+v", g)
	}
	waitReady(t, e.q, "recovery")
	_, err := e.q.Complete(ctx, "t1", 1, async.Completion{Status: async.StatusSucceeded})
	wantErr(t, err, async.ErrLeaseLost)

	l := e.mustLease(t, e.q)
	if l.Lease != 2 {
		t.Fatalf("token after recovery = %d, want 2", l.Lease)
	}
	at := e.clock.Now().Add(time.Hour)
	if err := e.q.Retry(ctx, "t1", 2, at, &async.TaskError{Code: "http_503", Message: "busy"}); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	e.reopen(t)
	g = mustGet(t, e.q, "acme", "t1")
	if g.Status != async.StatusQueued || g.Attempts != 1 || g.Recoveries != 1 || !sameTime(g.ReadyAt, at) ||
		g.LastError == nil || g.LastError.Code != "http_503" {
		t.Fatalf("after retry and restart = %+v", g)
	}
}

// fencing: upkeep requeues an expired lease once, and only after it
// expired; completions with the old token then get ErrLeaseLost and
// change nothing; a finished task refuses its own token too.
func fencing(t *testing.T, e *env) {
	ctx := context.Background()
	mustEnqueue(t, e.q, e.task("t1", "acme", "echo"))
	first, _, err := e.lease(e.q, async.LeaseRequest{TTL: time.Second})
	if err != nil || first == nil || first.Lease != 1 {
		t.Fatalf("first lease = %v, %v", first, err)
	}
	e.upkeep(t, e.q)
	if g := mustGet(t, e.q, "acme", "t1"); g.Status != async.StatusRunning || g.Lease != 1 || g.Recoveries != 0 {
		t.Fatalf("requeued before expiry: %+v", g)
	}
	e.clock.Advance(2 * time.Second)
	e.upkeep(t, e.q)
	g := mustGet(t, e.q, "acme", "t1")
	if g.Status != async.StatusQueued || g.Recoveries != 1 || g.Attempts != 0 {
		t.Fatalf("after upkeep = %+v", g)
	}
	e.upkeep(t, e.q)
	if g := mustGet(t, e.q, "acme", "t1"); g.Recoveries != 1 {
		t.Fatalf("second upkeep requeued again: %+v", g)
	}
	second := e.mustLease(t, e.q)
	if second.Lease != 2 {
		t.Fatalf("second token = %d", second.Lease)
	}
	before := mustGet(t, e.q, "acme", "t1")
	e.clock.Advance(time.Second) // a stale write would show in UpdatedAt
	for _, call := range []func() error{
		func() error {
			_, err := e.q.Complete(ctx, "t1", 1, async.Completion{Status: async.StatusSucceeded, Attempted: true})
			return err
		},
		func() error { return e.q.Retry(ctx, "t1", 1, e.clock.Now(), nil) },
		func() error { return e.q.Release(ctx, "t1", 1) },
	} {
		wantErr(t, call(), async.ErrLeaseLost)
	}
	if after := mustGet(t, e.q, "acme", "t1"); after.Status != async.StatusRunning || !sameTime(after.UpdatedAt, before.UpdatedAt) ||
		after.Attempts != 0 || after.Lease != 2 {
		t.Fatalf("stale completion changed the task: %+v", after)
	}
	if _, err := e.q.Complete(ctx, "t1", 2, async.Completion{Status: async.StatusSucceeded, Attempted: true}); err != nil {
		t.Fatalf("Complete with current token: %v", err)
	}
	// The completion starts from the second lease's record, which carries
	// the recovery.
	if g := mustGet(t, e.q, "acme", "t1"); g.Status != async.StatusSucceeded || g.Recoveries != 1 || g.Attempts != 1 || g.Lease != 2 {
		t.Fatalf("after completion = %+v", g)
	}
	_, err = e.q.Complete(ctx, "t1", 2, async.Completion{Status: async.StatusSucceeded})
	wantErr(t, err, async.ErrLeaseLost)
}

// concurrentUpkeep: upkeep passes racing (on two nodes when there are)
// requeue each expired lease once.
func concurrentUpkeep(t *testing.T, e *env) {
	const n, passes = 50, 4
	for i := range n {
		mustEnqueue(t, e.q, e.task(seqID("t", i), "acme", "echo"))
		e.mustLease(t, e.q)
	}
	nodes := []async.Queue{e.q}
	if e.h.Second != nil {
		nodes = append(nodes, e.second(t))
	}
	e.clock.Advance(2 * leaseTTL)
	var wg sync.WaitGroup
	for i := range passes {
		wg.Go(func() { e.h.Upkeep(t, nodes[i%len(nodes)]) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := range n {
		if g := mustGet(t, e.q, "acme", seqID("t", i)); g.Status != async.StatusQueued || g.Recoveries != 1 {
			t.Fatalf("task %d after racing upkeeps: status %s, recoveries %d", i, g.Status, g.Recoveries)
		}
	}
}

// releaseAndRetryReady: Ready is signalled on enqueue, on release and on a
// retry due now; a release spends no attempt.
func releaseAndRetryReady(t *testing.T, e *env) {
	ctx := context.Background()
	mustEnqueue(t, e.q, e.task("t1", "acme", "echo"))
	waitReady(t, e.q, "Enqueue")
	l := e.mustLease(t, e.q)
	if err := e.q.Release(ctx, "t1", l.Lease); err != nil {
		t.Fatalf("Release: %v", err)
	}
	waitReady(t, e.q, "Release")
	g := mustGet(t, e.q, "acme", "t1")
	if g.Status != async.StatusQueued || g.Attempts != 0 || g.Recoveries != 0 {
		t.Fatalf("after release = %+v", g)
	}
	l = e.mustLease(t, e.q)
	if err := e.q.Retry(ctx, "t1", l.Lease, e.clock.Now(), &async.TaskError{Code: "timeout"}); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	waitReady(t, e.q, "Retry due now")
	if g := mustGet(t, e.q, "acme", "t1"); g.Status != async.StatusQueued || g.Attempts != 1 || g.LastError == nil || g.LastError.Code != "timeout" {
		t.Fatalf("after retry = %+v", g)
	}
	// A retry due later is signalled too: an idle caller, with no time to
	// wait for, learns it from the Lease the signal prompts.
	l = e.mustLease(t, e.q)
	drainReady(e.q)
	if err := e.q.Retry(ctx, "t1", l.Lease, e.clock.Now().Add(time.Minute), &async.TaskError{Code: "timeout"}); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	waitReady(t, e.q, "Retry due later")
	if _, next, err := e.lease(e.q, async.LeaseRequest{TTL: leaseTTL}); err != nil || next.IsZero() {
		t.Fatalf("Lease after a later retry: next %v, err %v; want the retry's time", next, err)
	}
}

// enqueueValidation: Enqueue names the missing field, and refuses an id
// the tenant already used with ErrConflict.
func enqueueValidation(t *testing.T, e *env) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(*async.Task)
		want   string
	}{
		{"NoID", func(t *async.Task) { t.ID = "" }, "ID"},
		{"NoTenant", func(t *async.Task) { t.Tenant = "" }, "Tenant"},
		{"NoFunction", func(t *async.Task) { t.Function = "" }, "Function"},
		{"NoCreatedAt", func(t *async.Task) { t.CreatedAt = time.Time{} }, "CreatedAt"},
		{"NoReadyAt", func(t *async.Task) { t.ReadyAt = time.Time{} }, "ReadyAt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := e.task("x", "acme", "echo")
			tc.mutate(task)
			_, _, err := e.q.Enqueue(ctx, task, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %s", err, tc.want)
			}
		})
	}
	mustEnqueue(t, e.q, e.task("dup", "acme", "echo"))
	_, _, err := e.q.Enqueue(ctx, e.task("dup", "acme", "echo"), 0)
	wantErr(t, err, async.ErrConflict)
}

// closed: Close is idempotent, and a closed store answers ErrUnavailable.
func closed(t *testing.T, e *env) {
	ctx := context.Background()
	if err := e.q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, _, err := e.q.Enqueue(ctx, e.task("t1", "acme", "echo"), 0)
	wantErr(t, err, async.ErrUnavailable)
	_, _, err = e.lease(e.q, async.LeaseRequest{TTL: time.Second})
	wantErr(t, err, async.ErrUnavailable)
	_, err = e.q.Get(ctx, "acme", "t1")
	wantErr(t, err, async.ErrUnavailable)
	_, err = e.q.Complete(ctx, "t1", 1, async.Completion{Status: async.StatusSucceeded})
	wantErr(t, err, async.ErrUnavailable)
	_, _, err = e.q.List(ctx, async.ListOptions{Tenant: "acme"})
	wantErr(t, err, async.ErrUnavailable)
	_, err = e.q.PendingDeliveries(ctx)
	wantErr(t, err, async.ErrUnavailable)
}

// cancel: a queued task (delayed too) is cancelled and leaves the
// schedule; a running or finished one is refused with ErrConflict and the
// task; another tenant's task is not found.
func cancel(t *testing.T, e *env) {
	ctx := context.Background()
	mustEnqueue(t, e.q, e.task("run", "acme", "echo"))
	e.mustLease(t, e.q)
	delayed := e.task("delayed", "acme", "echo")
	delayed.ReadyAt = e.clock.Now().Add(time.Hour)
	mustEnqueue(t, e.q, delayed)

	for _, tc := range []struct {
		name, tenant, id string
		want             error
		status           async.Status
	}{
		{"Queued", "acme", "delayed", nil, async.StatusCancelled},
		{"AlreadyCancelled", "acme", "delayed", async.ErrConflict, async.StatusCancelled},
		{"Running", "acme", "run", async.ErrConflict, async.StatusRunning},
		{"OtherTenant", "other", "run", async.ErrNotFound, ""},
		{"Missing", "acme", "nope", async.ErrNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.q.Cancel(ctx, tc.tenant, tc.id)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.status == "" {
				if got != nil {
					t.Fatalf("got a task for %s", tc.name)
				}
				return
			}
			if got == nil || got.Status != tc.status {
				t.Fatalf("task = %+v, want status %s", got, tc.status)
			}
		})
	}
	if g := mustGet(t, e.q, "acme", "delayed"); g.Status != async.StatusCancelled || g.FinishedAt.IsZero() {
		t.Fatalf("cancelled task = %+v, want FinishedAt set", g)
	}
	if task, next, _ := e.lease(e.q, async.LeaseRequest{TTL: time.Minute}); task != nil || !next.IsZero() {
		t.Fatalf("cancelled task still scheduled (leased %v, next %v)", task, next)
	}
	if s := e.stats(t); len(s) != 1 || s[0] != (async.LaneStats{Lane: wire.Lane{Tenant: "acme", Function: "echo"}, Running: 1}) {
		t.Fatalf("Stats = %+v, want only the running task", s)
	}
	wantGone(t, e.q, "other", "run")
}

// extendLease, for a store that renews leases (async.Extender): a renewed
// lease outlives its first expiry, and upkeep leaves it running; a lease
// that expired and was requeued cannot be renewed (ErrLeaseLost), nor can
// a token never issued.
func extendLease(t *testing.T, e *env) {
	ext, ok := e.q.(async.Extender)
	if !ok {
		t.Skip("the store does not renew leases (async.Extender)")
	}
	ctx := context.Background()
	const ttl = 10 * time.Second
	mustEnqueue(t, e.q, e.task("t1", "acme", "echo"))
	l, _, err := e.lease(e.q, async.LeaseRequest{TTL: ttl})
	if err != nil || l == nil {
		t.Fatalf("Lease = %v, %v", l, err)
	}
	e.clock.Advance(ttl - 2*time.Second)
	if err := ext.Extend(ctx, l.ID, l.Lease, ttl); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	e.clock.Advance(5 * time.Second) // past the first expiry, before the renewed one
	e.upkeep(t, e.q)
	if g := mustGet(t, e.q, "acme", "t1"); g.Status != async.StatusRunning || g.Lease != l.Lease || g.Recoveries != 0 {
		t.Fatalf("renewed lease after its first expiry: %+v", g)
	}
	wantErr(t, ext.Extend(ctx, l.ID, l.Lease+1, ttl), async.ErrLeaseLost)
	if done := mustComplete(t, e.q, l, async.Completion{Status: async.StatusSucceeded, Attempted: true}); done.Attempts != 1 || done.Recoveries != 0 {
		t.Fatalf("completed after renewal: %+v", done)
	}

	mustEnqueue(t, e.q, e.task("t2", "acme", "echo"))
	l, _, err = e.lease(e.q, async.LeaseRequest{TTL: ttl})
	if err != nil || l == nil {
		t.Fatalf("Lease = %v, %v", l, err)
	}
	e.clock.Advance(ttl + time.Second)
	e.upkeep(t, e.q)
	if g := mustGet(t, e.q, "acme", "t2"); g.Status != async.StatusQueued || g.Recoveries != 1 {
		t.Fatalf("expired lease after upkeep: %+v", g)
	}
	wantErr(t, ext.Extend(ctx, l.ID, l.Lease, ttl), async.ErrLeaseLost)
}
