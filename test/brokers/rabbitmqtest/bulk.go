package rabbitmqtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/test/brokers"
)

var _ brokers.BulkTopic = (*Topic)(nil)

// confirmWindow is how many publishes ProduceN lets the broker confirm
// at a time: two windows are in flight, so the channel never idles while
// the confirms of one come back.
const confirmWindow = 5000

// ProduceN publishes n messages, msg(i) for i in [0, n), as Produce does
// (persistent, a unique message-id, Key in the "ferry-key" header,
// confirmed by the broker) but without holding a confirmation for every
// message: it publishes in windows of 5,000 and waits for the confirms of
// one window while the next is published. A nack, an unroutable message
// or a closed channel fails the test.
func (q *Topic) ProduceN(t testing.TB, n int, msg func(i int) brokers.Msg) {
	t.Helper()
	err := q.broker.withChannel(func(ch *amqp.Channel) error {
		if err := ch.Confirm(false); err != nil {
			return fmt.Errorf("confirm mode: %w", err)
		}
		// Buffered for the two windows in flight: the library never waits
		// on us.
		returns := ch.NotifyReturn(make(chan amqp.Return, 2*confirmWindow))
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		var prev []*amqp.DeferredConfirmation
		for from := 0; from < n; from += confirmWindow {
			win, err := q.publishWindow(ch, from, min(from+confirmWindow, n), msg)
			if err != nil {
				return err
			}
			if err := awaitConfirms(prev, from-len(prev), returns, closed); err != nil {
				return err
			}
			prev = win
		}
		return awaitConfirms(prev, n-len(prev), returns, closed)
	})
	if err != nil {
		t.Fatalf("rabbitmqtest: produce %d messages to %s: %v", n, q.name, err)
	}
}

// publishWindow publishes messages [from, to) and returns their deferred
// confirmations.
func (q *Topic) publishWindow(ch *amqp.Channel, from, to int, msg func(int) brokers.Msg) ([]*amqp.DeferredConfirmation, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out := make([]*amqp.DeferredConfirmation, 0, to-from)
	now := time.Now()
	for i := from; i < to; i++ {
		m := msg(i)
		p := amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			MessageId:    fmt.Sprintf("%s-%d", q.name, q.seq.Add(1)),
			Timestamp:    now,
			Headers:      amqp.Table{},
			Body:         m.Payload,
		}
		for k, v := range m.Headers {
			p.Headers[k] = v
			if strings.EqualFold(k, "content-type") {
				p.ContentType = v
			}
		}
		if m.Key != "" {
			p.Headers[HeaderKey] = m.Key
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q.name, true, false, p)
		if err != nil {
			return nil, fmt.Errorf("publish message %d: %w", i, err)
		}
		out = append(out, dc)
	}
	return out, nil
}

// awaitConfirms waits for every confirmation of dcs (the messages from
// first on) and fails on a nack, a returned message or a closed channel.
func awaitConfirms(dcs []*amqp.DeferredConfirmation, first int, returns <-chan amqp.Return, closed <-chan *amqp.Error) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for i, dc := range dcs {
		select {
		case <-dc.Done():
		case e := <-closed:
			return fmt.Errorf("channel closed while waiting for the confirm of message %d: %v", first+i, e)
		case <-ctx.Done():
			return fmt.Errorf("confirm of message %d: %w", first+i, ctx.Err())
		}
		if !dc.Acked() {
			return fmt.Errorf("message %d nacked by the broker", first+i)
		}
	}
	// A basic.return precedes the confirm of its message.
	select {
	case r := <-returns:
		return fmt.Errorf("message %s returned unroutable: %d %s", r.MessageId, r.ReplyCode, r.ReplyText)
	default:
		return nil
	}
}
