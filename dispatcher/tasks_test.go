package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// bundle is a running TaskRunner on a real embedded queue.
type bundle struct {
	q    *embedded.Queue
	stop func() // stops the runner and the outbox and waits for them
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func fastRetry(attempts int) dispatcher.RetryPolicy {
	return dispatcher.RetryPolicy{MaxAttempts: attempts, InitialInterval: 10 * time.Millisecond,
		MaxInterval: 50 * time.Millisecond, Multiplier: 2, MaxAge: time.Hour}
}

func setup(t *testing.T, cfg dispatcher.Config, rc dispatcher.TaskRunnerConfig) *bundle {
	t.Helper()
	q, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = quiet
	if cfg.MaxHops == 0 {
		cfg.MaxHops = 16
	}
	d, err := dispatcher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ob := dispatcher.NewOutbox(d, q)
	r := dispatcher.NewTaskRunner(d, q, ob, rc)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = q.Run(ctx) })
	wg.Go(func() { _ = ob.Run(ctx, 4) })
	wg.Go(func() { _ = r.Run(ctx) })
	var once sync.Once
	b := &bundle{q: q, stop: func() { once.Do(func() { cancel(); wg.Wait() }) }}
	t.Cleanup(func() { b.stop(); _ = q.Close() })
	return b
}

var seq atomic.Int64

func (b *bundle) submit(t *testing.T, tenant, fn string, hops int, payload string) string {
	t.Helper()
	now := time.Now()
	id := fmt.Sprintf("task-%d", seq.Add(1))
	_, _, err := b.q.Enqueue(context.Background(), &async.Task{
		ID: id, Tenant: tenant, Function: fn, Payload: []byte(payload), Hops: hops,
		CreatedAt: now, UpdatedAt: now, ReadyAt: now,
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitFinal polls until the task is final.
func (b *bundle) waitFinal(t *testing.T, tenant, id string) *async.Task {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		got, err := b.q.Get(context.Background(), tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Final() {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("task %s not final within 30s", id)
	return nil
}

// recordingSink counts outcomes per task id.
type recordingSink struct {
	mu  sync.Mutex
	got map[string][]*wire.Outcome
}

func (s *recordingSink) Deliver(_ context.Context, o *wire.Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[string][]*wire.Outcome{}
	}
	s.got[o.ID] = append(s.got[o.ID], o)
	return nil
}

func (s *recordingSink) waitFor(t *testing.T, id string) []*wire.Outcome {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		got := s.got[id]
		s.mu.Unlock()
		if len(got) > 0 {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no outcome delivered for %s", id)
	return nil
}

func lane(tenant, fn string) wire.Lane { return wire.Lane{Tenant: tenant, Function: fn} }

func TestRetriesAndOutcomes(t *testing.T) {
	var calls sync.Map // payload → *atomic.Int32
	count := func(inv *dispatcher.Invocation) int32 {
		v, _ := calls.LoadOrStore(string(inv.Payload), new(atomic.Int32))
		return v.(*atomic.Int32).Add(1)
	}
	backendFn := dispatcher.BackendFunc(func(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		n := count(inv)
		switch string(inv.Payload) {
		case "flaky":
			if n <= 2 {
				return nil, dispatcher.Retryable("http_503", errors.New("unavailable"), 0)
			}
		case "bad":
			return nil, dispatcher.Permanent("http_400", errors.New("bad request"))
		case "down":
			return nil, dispatcher.Retryable("http_503", errors.New("unavailable"), 0)
		}
		return &dispatcher.Result{Output: inv.Payload}, nil
	})
	onFailure := &recordingSink{}
	onSuccess := &recordingSink{}
	b := setup(t, dispatcher.Config{Functions: []*dispatcher.Function{{
		Lane: lane("t", "f"), Backend: backendFn, Timeout: time.Second, Retry: fastRetry(3),
		OnSuccess: []dispatcher.Destination{{Name: "on_success[0]", Kind: "test", Sink: onSuccess, Retry: fastRetry(3), Timeout: time.Second}},
		OnFailure: []dispatcher.Destination{{Name: "on_failure[0]", Kind: "test", Sink: onFailure, Retry: fastRetry(3), Timeout: time.Second}},
	}}}, dispatcher.TaskRunnerConfig{Workers: 4})

	tests := []struct {
		payload  string
		hops     int
		status   async.Status
		attempts int
		code     string
		calls    int32
	}{
		{"flaky", 0, async.StatusSucceeded, 3, "", 3},
		{"bad", 0, async.StatusFailed, 1, wire.CodeRejected, 1},
		{"down", 0, async.StatusFailed, 3, wire.CodeRetriesExhausted, 3},
		{"loop", 16, async.StatusFailed, 0, wire.CodeLoopDetected, 0},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			id := b.submit(t, "t", "f", tt.hops, tt.payload)
			got := b.waitFinal(t, "t", id)
			if got.Status != tt.status || got.Attempts != tt.attempts {
				t.Fatalf("status %s attempts %d, want %s attempts %d", got.Status, got.Attempts, tt.status, tt.attempts)
			}
			if tt.code != "" && (got.Error == nil || got.Error.Code != tt.code) {
				t.Fatalf("error %+v, want code %s", got.Error, tt.code)
			}
			n := int32(0)
			if v, ok := calls.Load(tt.payload); ok {
				n = v.(*atomic.Int32).Load()
			}
			if n != tt.calls {
				t.Fatalf("backend called %d times, want %d", n, tt.calls)
			}
			sink := onSuccess
			if tt.status == async.StatusFailed {
				sink = onFailure
			}
			outs := sink.waitFor(t, id)
			if len(outs) != 1 || outs[0].Attempts != tt.attempts || outs[0].Hops != tt.hops+1 {
				t.Fatalf("outcomes %+v, want one with attempts %d hops %d", outs, tt.attempts, tt.hops+1)
			}
		})
	}
}

func TestFairnessAcrossTenants(t *testing.T) {
	const bigN, smallN = 10000, 10
	var doneA, doneB atomic.Int64
	var aDoneWhenBFinished atomic.Int64
	release := make(chan struct{})
	slow := dispatcher.BackendFunc(func(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		<-release // hold every worker until all tasks are queued
		time.Sleep(200 * time.Microsecond)
		if inv.Tenant == "a" {
			doneA.Add(1)
		} else if doneB.Add(1) == smallN {
			aDoneWhenBFinished.Store(doneA.Load())
		}
		return &dispatcher.Result{}, nil
	})
	b := setup(t, dispatcher.Config{Functions: []*dispatcher.Function{
		{Lane: lane("a", "f"), Backend: slow, Retry: fastRetry(1), MaxConcurrency: 100},
		{Lane: lane("b", "f"), Backend: slow, Retry: fastRetry(1), MaxConcurrency: 100},
	}}, dispatcher.TaskRunnerConfig{Workers: 4})

	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < bigN; i += 16 {
				b.submit(t, "a", "f", 0, "x")
			}
		})
	}
	wg.Wait()
	var lastB string
	for range smallN {
		lastB = b.submit(t, "b", "f", 0, "x")
	}
	close(release)
	b.waitFinal(t, "b", lastB)
	deadline := time.Now().Add(10 * time.Second)
	for doneB.Load() < smallN && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if doneB.Load() != smallN {
		t.Fatalf("tenant b finished %d of %d", doneB.Load(), smallN)
	}
	aDone := aDoneWhenBFinished.Load()
	t.Logf("tenant a had finished %d of %d tasks when tenant b finished its %d", aDone, bigN, smallN)
	if aDone >= bigN/5 {
		t.Fatalf("tenant a finished %d tasks (>= 20%%) before tenant b's %d finished", aDone, smallN)
	}
}

