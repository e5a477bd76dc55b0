package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/redisstream/redisstreamtest"
	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/redis"
)

// setup creates a fresh stream on the test Redis and a Client on it.
func setup(t *testing.T) (*redisstreamtest.Topic, *redis.Client) {
	t.Helper()
	b := redisstreamtest.New()
	tp := b.NewTopic(t, 1).(*redisstreamtest.Topic)
	return tp, newClient(t, b.URL())
}

// entries reads the whole stream with the raw client.
func entries(t testing.TB, tp *redisstreamtest.Topic) []goredis.XMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	msgs, err := tp.Client().XRange(ctx, tp.Name(), "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", tp.Name(), err)
	}
	return msgs
}

// TestDeliverConcurrent: 1,000 outcomes delivered by 8 goroutines through
// one Client all land in the stream, each once, with its id and body.
func TestDeliverConcurrent(t *testing.T) {
	t.Parallel()
	const n, workers = 1000, 8
	tp, c := setup(t)
	s := c.Sink(tp.Name(), 0)

	ids := make(chan string, n)
	for i := range n {
		ids <- fmt.Sprintf("task-%04d", i)
	}
	close(ids)
	errc := make(chan error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				if err := s.Deliver(ctx, outcome(id)); err != nil {
					errc <- err
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("Deliver: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	elapsed := time.Since(start)

	got := map[string]int{}
	for _, m := range entries(t, tp) {
		id, _ := m.Values["ferry-id"].(string)
		got[id]++
		var body struct{ ID string }
		if data, _ := m.Values["data"].(string); json.Unmarshal([]byte(data), &body) != nil || body.ID != id {
			t.Errorf("entry %s: ferry-id %q, data %q", m.ID, id, m.Values["data"])
		}
	}
	for i := range n {
		if id := fmt.Sprintf("task-%04d", i); got[id] != 1 {
			t.Errorf("%s found %d times, want 1", id, got[id])
		}
	}
	t.Logf("%d outcomes delivered by %d goroutines in %v; %d entries in the stream", n, workers, elapsed.Round(time.Millisecond), len(got))
}

// TestRoundTrip: an outcome delivered by the Sink is read by Ferry's own
// Redis Streams trigger with its hop count, traceparent, id, content type
// and the outcome JSON as payload.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tp, c := setup(t)
	s := c.Sink(tp.Name(), 0)
	src := tp.Source(t, "g")
	pollertest.Connect(t, src, opTimeout)

	failed := outcome("task-failed")
	failed.Type, failed.Status, failed.Output = sinks.TypeFailed, "failed", nil
	failed.Error = &sinks.OutcomeError{Code: "loop_detected", Message: "hops"}
	failed.Hops, failed.TraceParent = 0, ""
	failed.RequestPayload = json.RawMessage(`{"order":1}`)
	succeeded := outcome("task-succeeded")
	succeeded.Hops = 7
	tests := []*sinks.Outcome{succeeded, failed}
	for _, o := range tests {
		deliverWithin(t, s, o, opTimeout)
	}

	msgs := pollertest.ReadAck(t, src, len(tests), opTimeout)
	byID := map[string]int{}
	for i, m := range msgs {
		byID[m.Headers["ferry-id"]] = i
	}
	for _, o := range tests {
		t.Run(o.ID, func(t *testing.T) {
			i, ok := byID[o.ID]
			if !ok {
				t.Fatalf("no message with ferry-id %q", o.ID)
			}
			m := msgs[i]
			want, err := sinks.Encode(o)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Payload) != string(want.Body) {
				t.Errorf("payload = %s, want %s", m.Payload, want.Body)
			}
			if hops, err := async.ParseHops(m.Headers["ferry-hops"]); err != nil || hops != o.Hops {
				t.Errorf("ferry-hops = %q (%d, %v), want %d", m.Headers["ferry-hops"], hops, err, o.Hops)
			}
			if got, ok := m.Headers["traceparent"]; got != o.TraceParent || ok != (o.TraceParent != "") {
				t.Errorf("traceparent = %q (present %v), want %q", got, ok, o.TraceParent)
			}
			if m.Headers["ferry-type"] != o.Type {
				t.Errorf("ferry-type = %q, want %q", m.Headers["ferry-type"], o.Type)
			}
			if m.ContentType != "application/json" {
				t.Errorf("content type = %q, want application/json", m.ContentType)
			}
		})
	}
}

// TestMaxLen: with maxLen > 0 the stream is trimmed (approximately: Redis
// trims whole nodes of up to 100 entries) while every XADD succeeds.
func TestMaxLen(t *testing.T) {
	t.Parallel()
	tp, c := setup(t)
	tests := []struct {
		name         string
		maxLen       int64
		deliver      int
		wantMin      int64
		wantMaxBelow int64
	}{
		{"Untrimmed", 0, 300, 300, 301},
		{"NegativeIsUntrimmed", -5, 50, 350, 351},
		{"Trimmed", 100, 700, 100, 300},
	}
	for _, tt := range tests { // sequential: they share the stream
		t.Run(tt.name, func(t *testing.T) {
			s := c.Sink(tp.Name(), tt.maxLen)
			for i := range tt.deliver {
				deliverWithin(t, s, outcome(fmt.Sprintf("%s-%d", tt.name, i)), opTimeout)
			}
			n, err := tp.Client().XLen(context.Background(), tp.Name()).Result()
			if err != nil {
				t.Fatalf("XLEN: %v", err)
			}
			if n < tt.wantMin || n >= tt.wantMaxBelow {
				t.Errorf("XLEN = %d after %d more deliveries with maxLen %d, want [%d, %d)", n, tt.deliver, tt.maxLen, tt.wantMin, tt.wantMaxBelow)
			}
		})
	}
}

// TestDeliverContextEnded: with an already cancelled or expired context,
// Deliver returns at once with the context's error and appends nothing.
func TestDeliverContextEnded(t *testing.T) {
	t.Parallel()
	tp, c := setup(t)
	s := c.Sink(tp.Name(), 0)
	deliverWithin(t, s, outcome("warm-up"), opTimeout)
	tests := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		wantIs error
	}{
		{"Cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"DeadlinePassed", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			if err := s.Deliver(ctx, outcome(tt.name)); !errors.Is(err, tt.wantIs) {
				t.Errorf("Deliver = %v, want errors.Is %v", err, tt.wantIs)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("Deliver took %v with an ended context", d)
			}
		})
	}
	if n := len(entries(t, tp)); n != 1 {
		t.Errorf("stream holds %d entries, want only the warm-up", n)
	}
}
