package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

func TestRoundTripSurvivesReopen(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()

	in := newTask(b, "t1", "acme", "echo")
	in.IdempotencyKey = "k1"
	got := mustEnqueue(t, q, in)
	if got.Status != async.StatusQueued || !got.UpdatedAt.Equal(b.clock.Now()) {
		t.Fatalf("enqueued task = %+v", got)
	}
	if in.Status != "" {
		t.Fatalf("Enqueue modified its argument: status %q", in.Status)
	}
	got.Payload[0] = 'X' // must not alias the stored copy
	if g := mustGet(t, q, "acme", "t1"); string(g.Payload) != `{"n":1}` {
		t.Fatalf("payload = %q", g.Payload)
	}

	leased := mustLease(t, q)
	if leased.ID != "t1" || leased.Status != async.StatusRunning || leased.Lease != 1 ||
		!leased.LeaseExpiresAt.Equal(b.clock.Now().Add(time.Minute)) {
		t.Fatalf("leased = %+v", leased)
	}
	if s := q.Stats(); len(s) != 1 || s[0].Running != 1 || s[0].Queued != 0 {
		t.Fatalf("Stats = %+v", s)
	}
	b.clock.Advance(time.Second)
	stored, err := q.Complete(ctx, "t1", 1, async.Completion{Status: async.StatusSucceeded, Output: []byte("ok"), OutputType: "text/plain", Attempted: true})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	// Complete returns the task as stored: what a Get reads back.
	if got := mustGet(t, q, "acme", "t1"); !reflect.DeepEqual(stored, got) {
		t.Fatalf("Complete returned %+v, Get reads %+v", stored, got)
	}
	if s := q.Stats(); len(s) != 0 {
		t.Fatalf("Stats after complete = %+v", s)
	}

	q = reopen(t, q, b)
	g := mustGet(t, q, "acme", "t1")
	if g.Status != async.StatusSucceeded || g.Attempts != 1 || string(g.Output) != "ok" ||
		g.OutputType != "text/plain" || !g.FinishedAt.Equal(b.clock.Now()) || g.Recoveries != 0 {
		t.Fatalf("after reopen = %+v", g)
	}
	again, created, err := q.Enqueue(ctx, in, 0)
	if err != nil || created || again.ID != "t1" {
		t.Fatalf("idempotent enqueue after reopen = %v, %v, %v", again, created, err)
	}
	if task, next, err := q.Lease(ctx, async.LeaseRequest{TTL: time.Minute}); task != nil || !next.IsZero() || err != nil {
		t.Fatalf("Lease on empty queue = %v, %v, %v", task, next, err)
	}
}

func TestKillNineRequeuesWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	mustEnqueue(t, q, newTask(b, "t1", "acme", "echo"))
	mustLease(t, q)

	q = reopen(t, q, b) // the process holding the lease is gone
	g := mustGet(t, q, "acme", "t1")
	if g.Status != async.StatusQueued || g.Recoveries != 1 || g.Attempts != 0 || g.Lease != 1 {
		t.Fatalf("after restart = %+v", g)
	}
	select {
	case <-q.Ready():
	default:
		t.Fatal("Ready not signalled after recovery")
	}
	if _, err := q.Complete(ctx, "t1", 1, async.Completion{Status: async.StatusSucceeded}); !errors.Is(err, async.ErrLeaseLost) {
		t.Fatalf("Complete with the dead process's token: %v", err)
	}

	l := mustLease(t, q)
	if l.Lease != 2 {
		t.Fatalf("token after recovery = %d, want 2", l.Lease)
	}
	at := b.clock.Now().Add(time.Hour)
	if err := q.Retry(ctx, "t1", 2, at, &async.TaskError{Code: "http_503", Message: "busy"}); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	q = reopen(t, q, b)
	g = mustGet(t, q, "acme", "t1")
	if g.Status != async.StatusQueued || g.Attempts != 1 || g.Recoveries != 1 || !g.ReadyAt.Equal(at) ||
		g.LastError == nil || g.LastError.Code != "http_503" {
		t.Fatalf("after retry and restart = %+v", g)
	}
}

