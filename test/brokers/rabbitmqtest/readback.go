package rabbitmqtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/test/brokers"
)

var _ brokers.Reader = (*Topic)(nil)

// ReadBack consumes want messages of the queue without acking them, on a
// connection of its own, and closes it: the broker puts them back, so the
// queue holds what it held before (its Backlog is unchanged once the
// connection is gone). Key is the message-id property, ContentType the
// content-type property, Headers the AMQP headers as strings.
func (q *Topic) ReadBack(t testing.TB, want int, within time.Duration) []brokers.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	conn, err := amqp.DialConfig(q.broker.URL, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		t.Fatalf("rabbitmqtest: dial: %v", err)
	}
	defer func() { _ = conn.CloseDeadline(time.Now().Add(5 * time.Second)) }()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("rabbitmqtest: channel: %v", err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, q.name, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("rabbitmqtest: consume %s: %v", q.name, err)
	}
	out := make([]brokers.Msg, 0, want)
	for len(out) < want {
		select {
		case d, ok := <-deliveries:
			if !ok {
				t.Fatalf("rabbitmqtest: %s: the consumer ended after %d of %d messages", q.name, len(out), want)
			}
			m := brokers.Msg{Key: d.MessageId, Payload: d.Body, ContentType: d.ContentType, Headers: map[string]string{}}
			for k, v := range d.Headers {
				m.Headers[k] = fmt.Sprint(v)
			}
			out = append(out, m)
		case <-ctx.Done():
			t.Fatalf("rabbitmqtest: read %d of %d messages of %s within %v", len(out), want, q.name, within)
		}
	}
	return out
}
