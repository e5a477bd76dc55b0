package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/redisstream/redisstreamtest"
	"github.com/ferrydev/ferry/sinks/redis"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/wire"
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

	ids, elapsed := sinktest.DeliverConcurrently(t, s, n, workers, opTimeout, func(i int) *wire.Outcome {
		return sinktest.Succeeded(fmt.Sprintf("task-%04d", i))
	})

	got := map[string]int{}
	for _, m := range entries(t, tp) {
		id, _ := m.Values["ferry-id"].(string)
		got[id]++
		var body struct{ ID string }
		if data, _ := m.Values["data"].(string); json.Unmarshal([]byte(data), &body) != nil || body.ID != id {
			t.Errorf("entry %s: ferry-id %q, data %q", m.ID, id, m.Values["data"])
		}
	}
	for _, id := range ids {
		if got[id] != 1 {
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

	failed := sinktest.Succeeded("task-failed")
	failed.Type, failed.Status, failed.Output = wire.TypeFailed, "failed", nil
	failed.Error = &wire.OutcomeError{Code: "loop_detected", Message: "hops"}
	failed.Hops, failed.TraceParent = 0, ""
	failed.RequestPayload = json.RawMessage(`{"order":1}`)
	succeeded := sinktest.Succeeded("task-succeeded")
	succeeded.Hops = 7
	tests := []*wire.Outcome{succeeded, failed}
	for _, o := range tests {
		sinktest.Deliver(t, s, o, opTimeout)
	}

	msgs := pollertest.ReadAck(t, src, len(tests), opTimeout)
	sinktest.CheckReadBack(t, msgs, tests, func(m *poller.Message) string { return m.Headers[wire.HeaderID] })
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
				sinktest.Deliver(t, s, sinktest.Succeeded(fmt.Sprintf("%s-%d", tt.name, i)), opTimeout)
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
	sinktest.Deliver(t, s, sinktest.Succeeded("warm-up"), opTimeout)
	for _, e := range sinktest.EndedContexts() {
		t.Run(e.Name, func(t *testing.T) {
			sinktest.DeliverEnded(t, s, sinktest.Succeeded(e.Name), e, 100*time.Millisecond)
		})
	}
	if n := len(entries(t, tp)); n != 1 {
		t.Errorf("stream holds %d entries, want only the warm-up", n)
	}
}
