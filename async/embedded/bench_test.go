package embedded

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

// benchQueue opens a queue on the real clock in a temporary directory.
func benchQueue(b *testing.B) *Queue {
	b.Helper()
	q, err := Open(b.TempDir(), Options{Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = q.Close() })
	return q
}

func benchTask(id, tenant string) *async.Task {
	now := time.Now()
	return &async.Task{ID: id, Tenant: tenant, Function: "echo", Payload: make([]byte, 512), CreatedAt: now, ReadyAt: now}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkEnqueueSerial: one synced Enqueue at a time, so one WAL fsync per
// task.
func BenchmarkEnqueueSerial(b *testing.B) {
	q := benchQueue(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, _, err := q.Enqueue(ctx, benchTask("s"+strconv.Itoa(i), "bench"), 0); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkEnqueueParallel: concurrent synced Enqueues; Pebble's group
// commit syncs them together, so throughput scales well past one fsync per
// task. Run with -cpu 1,8,64 (goroutines = GOMAXPROCS × parallelism) to see
// the effect grow with concurrency.
func BenchmarkEnqueueParallel(b *testing.B) {
	q := benchQueue(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := "p" + strconv.FormatInt(n.Add(1), 10)
			if _, _, err := q.Enqueue(ctx, benchTask(id, "t"+strconv.FormatInt(n.Load()%8, 10)), 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}

// BenchmarkLeaseComplete: one lease (NoSync) plus one synced completion per
// op, over a pre-filled queue of many tenants.
func BenchmarkLeaseComplete(b *testing.B) {
	q := benchQueue(b)
	ctx := context.Background()
	var enq atomic.Int64
	fill := func(k int) {
		for range k {
			i := enq.Add(1)
			if _, _, err := q.Enqueue(ctx, benchTask("l"+strconv.FormatInt(i, 10), "t"+strconv.FormatInt(i%50, 10)), 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill(1000)
	for b.Loop() {
		t, _, err := q.Lease(ctx, async.LeaseRequest{TTL: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		if t == nil {
			b.StopTimer()
			fill(1000)
			b.StartTimer()
			continue
		}
		if _, err := q.Complete(ctx, t.ID, t.Lease, async.Completion{Status: async.StatusSucceeded, Output: []byte("ok"), Attempted: true}); err != nil {
			b.Fatal(err)
		}
	}
}
