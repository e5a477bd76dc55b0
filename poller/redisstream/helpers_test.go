package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/redisstream"
	"github.com/ferrydev/ferry/poller/redisstream/redisstreamtest"
	"github.com/ferrydev/ferry/test/conformance"
)

// setup creates a fresh stream on the real Redis.
func setup(t *testing.T) *redisstreamtest.Topic {
	t.Helper()
	return redisstreamtest.New().NewTopic(t, 1).(*redisstreamtest.Topic)
}

// produce appends n entries with payloads "<prefix>-<i>" (i from 0) and keys
// "k<i%3>".
func produce(t *testing.T, tp *redisstreamtest.Topic, prefix string, n int) []string {
	t.Helper()
	msgs, payloads := batch(prefix, 0, n)
	tp.Produce(t, msgs)
	return payloads
}

// batch builds entries prefix-from .. prefix-(from+n-1).
func batch(prefix string, from, n int) ([]conformance.Msg, []string) {
	msgs := make([]conformance.Msg, n)
	payloads := make([]string, n)
	for i := range msgs {
		payloads[i] = fmt.Sprintf("%s-%d", prefix, from+i)
		msgs[i] = conformance.Msg{
			Key:     fmt.Sprintf("k%d", (from+i)%3),
			Payload: []byte(payloads[i]),
			Headers: map[string]string{poller.HeaderHops: "2"},
		}
	}
	return msgs, payloads
}

// connect connects src, bounded by a timeout.
func connect(t *testing.T, src *redisstream.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
}

// readN reads until n messages arrived; it fails after within.
func readN(t *testing.T, src *redisstream.Source, n int, within time.Duration) []*poller.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var got []*poller.Message
	for len(got) < n {
		msgs, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d of %d messages: %v", len(got), n, err)
		}
		got = append(got, msgs...)
	}
	if len(got) > n {
		t.Fatalf("read %d messages, want %d", len(got), n)
	}
	return got
}

// readNone checks that nothing arrives within d.
func readNone(t *testing.T, src *redisstream.Source, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	msgs, err := src.Read(ctx)
	if len(msgs) > 0 {
		t.Fatalf("read %d unexpected messages, first %q (%s)", len(msgs), msgs[0].Payload, msgs[0].ID)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read: %v, want the context deadline", err)
	}
}

// ackAll acks msgs with a nil error.
func ackAll(t *testing.T, msgs []*poller.Message) {
	t.Helper()
	for _, m := range msgs {
		if err := m.Ack(context.Background(), nil); err != nil {
			t.Fatalf("Ack %s: %v", m.ID, err)
		}
	}
}

// waitBacklog polls the group's backlog (read from Redis) until it is want.
func waitBacklog(t *testing.T, tp *redisstreamtest.Topic, group string, want int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := tp.Backlog(t, group)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog of %s is %d after %v, want %d", group, got, within, want)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not synchronising
	}
}

// payloads lists the payloads of msgs as strings.
func payloads(msgs []*poller.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}
