// Package rabbitmqtest runs Ferry's conformance suite (and the RabbitMQ
// source's own tests) against a real RabbitMQ node: it implements
// brokers.Broker and brokers.Topic with durable, uniquely named
// queues, confirmed persistent publishes, and a backlog read from the
// broker itself (rabbitmqctl), never from the Source's memory.
package rabbitmqtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/test/brokers"
)

// HeaderKey is the AMQP header Produce puts a message's Key in, the one
// Ferry's RabbitMQ trigger reads the ordering key from.
const HeaderKey = "ferry-key"

// URLDefault is the broker test/brokers/up.sh starts (what
// brokers.Addr("rabbitmq") returns without $FERRY_RABBITMQ).
const URLDefault = "amqp://guest:guest@127.0.0.1:5672/"

// opTimeout bounds each broker operation of the helpers.
const opTimeout = 60 * time.Second

var _ brokers.Broker = (*Broker)(nil)

// Broker is the RabbitMQ node under test.
type Broker struct {
	// URL is the AMQP URI; New takes it from brokers.Addr("rabbitmq")
	// ($FERRY_RABBITMQ, else URLDefault).
	URL string
}

// New returns the Broker at brokers.Addr("rabbitmq").
func New() *Broker {
	return &Broker{URL: brokers.Addr("rabbitmq")}
}

// Name is "rabbitmq", as in the trigger config.
func (b *Broker) Name() string { return "rabbitmq" }

// NewTopic declares a durable, uniquely named queue (deleted in Cleanup).
// scopes is ignored: a queue is one ordering scope.
func (b *Broker) NewTopic(t testing.TB, _ int) brokers.Topic {
	t.Helper()
	brokers.Require(t, "rabbitmq")
	name := uniqueName(t)
	err := b.withChannel(func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(name, true, false, false, false, nil)
		return err
	})
	if err != nil {
		t.Fatalf("rabbitmqtest: declare queue %s: %v", name, err)
	}
	q := &Topic{broker: b, name: name}
	t.Cleanup(func() {
		if err := q.delete(); err != nil {
			t.Logf("rabbitmqtest: delete queue %s: %v", name, err)
		}
	})
	return q
}

// withChannel runs fn on a fresh connection and channel, closed after.
func (b *Broker) withChannel(fn func(*amqp.Channel) error) error {
	conn, err := amqp.DialConfig(b.URL, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer func() { _ = conn.CloseDeadline(time.Now().Add(5 * time.Second)) }()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("channel: %w", err)
	}
	return fn(ch)
}

// Topic is one durable queue.
type Topic struct {
	broker *Broker
	name   string
	seq    atomic.Uint64
}

var _ brokers.Topic = (*Topic)(nil)

// Name is the queue name.
func (q *Topic) Name() string { return q.name }

// SourceYAML is the trigger source for this queue; group is ignored (a
// queue is its own consumer group).
func (q *Topic) SourceYAML(string) string {
	return fmt.Sprintf("{ rabbitmq: { url: %s, queue: %s } }", strconv.Quote(q.broker.URL), strconv.Quote(q.name))
}

// DestinationYAML is this queue as a Ferry destination in flow style: the
// default exchange with the queue name as routing key, on the broker the
// SourceYAML uses, e.g.
// { rabbitmq: { url: "amqp://guest:guest@127.0.0.1:5672/", exchange: "", routing_key: "q" } }.
func (q *Topic) DestinationYAML() string {
	return fmt.Sprintf(`{ rabbitmq: { url: %s, exchange: "", routing_key: %s } }`, strconv.Quote(q.broker.URL), strconv.Quote(q.name))
}

// URL is the AMQP URI of the queue's broker.
func (q *Topic) URL() string { return q.broker.URL }

// Produce publishes msgs in order as persistent messages to the default
// exchange (routing key = queue), each with a unique message-id, Key in
// the "ferry-key" header and Headers copied (a "content-type" header also
// sets the content-type property). It uses a confirm-mode channel and
// returns once the broker confirmed every message; a nack, an unroutable
// (returned) message or a closed channel fails the test. Confirms are
// awaited through DeferredConfirmation, not a NotifyPublish channel, so
// no undrained confirm channel can block the library (amqp091-go #10,
// #21, #122).
func (q *Topic) Produce(t testing.TB, msgs []brokers.Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err := q.broker.withChannel(func(ch *amqp.Channel) error {
		if err := ch.Confirm(false); err != nil {
			return fmt.Errorf("confirm mode: %w", err)
		}
		// Buffered for every message: the library never waits on us.
		returns := ch.NotifyReturn(make(chan amqp.Return, len(msgs)+1))
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
		for _, m := range msgs {
			p := amqp.Publishing{
				DeliveryMode: amqp.Persistent,
				MessageId:    fmt.Sprintf("%s-%d", q.name, q.seq.Add(1)),
				Timestamp:    time.Now(),
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
				return fmt.Errorf("publish %s: %w", p.MessageId, err)
			}
			confirms = append(confirms, dc)
		}
		for i, dc := range confirms {
			select {
			case <-dc.Done():
			case e := <-closed:
				return fmt.Errorf("channel closed while waiting for confirm %d: %v", i, e)
			case <-ctx.Done():
				return fmt.Errorf("confirm %d of %d: %w", i, len(confirms), ctx.Err())
			}
			if !dc.Acked() {
				return fmt.Errorf("message %d of %d nacked by the broker", i, len(confirms))
			}
		}
		// A basic.return precedes the confirm of its message.
		select {
		case r := <-returns:
			return fmt.Errorf("message %s returned unroutable: %d %s", r.MessageId, r.ReplyCode, r.ReplyText)
		default:
		}
		return nil
	})
	if err != nil {
		t.Fatalf("rabbitmqtest: produce %d messages to %s: %v", len(msgs), q.name, err)
	}
}

// Backlog is the number of messages of the queue not yet acknowledged:
// ready plus delivered-but-unacknowledged, as the broker reports them
// (rabbitmqctl list_queues). A passive queue.declare would only give the
// ready count. group is ignored.
func (q *Topic) Backlog(t testing.TB, _ string) int64 {
	t.Helper()
	ready, unacked, err := queueCounts(q.name)
	if err != nil {
		t.Fatalf("rabbitmqtest: backlog of %s: %v", q.name, err)
	}
	return ready + unacked
}

// Delete deletes the queue now (consumers on it are cancelled by the
// broker). Deleting it again in Cleanup is harmless.
func (q *Topic) Delete(t testing.TB) {
	t.Helper()
	if err := q.delete(); err != nil {
		t.Fatalf("rabbitmqtest: delete queue %s: %v", q.name, err)
	}
}

func (q *Topic) delete() error {
	return q.broker.withChannel(func(ch *amqp.Channel) error {
		_, err := ch.QueueDelete(q.name, false, false, false)
		return err
	})
}

// uniqueName is "ferry-test-<sanitised test name>-<random>".
func uniqueName(t testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) > 100 {
		name = name[:100]
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return "ferry-test-" + name + "-" + hex.EncodeToString(rnd[:])
}