func TestFencing(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	mustEnqueue(t, q, newTask(b, "t1", "acme", "echo"))
	first, _, err := q.Lease(ctx, async.LeaseRequest{TTL: time.Second})
	if err != nil || first == nil || first.Lease != 1 {
		t.Fatalf("first lease = %v, %v", first, err)
	}
	if n, err := q.reapExpired(); n != 0 || err != nil {
		t.Fatalf("reap before expiry = %d, %v", n, err)
	}
	b.clock.Advance(2 * time.Second)
	if n, err := q.reapExpired(); n != 1 || err != nil {
		t.Fatalf("reap = %d, %v", n, err)
	}
	if n, err := q.reapExpired(); n != 0 || err != nil {
		t.Fatalf("second reap = %d, %v", n, err)
	}
	g := mustGet(t, q, "acme", "t1")
	if g.Status != async.StatusQueued || g.Recoveries != 1 || g.Attempts != 0 {
		t.Fatalf("after reap = %+v", g)
	}
	second := mustLease(t, q)
	if second.Lease != 2 {
		t.Fatalf("second token = %d", second.Lease)
	}
	before := mustGet(t, q, "acme", "t1")
	for _, call := range []func() error{
		func() error {
			_, err := q.Complete(ctx, "t1", 1, async.Completion{Status: async.StatusSucceeded, Attempted: true})
			return err
		},
		func() error { return q.Retry(ctx, "t1", 1, b.clock.Now(), nil) },
		func() error { return q.Release(ctx, "t1", 1) },
	} {
		wantErr(t, call(), async.ErrLeaseLost)
	}
	if after := mustGet(t, q, "acme", "t1"); after.Status != async.StatusRunning || !after.UpdatedAt.Equal(before.UpdatedAt) || after.Attempts != 0 {
		t.Fatalf("stale completion changed the task: %+v", after)
	}
	if _, err := q.Complete(ctx, "t1", 2, async.Completion{Status: async.StatusSucceeded, Attempted: true}); err != nil {
		t.Fatalf("Complete with current token: %v", err)
	}
	// The completion starts from the second lease's record (kept in
	// memory), which carries the recovery.
	if g := mustGet(t, q, "acme", "t1"); g.Status != async.StatusSucceeded || g.Recoveries != 1 || g.Attempts != 1 || g.Lease != 2 {
		t.Fatalf("after completion = %+v", g)
	}
	_, err = q.Complete(ctx, "t1", 2, async.Completion{Status: async.StatusSucceeded})
	wantErr(t, err, async.ErrLeaseLost)
}

func TestConcurrentReapersRequeueOnce(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	for i := range 50 {
		mustEnqueue(t, q, newTask(b, seqID("t", i), "acme", "echo"))
		mustLease(t, q)
	}
	b.clock.Advance(2 * time.Minute)
	var wg sync.WaitGroup
	counts := make(chan int, 4)
	for range 4 {
		wg.Go(func() {
			n, _ := q.reapExpired()
			counts <- n
		})
	}
	wg.Wait()
	close(counts)
	total := 0
	for n := range counts {
		total += n
	}
	if total != 50 {
		t.Fatalf("requeued %d times, want 50", total)
	}
	for i := range 50 {
		if g := mustGet(t, q, "acme", seqID("t", i)); g.Recoveries != 1 {
			t.Fatalf("task %d recoveries = %d", i, g.Recoveries)
		}
	}
}

func TestReleaseAndRetryReady(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	mustEnqueue(t, q, newTask(b, "t1", "acme", "echo"))
	<-q.Ready()
	l := mustLease(t, q)
	if err := q.Release(ctx, "t1", l.Lease); err != nil {
		t.Fatalf("Release: %v", err)
	}
	select {
	case <-q.Ready():
	default:
		t.Fatal("Ready not signalled on Release")
	}
	g := mustGet(t, q, "acme", "t1")
	if g.Status != async.StatusQueued || g.Attempts != 0 || g.Recoveries != 0 {
		t.Fatalf("after release = %+v", g)
	}
	l = mustLease(t, q)
	if err := q.Retry(ctx, "t1", l.Lease, b.clock.Now(), &async.TaskError{Code: "timeout"}); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	select {
	case <-q.Ready():
	default:
		t.Fatal("Ready not signalled on Retry due now")
	}
}

