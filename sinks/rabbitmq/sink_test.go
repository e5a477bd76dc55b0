package rabbitmq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/rabbitmq"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/rabbitmqtest"
	"github.com/ferrydev/ferry/wire"
)

// TestSink runs the Sink contract (sinks/sinktest) on RabbitMQ: the
// default exchange routes to the queue; the message-id is the outcome id
// and the content type a property.
func TestSink(t *testing.T) {
	sinktest.TestSink(t, rabbitmqtest.New(), sinktest.Features{
		Parallel:    true,
		Within:      deliverTimeout,
		KeyIsID:     true,
		ContentType: true,
		Outage:      sinktest.Outage{Broker: brokers.RabbitMQ},
	}, func(t testing.TB, tp brokers.Reader) sinks.Sink {
		return newPublisher(t).Sink("", tp.Name())
	}, nil)
}

// Confirmed means enqueued: once concurrent Delivers have returned, the
// queue holds every message at once.
func TestConfirmedMeansEnqueued(t *testing.T) {
	t.Parallel()
	const n, workers = 200, 8
	q, p := setup(t)
	s := p.Sink("", q.Name())
	sinktest.DeliverConcurrently(t, s, n, workers, deliverTimeout, func(i int) *wire.Outcome {
		return sinktest.Failed(fmt.Sprintf("%s-%d", q.Name(), i), 1)
	})
	if got := q.Backlog(t, ""); got != n {
		t.Fatalf("queue holds %d messages after %d confirmed Delivers", got, n)
	}
}

// Unroutable messages are errors (mandatory + basic.return), and the
// Publisher keeps working afterwards.
func TestUnroutable(t *testing.T) {
	t.Parallel()
	q, p := setup(t)
	unbound := "ferry-test-unbound-" + randHex()
	declareExchange(t, unbound, amqp.ExchangeTopic)
	for _, tc := range []struct {
		name, exchange, key string
	}{
		{"DefaultExchangeNoQueue", "", "ferry-test-no-such-queue-" + randHex()},
		{"ExchangeWithoutBinding", unbound, "anything"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sinktest.Failed(q.Name()+"-"+tc.name, 1)
			ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
			defer cancel()
			err := p.Sink(tc.exchange, tc.key).Deliver(ctx, o)
			var ret *rabbitmq.ReturnedError
			if !errors.Is(err, rabbitmq.ErrUnroutable) || !errors.As(err, &ret) || ret.Code != amqp.NoRoute {
				t.Fatalf("Deliver: %v, want ErrUnroutable (312 NO_ROUTE)", err)
			}
			t.Logf("Deliver: %v", err)
			sinktest.Deliver(t, p.Sink("", q.Name()), sinktest.Failed(o.ID+"-after", 1), deliverTimeout)
		})
	}
	if got := len(readAll(t, q, 2)); got != 2 {
		t.Fatalf("read %d messages, want the 2 routable ones", got)
	}
}

// A missing exchange is an error that leaves the shared channel alone:
// deliveries in flight on it are not disturbed, and the Publisher works
// afterwards. An exchange deleted after a sink checked it closes the
// channel once; the next Deliver reconnects and checks it again.
func TestMissingExchange(t *testing.T) {
	t.Parallel()
	q, p := setup(t)
	good := p.Sink("", q.Name())
	sinktest.Deliver(t, good, sinktest.Failed(q.Name()+"-0", 1), deliverTimeout)

	ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
	defer cancel()
	missing := p.Sink("ferry-test-missing-"+randHex(), "k")
	for i := range 2 { // the second time too: nothing cached
		if err := missing.Deliver(ctx, sinktest.Failed(q.Name()+"-missing", 1)); !errors.Is(err, rabbitmq.ErrExchangeNotFound) {
			t.Fatalf("Deliver %d to a missing exchange: %v, want ErrExchangeNotFound", i, err)
		}
	}
	sinktest.Deliver(t, good, sinktest.Failed(q.Name()+"-1", 1), deliverTimeout)

	// An exchange bound to q, deleted after the first Deliver.
	ex := "ferry-test-deleted-" + randHex()
	declareExchange(t, ex, amqp.ExchangeDirect)
	admin(t, func(ch *amqp.Channel) error { return ch.QueueBind(q.Name(), "k", ex, false, nil) })
	bound := p.Sink(ex, "k")
	sinktest.Deliver(t, bound, sinktest.Failed(q.Name()+"-2", 1), deliverTimeout)
	admin(t, func(ch *amqp.Channel) error { return ch.ExchangeDelete(ex, false, false) })
	err := bound.Deliver(ctx, sinktest.Failed(q.Name()+"-gone", 1))
	var aerr *amqp.Error
	if !errors.Is(err, rabbitmq.ErrNotConfirmed) || !errors.As(err, &aerr) || aerr.Code != amqp.NotFound {
		t.Fatalf("Deliver to a deleted exchange: %v, want ErrNotConfirmed with 404", err)
	}
	if err := bound.Deliver(ctx, sinktest.Failed(q.Name()+"-gone", 1)); !errors.Is(err, rabbitmq.ErrExchangeNotFound) {
		t.Fatalf("Deliver again: %v, want ErrExchangeNotFound", err)
	}
	sinktest.Deliver(t, good, sinktest.Failed(q.Name()+"-3", 1), deliverTimeout)
	got := readAll(t, q, 4)
	for i := range 4 {
		if id := fmt.Sprintf("%s-%d", q.Name(), i); !has(got, id) {
			t.Errorf("outcome %s missing", id)
		}
	}
}

// A Deliver whose context is (nearly) over returns promptly with the
// context's error, on a new and on a connected Publisher.
func TestDeliverTinyDeadline(t *testing.T) {
	t.Parallel()
	q, p := setup(t)
	s := p.Sink("", q.Name())
	try := func(name string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
		defer cancel()
		start := time.Now()
		err := s.Deliver(ctx, sinktest.Failed(q.Name()+"-"+name, 1))
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: Deliver took %v with a 1µs deadline", name, d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: Deliver: %v, want the context deadline", name, err)
		}
	}
	try("new")
	sinktest.Deliver(t, s, sinktest.Failed(q.Name()+"-ok", 1), deliverTimeout)
	try("connected")
	sinktest.Deliver(t, s, sinktest.Failed(q.Name()+"-ok2", 1), deliverTimeout)
}

// Close while 8 goroutines deliver: every Deliver returns (nil, or an
// error once Close began), and Close is bounded.
func TestCloseDuringDelivers(t *testing.T) {
	t.Parallel()
	q, p := setup(t)
	s := p.Sink("", q.Name())
	sinktest.Deliver(t, s, sinktest.Failed(q.Name()+"-first", 1), deliverTimeout)

	var wg sync.WaitGroup
	delivered := make(chan struct{}, 8)
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
				err := s.Deliver(ctx, sinktest.Failed(fmt.Sprintf("%s-%d-%d", q.Name(), w, i), 1))
				cancel()
				if err != nil {
					errs <- err
					return
				}
				select {
				case delivered <- struct{}{}:
				default:
				}
			}
		})
	}
	<-delivered // publishing is under way
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	t.Logf("Close took %v", time.Since(start))
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Logf("Deliver during Close: %v", err)
		if !errors.Is(err, rabbitmq.ErrClosed) && !errors.Is(err, rabbitmq.ErrNotConfirmed) {
			t.Errorf("Deliver during Close: %v, want ErrClosed or ErrNotConfirmed", err)
		}
	}
}

func randHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
