package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// TestRatesAdmissionApart: the admission buckets do not spend the
// dispatch buckets' tokens, nor the other way round.
func TestRatesAdmissionApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix, rdb := testPrefix(t), nodeClient(t)
	lane := wire.Lane{Tenant: "t", Function: "f"}
	fns := map[wire.Lane]Limit{lane: {Rate: 1, Burst: 1}}
	dispatch, admit := NewRates(rdb, prefix, nil, fns), NewAdmissionRates(rdb, prefix, nil, fns)
	for _, step := range []struct {
		name string
		r    *Rates
		ok   bool
	}{{"dispatch", dispatch, true}, {"dispatch again", dispatch, false}, {"admission", admit, true}, {"admission again", admit, false}} {
		w, err := step.r.Take(ctx, lane)
		if err != nil {
			t.Fatal(err)
		}
		if (w == 0) != step.ok {
			t.Fatalf("%s: wait %v, want a token: %v", step.name, w, step.ok)
		}
	}
}

// TestRatesLeaseSharesTheBuckets: a task's Lease takes its token from the
// bucket Take takes from (gcra_take in both scripts), so a poller's
// invocation and a task share one budget.
func TestRatesLeaseSharesTheBuckets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	fns := map[wire.Lane]Limit{lane: {Rate: 0.1, Burst: 1}}
	q := openTest(t, Options{Functions: fns})
	r := NewRates(nodeClient(t), q.opts.Prefix, nil, fns)
	if w, err := r.Take(ctx, lane); err != nil || w != 0 {
		t.Fatalf("Take = %v, %v; want the bucket's only token", w, err)
	}
	now := time.Now()
	task := &async.Task{ID: "rated", Tenant: lane.Tenant, Function: lane.Function, Payload: []byte("p"), CreatedAt: now, ReadyAt: now}
	if _, _, err := q.Enqueue(ctx, task, 0); err != nil {
		t.Fatal(err)
	}
	// The ready hint Lease reads is written in the background: lease until
	// Lease sees the task, and says when the lane gets its next token.
	var next time.Time
	for deadline := time.Now().Add(5 * time.Second); next.IsZero(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Lease never saw the queued task")
		}
		got, at, err := q.Lease(ctx, async.LeaseRequest{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if got != nil {
			t.Fatal("Lease handed out a task though Take had spent the lane's token")
		}
		next = at
	}
	if wait := time.Until(next); wait < 5*time.Second || wait > 10*time.Second {
		t.Errorf("Lease's next = in %v, want about 10s (0.1/s)", wait)
	}
}

// TestRatesHashKeepsTheSlowestBucket: a take of a fast lane never
// shortens the life of the tenant's hash, which holds a slow lane's TAT.
func TestRatesHashKeepsTheSlowestBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix, rdb := testPrefix(t), nodeClient(t)
	slow, fast := wire.Lane{Tenant: "t", Function: "slow"}, wire.Lane{Tenant: "t", Function: "fast"}
	r := NewRates(rdb, prefix, nil, map[wire.Lane]Limit{slow: {Rate: 0.1, Burst: 1}, fast: {Rate: 100, Burst: 1}})
	for _, l := range []wire.Lane{slow, fast} {
		if w, err := r.Take(ctx, l); err != nil || w != 0 {
			t.Fatalf("Take(%v) = %v, %v", l, w, err)
		}
	}
	key := keys{prefix}.rate("t")
	if ttl := rdb.PTTL(ctx, key).Val(); ttl < 10*time.Second {
		t.Fatalf("rate hash PTTL %v after a fast take, want at least the slow lane's 10s interval", ttl)
	}
	v, err := rdb.HGet(ctx, key, "slow").Result()
	if err != nil {
		t.Fatal(err)
	}
	tat, err := strconv.ParseFloat(v, 64)
	if err != nil || tat < float64(time.Now().Add(9*time.Second).UnixMilli()) {
		t.Fatalf("slow lane's TAT %q, want a float of ms about 10s ahead", v)
	}
	if w, err := r.Take(ctx, slow); err != nil || w < 9*time.Second {
		t.Fatalf("slow lane again = %v, %v; want about 10s", w, err)
	}
}

// TestRedisDown: without Redis, Take and Count fail and take nothing.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	lane := wire.Lane{Tenant: "t", Function: "f"}
	r := NewRates(rdb, "ferry", map[string]Limit{"t": {Rate: 1, Burst: 1}}, nil)
	if _, err := r.Take(context.Background(), lane); err == nil {
		t.Error("Take without Redis succeeded")
	}
	traces := NewTraces(rdb, "ferry", time.Minute)
	defer traces.Close()
	if _, err := traces.Count(context.Background(), trace.TraceID{1}, lane); err == nil {
		t.Error("Count without Redis succeeded")
	}
	// A lane without any rate needs no Redis.
	if w, err := r.Take(context.Background(), wire.Lane{Tenant: "u", Function: "f"}); err != nil || w != 0 {
		t.Errorf("Take of an unlimited lane = %v, %v; want 0 without a call", w, err)
	}
}
