package chaos

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/test/brokers"
)

// rabbitQueue is a durable queue of a given type, declared and filled
// with the raw client, deleted at the end of the test.
type rabbitQueue struct {
	name, typ string
	// errs is the raw consumer's connection errors, in order.
	mu   sync.Mutex
	errs []string
}

// quorumSettle is how old a quorum queue is before a row starts on it.
const quorumSettle = 5 * time.Second

func newRabbitQueue(t testing.TB, typ string) *rabbitQueue {
	t.Helper()
	q := &rabbitQueue{name: fmt.Sprintf("chaos-%s-%d", typ, time.Now().UnixNano()), typ: typ}
	err := withChannel(func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(q.name, true, false, false, false, amqp.Table{"x-queue-type": typ})
		return err
	})
	if err != nil {
		t.Fatalf("declare %s queue: %v", typ, err)
	}
	if typ == "quorum" {
		// RabbitMQ 3.10 killed with kill -9 within about a second of
		// declaring a quorum queue restarted without the queue's Raft
		// member ("leader not known"; every consume INTERNAL_ERROR for
		// minutes): a broker fault that is not the one under test. The
		// faults here hit a queue at least this old.
		time.Sleep(quorumSettle) // a fault's timing, not synchronisation
	}
	t.Cleanup(func() {
		_ = withChannel(func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete(q.name, false, false, false)
			return err
		})
	})
	return q
}

func withChannel(fn func(*amqp.Channel) error) error {
	conn, err := amqp.Dial(brokers.Addr(brokers.RabbitMQ))
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	return fn(ch)
}

// produce publishes seqs [0, n) persistent, with confirms, recording each
// confirmed one as accepted.
func (q *rabbitQueue) produce(t testing.TB, n int, l *Ledger) {
	t.Helper()
	err := withChannel(func(ch *amqp.Channel) error {
		if err := ch.Confirm(false); err != nil {
			return err
		}
		const window = 256
		for from := 0; from < n; from += window {
			to := min(n, from+window)
			dcs := make([]*amqp.DeferredConfirmation, 0, window)
			for seq := from; seq < to; seq++ {
				dc, err := ch.PublishWithDeferredConfirm("", q.name, true, false, amqp.Publishing{
					DeliveryMode: amqp.Persistent, ContentType: "application/json", Body: payload(seq),
				})
				if err != nil {
					return err
				}
				dcs = append(dcs, dc)
			}
			for i, dc := range dcs {
				if !dc.Wait() {
					return fmt.Errorf("message %d nacked", from+i)
				}
				l.Accept(from + i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("produce to %s: %v", q.name, err)
	}
}

// sourceYAML is the Ferry trigger source for the queue.
func (q *rabbitQueue) sourceYAML() string {
	return fmt.Sprintf("{ rabbitmq: { url: %s, queue: %s, queue_type: %s } }",
		strconv.Quote(brokers.Addr(brokers.RabbitMQ)), strconv.Quote(q.name), q.typ)
}

// rawConsume consumes the queue with amqp091-go alone (prefetch 64, each
// delivery acked on its own right after it is recorded, as a careful
// consumer would), reconnecting when the connection drops, until stop is
// closed. Every delivery counts as a successful invocation.
func (q *rabbitQueue) rawConsume(l *Ledger, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		q.consumeOnce(l, stop)
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (q *rabbitQueue) consumeOnce(l *Ledger, stop <-chan struct{}) {
	var err error
	defer func() {
		if err != nil {
			q.mu.Lock()
			q.errs = append(q.errs, err.Error())
			q.mu.Unlock()
		}
	}()
	conn, err := amqp.Dial(brokers.Addr(brokers.RabbitMQ))
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	if err = ch.Qos(64, 0, false); err != nil {
		return
	}
	ds, err := ch.Consume(q.name, "", false, false, false, false, nil)
	if err != nil {
		return
	}
	idle := time.NewTimer(10 * time.Second)
	defer idle.Stop()
	for {
		select {
		case <-stop:
			return
		case <-idle.C:
			// A consumer that got nothing for 10 s starts over (after a
			// broker restart a consume may sit on a queue still recovering).
			err = fmt.Errorf("no delivery for 10s")
			return
		case d, ok := <-ds:
			idle.Reset(10 * time.Second)
			if !ok {
				return
			}
			var p struct{ Seq int }
			if json.Unmarshal(d.Body, &p) != nil {
				l.Seen(-1)
				continue
			}
			l.Seen(p.Seq)
			l.Deliver(p.Seq)
			time.Sleep(time.Millisecond) // the consumer's work, so the kill lands mid-queue
			if d.Ack(false) != nil {
				return
			}
		}
	}
}
