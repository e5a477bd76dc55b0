package redisstream_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/poller/redisstream"
)

// TestDeadConsumerClaimed: consumer A reads entries and dies without
// acking (its client closed, no XACK); consumer B in the same group, with
// ClaimIdle 1s, claims them with XAUTOCLAIM and acks them: none lost, and
// A is not deleted from the group.
func TestDeadConsumerClaimed(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	const n = 20
	want := produce(t, tp, "m", n)
	withName := func(name string) func(*redisstream.Config) {
		return func(c *redisstream.Config) {
			c.Consumer, c.ClaimIdle, c.Count = name, time.Second, 7
		}
	}
	a := sources.Redis(t, tp, "g", withName("a"))
	pollertest.Connect(t, a, 20*time.Second)
	gotA := pollertest.ReadN(t, a, n, 10*time.Second)
	readAt := time.Now()
	if err := a.Close(context.Background()); err != nil { // dies: nothing acked
		t.Fatalf("Close A: %v", err)
	}
	ctx := context.Background()
	pend, err := tp.Client().XPending(ctx, tp.Name(), "g").Result()
	if err != nil || pend.Count != n || pend.Consumers["a"] != n {
		t.Fatalf("XPENDING after A died: %+v, %v; want %d pending for a", pend, err, n)
	}

	b := sources.Redis(t, tp, "g", withName("b"))
	pollertest.Connect(t, b, 20*time.Second)
	gotB := pollertest.ReadN(t, b, n, 15*time.Second)
	took := time.Since(readAt)
	t.Logf("B claimed %d entries of dead consumer A %v after A read them (ClaimIdle 1s)", len(gotB), took)
	if took < time.Second {
		t.Fatalf("claimed after %v, before ClaimIdle", took)
	}
	if !slices.Equal(payloads(gotB), want) {
		t.Fatalf("B got %v, want %v", payloads(gotB), want)
	}
	for i := range gotB {
		if gotB[i].ID != gotA[i].ID {
			t.Fatalf("entry %d: ID %s at A, %s at B", i, gotA[i].ID, gotB[i].ID)
		}
	}
	pollertest.AckAll(t, gotB)
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)

	consumers, err := tp.Client().XInfoConsumers(ctx, tp.Name(), "g").Result()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int64{}
	for _, c := range consumers {
		names[c.Name] = c.Pending
	}
	if p, ok := names["a"]; !ok || p != 0 || names["b"] != 0 {
		t.Fatalf("consumers after the claim: %v; want a (kept, 0 pending) and b (0 pending)", names)
	}
}

// TestInFlightNotClaimed: a live consumer keeps its in-flight entries from
// looking idle, so another consumer does not claim them even when the
// function takes longer than ClaimIdle.
func TestInFlightNotClaimed(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	produce(t, tp, "m", 5)
	fast := func(name string) func(*redisstream.Config) {
		return func(c *redisstream.Config) {
			c.Consumer, c.ClaimIdle, c.ClaimInterval = name, 600*time.Millisecond, 200*time.Millisecond
		}
	}
	a := sources.Redis(t, tp, "g", fast("a"))
	pollertest.Connect(t, a, 20*time.Second)
	held := pollertest.ReadN(t, a, 5, 10*time.Second)
	b := sources.Redis(t, tp, "g", fast("b"))
	pollertest.Connect(t, b, 20*time.Second)
	pollertest.ReadNone(t, b, 2500*time.Millisecond) // A still works on them: 4 × ClaimIdle
	pollertest.AckAll(t, held)
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)
}

// TestSameConsumerResumes: a Source coming back under the same consumer
// name re-reads its own pending entries at once (XREADGROUP id "0"), without
// waiting for ClaimIdle.
func TestSameConsumerResumes(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	want := produce(t, tp, "m", 5)
	named := func(c *redisstream.Config) { c.Consumer, c.ClaimIdle = "x", time.Minute }
	a := sources.Redis(t, tp, "g", named)
	pollertest.Connect(t, a, 20*time.Second)
	got := pollertest.ReadN(t, a, 5, 10*time.Second)
	pollertest.AckAll(t, got[:2])
	if err := a.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b := sources.Redis(t, tp, "g", named)
	pollertest.Connect(t, b, 20*time.Second)
	back := pollertest.ReadN(t, b, 3, 5*time.Second) // far below ClaimIdle
	if !slices.Equal(payloads(back), want[2:]) {
		t.Fatalf("resumed %v, want %v", payloads(back), want[2:])
	}
	pollertest.AckAll(t, back)
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)
}

// TestStartLatest: a group created with StartLatest skips the entries
// already in the stream.
func TestStartLatest(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	produce(t, tp, "old", 3)
	src := sources.Redis(t, tp, "g", func(c *redisstream.Config) { c.Start = redisstream.StartLatest })
	pollertest.Connect(t, src, 20*time.Second)
	msgs, want := batch("new", 0, 2)
	tp.Produce(t, msgs)
	got := pollertest.ReadN(t, src, 2, 10*time.Second)
	if !slices.Equal(payloads(got), want) {
		t.Fatalf("read %v, want %v", payloads(got), want)
	}
	pollertest.AckAll(t, got)
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)
}
