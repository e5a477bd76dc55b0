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

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/rocketmq/rocketmqtest"
	"github.com/ferrydev/ferry/sinks/rocketmq"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/wire"
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

func newProducer(t *testing.T) *rocketmq.Producer {
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

// readAll reads the topic with Ferry's own Source (a fresh group, from the
// earliest offset) until want distinct outcome ids were read, acking each,
// and returns the messages by ferry-id.
func readAll(t *testing.T, tp *rocketmqtest.Topic, want int) map[string]*poller.Message {
	t.Helper()
	src := tp.NewSource(t, tp.Config(rocketmqtest.UniqueName(t, "g")))
	return sinktest.ReadAll(t, src, deadline, 2*deadline, want, func(m *poller.Message) string { return m.Headers[wire.HeaderID] })
}

// 1,000 outcomes sent by 8 goroutines through one Producer are all on the
// topic afterwards.
func TestDeliverConcurrently(t *testing.T) {
	const n, workers = 1000, 8
	tp, p := setup(t, 4)
	s := p.Sink(tp.Name(), "")

	ids, took := sinktest.DeliverConcurrently(t, s, n, workers, deliverTimeout, func(i int) *wire.Outcome {
		return sinktest.Failed("o-"+strconv.Itoa(i), 1)
	})
	t.Logf("%d outcomes delivered in %v", n, took.Round(time.Millisecond))
	got := readAll(t, tp, n)
	sinktest.CheckIDs(t, got, ids)
}

// An outcome read back by Ferry's own RocketMQ source carries the hop
// count, traceparent, id and type as headers, the id as key, and the JSON
// as payload.
func TestRoundTripThroughSource(t *testing.T) {
	tp, p := setup(t, 1)
	o := sinktest.Failed("rt-1", 9)
	sinktest.Deliver(t, p.Sink(tp.Name(), "failed"), o, deliverTimeout)

	m := readAll(t, tp, 1)[o.ID]
	if m == nil {
		t.Fatalf("outcome %s not read back", o.ID)
	}
	sinktest.CheckMessage(t, m, o)
	if m.Key != o.ID {
		t.Errorf("key %q, want %q", m.Key, o.ID)
	}
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
