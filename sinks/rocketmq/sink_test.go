//go:build !race

// The tests against the real broker run in the non-race build: the client
// library (rocketmq-client-go v2.1.2) races in its own goroutines, which
// the race detector reports whatever the test does (see poller/rocketmq's
// tests). The sink's own concurrency is covered under -race by
// unit_test.go, with a fake client.
// Run: go test -count=1 ./sinks/rocketmq/

package rocketmq_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/rocketmq"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/rocketmqtest"
)

// deadline bounds each phase: consumer start-up and rebalancing take
// seconds in RocketMQ.
const deadline = 60 * time.Second

// deliverTimeout bounds one Deliver.
const deliverTimeout = 30 * time.Second

// setup creates a fresh topic with scopes queues and a Producer (closed in
// Cleanup) logging to the test.
func setup(t *testing.T, scopes int) (*rocketmqtest.Topic, *rocketmq.Producer) {
	t.Helper()
	tp := rocketmqtest.New().NewTopic(t, scopes).(*rocketmqtest.Topic)
	return tp, newProducer(t)
}

func newProducer(t testing.TB) *rocketmq.Producer {
	t.Helper()
	p, err := rocketmq.NewProducer(rocketmq.ProducerConfig{
		NameServers: []string{brokers.Addr(brokers.RocketMQ)},
		Group:       rocketmqtest.UniqueName(t, "p"),
		Logger:      sinktest.Logger(t, slog.LevelWarn),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// TestSink runs the Sink contract (sinks/sinktest) on RocketMQ: the keys
// are the outcome id; RocketMQ has no content type. The outage stops the
// name server and the broker.
func TestSink(t *testing.T) {
	sinktest.TestSink(t, rocketmqtest.New(), sinktest.Features{
		Within:  deadline,
		KeyIsID: true,
		Outage:  sinktest.Outage{Broker: brokers.RocketMQ, Recovery: 2 * time.Minute, Backoff: 500 * time.Millisecond},
	}, func(t testing.TB, tp brokers.Reader) sinks.Sink {
		return newProducer(t).Sink(tp.Name(), "")
	}, nil)
}

// A Deliver whose context is (nearly) over returns promptly with the
// context's error, and the Producer works afterwards.
func TestDeliverTinyDeadline(t *testing.T) {
	tp, p := setup(t, 1)
	s := p.Sink(tp.Name(), "")
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
		start := time.Now()
		err := s.Deliver(ctx, sinktest.Failed("tiny-"+strconv.Itoa(i), 1))
		cancel()
		if d := time.Since(start); d > time.Second {
			t.Errorf("Deliver took %v with a 1µs deadline", d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Deliver: %v, want the context deadline", err)
		}
		sinktest.Deliver(t, s, sinktest.Failed("ok-"+strconv.Itoa(i), 1), deliverTimeout)
	}
}