func TestConcurrencyLimitsNeverExceeded(t *testing.T) {
	var mu sync.Mutex
	cur := map[string]int{}
	peak := map[string]int{}
	track := func(key string, delta int) {
		cur[key] += delta
		peak[key] = max(peak[key], cur[key])
	}
	backendFn := dispatcher.BackendFunc(func(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		mu.Lock()
		track(inv.Function, 1)
		track("tenant", 1)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // the work: keeps invocations overlapping
		mu.Lock()
		track(inv.Function, -1)
		track("tenant", -1)
		mu.Unlock()
		return &dispatcher.Result{}, nil
	})
	b := setup(t, dispatcher.Config{
		TenantConcurrency: map[string]int{"t": 5},
		Functions: []*dispatcher.Function{
			{Lane: lane("t", "f1"), Backend: backendFn, Retry: fastRetry(1), MaxConcurrency: 3},
			{Lane: lane("t", "f2"), Backend: backendFn, Retry: fastRetry(1), MaxConcurrency: 3},
		},
	}, dispatcher.TaskRunnerConfig{Workers: 64})
	var ids []string
	for i := range 100 {
		ids = append(ids, b.submit(t, "t", []string{"f1", "f2"}[i%2], 0, "x"))
	}
	for _, id := range ids {
		b.waitFinal(t, "t", id)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("peaks: %v", peak)
	if peak["f1"] > 3 || peak["f2"] > 3 || peak["tenant"] > 5 {
		t.Fatalf("limits exceeded: peaks %v, want f1,f2 <= 3 and tenant <= 5", peak)
	}
	if peak["tenant"] < 2 {
		t.Fatalf("tenant peak %d: the test did not run tasks concurrently", peak["tenant"])
	}
}

func TestShutdownReleasesWithoutSpendingAttempts(t *testing.T) {
	started := make(chan struct{}, 1)
	hang := dispatcher.BackendFunc(func(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	b := setup(t, dispatcher.Config{Functions: []*dispatcher.Function{
		{Lane: lane("t", "f"), Backend: hang, Retry: fastRetry(1)},
	}}, dispatcher.TaskRunnerConfig{Workers: 1, DrainTimeout: 50 * time.Millisecond})
	id := b.submit(t, "t", "f", 0, "x")
	<-started
	b.stop()
	got, err := b.q.Get(context.Background(), "t", id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != async.StatusQueued || got.Attempts != 0 {
		t.Fatalf("after drain timeout: status %s attempts %d, want queued with 0 attempts", got.Status, got.Attempts)
	}
}
