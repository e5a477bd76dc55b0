package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/poller/rabbitmq"
	"github.com/ferrydev/ferry/test/brokers"
)

// declareArgs declares queue with args on a fresh connection and returns
// the broker's answer.
func declareArgs(t *testing.T, queue string, args amqp.Table) error {
	t.Helper()
	conn, err := amqp.Dial(brokers.Addr(brokers.RabbitMQ))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclare(queue, true, false, false, false, args)
	return err
}

// TestQueueType: with QueueType set, Connect declares a missing queue with
// that type, and refuses an existing queue of another type.
func TestQueueType(t *testing.T) {
	t.Parallel()
	brokers.Require(t, brokers.RabbitMQ)
	connect := func(queue, typ string) error {
		src, err := rabbitmq.New(rabbitmq.Config{URL: brokers.Addr(brokers.RabbitMQ), Queue: queue, QueueType: typ})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		defer func() { _ = src.Close(ctx) }()
		return src.Connect(ctx)
	}
	fresh := fmt.Sprintf("ferry-qt-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		conn, err := amqp.Dial(brokers.Addr(brokers.RabbitMQ))
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(fresh, false, false, false)
		}
	})
	if err := connect(fresh, rabbitmq.QueueQuorum); err != nil {
		t.Fatalf("Connect declaring a quorum queue: %v", err)
	}
	if err := connect(fresh, rabbitmq.QueueQuorum); err != nil {
		t.Fatalf("Connect to the quorum queue it declared: %v", err)
	}
	// The broker agrees it is a quorum queue: a classic declare is refused.
	var aerr *amqp.Error
	if err := declareArgs(t, fresh, amqp.Table{"x-queue-type": "classic"}); !errors.As(err, &aerr) || aerr.Code != amqp.PreconditionFailed {
		t.Fatalf("classic declare of the quorum queue: %v, want PRECONDITION_FAILED", err)
	}
	if err := connect(fresh, rabbitmq.QueueClassic); !errors.Is(err, rabbitmq.ErrQueueType) {
		t.Fatalf("Connect wanting classic on a quorum queue: %v, want ErrQueueType", err)
	}
	if err := connect(fresh+"-missing", ""); !errors.Is(err, rabbitmq.ErrQueueNotFound) {
		t.Fatalf("Connect without QueueType to a missing queue: %v, want ErrQueueNotFound", err)
	}
	if _, err := rabbitmq.New(rabbitmq.Config{URL: brokers.Addr(brokers.RabbitMQ), Queue: "q", QueueType: "stream"}); err == nil {
		t.Fatal("New accepted QueueType stream")
	}
}
