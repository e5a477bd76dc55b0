package rabbitmq_test

import (
	"log/slog"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/sinks/rabbitmq"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/rabbitmqtest"
)

// deliverTimeout bounds one Deliver in the broker tests.
const deliverTimeout = 30 * time.Second

// setup declares a fresh durable queue on the real broker and returns it
// with a Publisher (closed in Cleanup) logging to the test.
func setup(t *testing.T) (*rabbitmqtest.Topic, *rabbitmq.Publisher) {
	t.Helper()
	q := rabbitmqtest.New().NewTopic(t, 1).(*rabbitmqtest.Topic)
	return q, newPublisher(t)
}

func newPublisher(t testing.TB) *rabbitmq.Publisher {
	t.Helper()
	p, err := rabbitmq.NewPublisher(rabbitmq.PublisherConfig{
		URL:    brokers.Addr(brokers.RabbitMQ),
		Logger: sinktest.Logger(t, slog.LevelInfo),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		start := time.Now()
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if d := time.Since(start); d > rabbitmq.CloseTimeout+2*time.Second {
			t.Errorf("Close took %v", d)
		}
	})
	return p
}

// readAll reads want messages of q back with amqp091-go (leaving them in
// the queue), and returns them by message id.
func readAll(t *testing.T, q *rabbitmqtest.Topic, want int) map[string]brokers.Msg {
	t.Helper()
	return sinktest.ReadBack(t, q, want, 60*time.Second, func(m brokers.Msg) string { return m.Key })
}

// has reports whether got holds id.
func has(got map[string]brokers.Msg, id string) bool {
	_, ok := got[id]
	return ok
}

// admin runs fn on a fresh channel of a connection of its own.
func admin(t *testing.T, fn func(ch *amqp.Channel) error) {
	t.Helper()
	conn, err := amqp.DialConfig(brokers.Addr(brokers.RabbitMQ), amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		t.Fatalf("admin dial: %v", err)
	}
	defer func() { _ = conn.CloseDeadline(time.Now().Add(5 * time.Second)) }()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("admin channel: %v", err)
	}
	if err := fn(ch); err != nil {
		t.Fatalf("admin: %v", err)
	}
}

// declareExchange declares a durable exchange of kind, deleted in Cleanup.
func declareExchange(t *testing.T, name, kind string) {
	t.Helper()
	admin(t, func(ch *amqp.Channel) error { return ch.ExchangeDeclare(name, kind, true, false, false, false, nil) })
	t.Cleanup(func() {
		admin(t, func(ch *amqp.Channel) error { return ch.ExchangeDelete(name, false, false) })
	})
}