func TestEnqueueValidation(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
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
			task := newTask(b, "x", "acme", "echo")
			tc.mutate(task)
			_, _, err := q.Enqueue(ctx, task, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %s", err, tc.want)
			}
		})
	}
	mustEnqueue(t, q, newTask(b, "dup", "acme", "echo"))
	_, _, err := q.Enqueue(ctx, newTask(b, "dup", "acme", "echo"), 0)
	wantErr(t, err, async.ErrConflict)
}

func TestClosed(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, _, err := q.Enqueue(ctx, newTask(b, "t1", "acme", "echo"), 0)
	wantErr(t, err, async.ErrUnavailable)
	_, _, err = q.Lease(ctx, async.LeaseRequest{TTL: time.Second})
	wantErr(t, err, async.ErrUnavailable)
	_, err = q.Get(ctx, "acme", "t1")
	wantErr(t, err, async.ErrUnavailable)
	_, err = q.Complete(ctx, "t1", 1, async.Completion{Status: async.StatusSucceeded})
	wantErr(t, err, async.ErrUnavailable)
	_, _, err = q.List(ctx, async.ListOptions{Tenant: "acme"})
	wantErr(t, err, async.ErrUnavailable)
	_, err = q.PendingDeliveries(ctx)
	wantErr(t, err, async.ErrUnavailable)
	if err := q.Run(ctx); err != nil {
		t.Fatalf("Run after Close = %v", err)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	q, b := setup(t)
	ctx := context.Background()
	mustEnqueue(t, q, newTask(b, "run", "acme", "echo"))
	mustLease(t, q)
	delayed := newTask(b, "delayed", "acme", "echo")
	delayed.ReadyAt = b.clock.Now().Add(time.Hour)
	mustEnqueue(t, q, delayed)

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
			got, err := q.Cancel(ctx, tc.tenant, tc.id)
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
	if g := mustGet(t, q, "acme", "delayed"); g.FinishedAt.IsZero() {
		t.Fatalf("cancelled task has no FinishedAt: %+v", g)
	}
	if _, next, _ := q.Lease(ctx, async.LeaseRequest{TTL: time.Minute}); !next.IsZero() {
		t.Fatalf("cancelled task still scheduled (next %v)", next)
	}
	if _, err := q.Get(ctx, "other", "run"); !errors.Is(err, async.ErrNotFound) {
		t.Fatalf("Get other tenant: %v", err)
	}
}

// TestCrashWithoutClose runs a child process that enqueues and leases tasks
// and exits without closing the queue (as kill -9 would leave it): after
// Open, every task is queued, the leased ones with Recoveries 1, and no
// attempt is spent.
func TestCrashWithoutClose(t *testing.T) {
	if dir := os.Getenv("EMBEDDED_CRASH_DIR"); dir != "" {
		crashChild(dir)
		return
	}
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWithoutClose$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EMBEDDED_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	q := open(t, &testBundle{dir: dir, opts: Options{Logger: quietLogger}})
	ctx := context.Background()
	tasks, _, err := q.List(ctx, async.ListOptions{Tenant: "acme"})
	if err != nil || len(tasks) != 11 {
		t.Fatalf("List = %d tasks, %v", len(tasks), err)
	}
	recovered := 0
	for _, task := range tasks {
		if task.Status != async.StatusQueued || task.Attempts != 0 {
			t.Fatalf("after crash: %+v", task)
		}
		recovered += task.Recoveries
	}
	if recovered != 5 {
		t.Fatalf("recoveries = %d, want 5", recovered)
	}
	if s := q.Stats(); len(s) != 1 || s[0].Queued != 11 || s[0].Running != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

func crashChild(dir string) {
	q, err := Open(dir, Options{Logger: quietLogger})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	now := time.Now()
	enqueue := func(id string) {
		task := &async.Task{ID: id, Tenant: "acme", Function: "echo", CreatedAt: now, ReadyAt: now}
		if _, _, err := q.Enqueue(ctx, task, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for i := range 10 {
		enqueue(seqID("t", i))
	}
	for range 5 {
		if task, _, err := q.Lease(ctx, async.LeaseRequest{TTL: time.Hour}); task == nil || err != nil {
			fmt.Fprintln(os.Stderr, "lease:", err)
			os.Exit(1)
		}
	}
	// A synced write makes the WAL durable up to here, the NoSync leases
	// included; then die without Close.
	enqueue("last")
	os.Exit(3)
}
