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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/rocketmq/rocketmqtest"
	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/rocketmq"
	"github.com/ferrydev/ferry/test/brokers"
)

// deadline bounds each phase: consumer start-up and rebalancing take
// seconds in RocketMQ.
const deadline = 60 * time.Second

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
		Logger:      slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
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

func newOutcome(id string, hops int) *sinks.Outcome {
	return &sinks.Outcome{
		Type: sinks.TypeFailed, ID: id, Tenant: "demo", Function: "echo", Status: "failed",
		Attempts: 3, Error: &sinks.OutcomeError{Code: "retries_exhausted", Message: "boom"},
		Source: "ferry://test", Hops: hops, Time: time.Now().UTC().Truncate(time.Second),
		RequestPayload: json.RawMessage(`{"n":1}`),
		TraceParent:    fmt.Sprintf("00-%032x-%016x-01", hops+1, hops+1),
	}
}

func deliver(t *testing.T, s *rocketmq.Sink, o *sinks.Outcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Deliver(ctx, o); err != nil {
		t.Fatalf("Deliver %s: %v", o.ID, err)
	}
}

// readAll reads the topic with Ferry's own Source (a fresh group, from the
// earliest offset) until want distinct outcome ids were read, acking each,
// and returns the messages by ferry-id.
func readAll(t *testing.T, tp *rocketmqtest.Topic, want int) map[string]*poller.Message {
	t.Helper()
	src := tp.NewSource(t, tp.Config(rocketmqtest.UniqueName(t, "g")))
	pollertest.Connect(t, src, deadline)
	got := map[string]*poller.Message{}
	pollertest.ReadUntil(t, src, 2*deadline, func(m *poller.Message) {
		got[m.Headers[sinks.HeaderID]] = m
		pollertest.Ack(t, m, nil)
	}, func() bool { return len(got) >= want })
	pollertest.Close(t, src)
	return got
}

// 1,000 outcomes sent by 8 goroutines through one Producer are all on the
// topic afterwards.
func TestDeliverConcurrently(t *testing.T) {
	const n, workers = 1000, 8
	tp, p := setup(t, 4)
	s := p.Sink(tp.Name(), "")

	ids := make(chan string, n)
	for i := range n {
		ids <- "o-" + strconv.Itoa(i)
	}
	close(ids)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for id := range ids {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				errs <- s.Deliver(ctx, newOutcome(id, 1))
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	t.Logf("%d outcomes delivered in %v", n, time.Since(start).Round(time.Millisecond))
	got := readAll(t, tp, n)
	for i := range n {
		if id := "o-" + strconv.Itoa(i); got[id] == nil {
			t.Errorf("outcome %s missing", id)
		}
	}
	if len(got) != n {
		t.Fatalf("read %d distinct ids, want %d", len(got), n)
	}
}

// An outcome read back by Ferry's own RocketMQ source carries the hop
// count, traceparent, id and type as headers, the id as key, and the JSON
// as payload.
func TestRoundTripThroughSource(t *testing.T) {
	tp, p := setup(t, 1)
	o := newOutcome("rt-1", 9)
	deliver(t, p.Sink(tp.Name(), "failed"), o)

	m := readAll(t, tp, 1)[o.ID]
	if m == nil {
		t.Fatalf("outcome %s not read back", o.ID)
	}
	enc, err := sinks.Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != string(enc.Body) {
		t.Errorf("payload %s, want %s", m.Payload, enc.Body)
	}
	for k, want := range map[string]string{
		poller.HeaderHops:        strconv.Itoa(o.Hops),
		poller.HeaderTraceParent: o.TraceParent,
		sinks.HeaderID:           o.ID,
		sinks.HeaderType:         o.Type,
	} {
		if got := m.Headers[k]; got != want {
			t.Errorf("header %s = %q, want %q (headers %v)", k, got, want, m.Headers)
		}
	}
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
		err := s.Deliver(ctx, newOutcome("tiny-"+strconv.Itoa(i), 1))
		cancel()
		if d := time.Since(start); d > time.Second {
			t.Errorf("Deliver took %v with a 1µs deadline", d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Deliver: %v, want the context deadline", err)
		}
		deliver(t, s, newOutcome("ok-"+strconv.Itoa(i), 1))
	}
}
