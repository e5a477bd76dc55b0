package rabbitmq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/rabbitmq"
	"github.com/ferrydev/ferry/poller/rabbitmq/rabbitmqtest"
	"github.com/ferrydev/ferry/test/conformance"
)

// setup declares a fresh durable queue on the real broker.
func setup(t *testing.T) *rabbitmqtest.Topic {
	t.Helper()
	return rabbitmqtest.New().NewTopic(t, 1).(*rabbitmqtest.Topic)
}

// produce publishes n messages with payloads "<prefix>-<i>" (i from 0).
func produce(t *testing.T, q *rabbitmqtest.Topic, prefix string, n int, headers map[string]string) []string {
	t.Helper()
	msgs := make([]conformance.Msg, n)
	payloads := make([]string, n)
	for i := range msgs {
		payloads[i] = fmt.Sprintf("%s-%d", prefix, i)
		msgs[i] = conformance.Msg{Payload: []byte(payloads[i]), Headers: headers}
	}
	q.Produce(t, msgs)
	return payloads
}

// connect connects src, bounded by a timeout.
func connect(t *testing.T, src *rabbitmq.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
}

// readN reads until n messages arrived (or the deadline passes).
func readN(t *testing.T, src *rabbitmq.Source, n int, within time.Duration) []*poller.Message {
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

// readAck reads and acks messages until n were acked.
func readAck(t *testing.T, src *rabbitmq.Source, n int, within time.Duration) []*poller.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var got []*poller.Message
	for len(got) < n {
		msgs, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d of %d messages: %v", len(got), n, err)
		}
		for _, m := range msgs {
			ack(t, m, nil)
		}
		got = append(got, msgs...)
	}
	if len(got) > n {
		t.Fatalf("read %d messages, want %d", len(got), n)
	}
	return got
}

// readNone checks that no message arrives within d.
func readNone(t *testing.T, src *rabbitmq.Source, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	msgs, err := src.Read(ctx)
	if err == nil {
		t.Fatalf("Read returned %d unexpected messages, first %q", len(msgs), msgs[0].Payload)
	}
	if ctx.Err() == nil {
		t.Fatalf("Read: %v", err)
	}
}

// ack settles m (nil cause) and fails on error.
func ack(t *testing.T, m *poller.Message, cause error) {
	t.Helper()
	if err := m.Ack(context.Background(), cause); err != nil {
		t.Fatalf("Ack %s: %v", m.ID, err)
	}
}

// waitBacklog polls the broker's backlog until it equals want.
func waitBacklog(t *testing.T, q *rabbitmqtest.Topic, want int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := q.Backlog(t, "")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog is %d after %s, want %d", got, within, want)
		}
		// rabbitmqctl itself takes ~0.4 s a call: no extra pause needed.
	}
}

// closeSrc closes src with a timeout.
func closeSrc(t *testing.T, src *rabbitmq.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
