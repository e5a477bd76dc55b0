package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/poller/kafka/kafkatest"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/test/brokers"
)

// TestDeliverConcurrent: 1,000 outcomes delivered by 8 goroutines through
// one Producer all land in the topic, each once, keyed and headed by its id.
func TestDeliverConcurrent(t *testing.T) {
	t.Parallel()
	const n, workers = 1000, 8
	tp := kafkatest.New().CreateTopic(t, 3)
	s := newProducer(t).Sink(tp.Name())

	ids := make(chan string, n)
	for i := range n {
		ids <- fmt.Sprintf("task-%04d", i)
	}
	close(ids)
	errc := make(chan error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				if err := s.Deliver(ctx, outcome(id)); err != nil {
					errc <- err
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("Deliver: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	elapsed := time.Since(start)

	got := map[string]int{}
	for _, r := range readTopic(t, tp) {
		got[r.key]++
		if r.headers["ferry-id"] != r.key {
			t.Errorf("message with key %q has ferry-id %q", r.key, r.headers["ferry-id"])
		}
		var body struct{ ID string }
		if err := json.Unmarshal([]byte(r.value), &body); err != nil || body.ID != r.key {
			t.Errorf("message with key %q has body id %q (%v)", r.key, body.ID, err)
		}
	}
	for i := range n {
		if id := fmt.Sprintf("task-%04d", i); got[id] != 1 {
			t.Errorf("%s found %d times, want 1", id, got[id])
		}
	}
	t.Logf("%d outcomes delivered by %d goroutines in %v; %d messages in the topic", n, workers, elapsed.Round(time.Millisecond), len(got))
}

// TestDeliverSingleIsFast: one delivery on an idle producer does not wait
// for kafka-go's default 1s batch timeout.
func TestDeliverSingleIsFast(t *testing.T) {
	t.Parallel()
	tp := kafkatest.New().CreateTopic(t, 1)
	s := newProducer(t).Sink(tp.Name())
	deliverWithin(t, s, outcome("warm-up"), opTimeout) // connects, caches metadata
	var worst time.Duration
	for i := range 5 {
		start := time.Now()
		deliverWithin(t, s, outcome(fmt.Sprintf("single-%d", i)), opTimeout)
		worst = max(worst, time.Since(start))
	}
	if worst > 500*time.Millisecond {
		t.Errorf("slowest single Deliver took %v, want well under kafka-go's 1s batch timeout", worst)
	}
	t.Logf("slowest of 5 single deliveries: %v", worst.Round(time.Microsecond))
}

// TestRoundTrip: an outcome delivered by the Sink is read by Ferry's own
// Kafka trigger with its hop count, traceparent, id, content type and the
// outcome JSON as payload.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tp := kafkatest.New().CreateTopic(t, 1)
	s := newProducer(t).Sink(tp.Name())
	src := tp.Source(t, kafkatest.UniqueName(t))
	pollertest.ConnectRetry(t, src, opTimeout)

	failed := outcome("task-failed")
	failed.Type, failed.Status, failed.Output = sinks.TypeFailed, "failed", nil
	failed.Error = &sinks.OutcomeError{Code: "retries_exhausted", Message: "boom"}
	failed.Hops, failed.TraceParent = 0, ""
	failed.RequestPayload = json.RawMessage(`"raw"`)
	succeeded := outcome("task-succeeded")
	succeeded.Hops = 7
	tests := []*sinks.Outcome{succeeded, failed}
	for _, o := range tests {
		deliverWithin(t, s, o, opTimeout)
	}

	msgs := pollertest.ReadAck(t, src, len(tests), opTimeout)
	byKey := map[string]int{}
	for i, m := range msgs {
		byKey[m.Key] = i
	}
	for _, o := range tests {
		t.Run(o.ID, func(t *testing.T) {
			i, ok := byKey[o.ID]
			if !ok {
				t.Fatalf("no message with key %q", o.ID)
			}
			m := msgs[i]
			want, err := sinks.Encode(o)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Payload) != string(want.Body) {
				t.Errorf("payload = %s, want %s", m.Payload, want.Body)
			}
			if hops, err := async.ParseHops(m.Headers["ferry-hops"]); err != nil || hops != o.Hops {
				t.Errorf("ferry-hops = %q (%d, %v), want %d", m.Headers["ferry-hops"], hops, err, o.Hops)
			}
			if got, ok := m.Headers["traceparent"]; got != o.TraceParent || ok != (o.TraceParent != "") {
				t.Errorf("traceparent = %q (present %v), want %q", got, ok, o.TraceParent)
			}
			if m.Headers["ferry-id"] != o.ID || m.Headers["ferry-type"] != o.Type {
				t.Errorf("ferry-id, ferry-type = %q, %q, want %q, %q", m.Headers["ferry-id"], m.Headers["ferry-type"], o.ID, o.Type)
			}
			if m.ContentType != "application/json" {
				t.Errorf("content type = %q, want application/json", m.ContentType)
			}
		})
	}
}

// TestAutoCreatedTopic: a destination topic that does not exist yet is
// created by the broker (auto.create.topics.enable) on the first delivery,
// which succeeds without the caller retrying.
func TestAutoCreatedTopic(t *testing.T) {
	t.Parallel()
	brokers.Require(t, brokers.Kafka)
	name := kafkatest.UniqueName(t)
	t.Cleanup(func() { deleteTopic(t, name) })
	s := newProducer(t).Sink(name)
	start := time.Now()
	deliverWithin(t, s, outcome("first"), opTimeout)
	t.Logf("first delivery to a new topic took %v", time.Since(start).Round(time.Millisecond))
	recs := readTopicName(t, name, []int{0})
	if len(recs) != 1 || recs[0].key != "first" {
		t.Errorf("topic %s holds %+v, want the one outcome", name, recs)
	}
}

// TestDeliverContextEnds: Deliver returns promptly, with the context's
// error, when its context is already cancelled or its deadline is too
// short for the write (shorter than the writer's batch timeout).
func TestDeliverContextEnds(t *testing.T) {
	t.Parallel()
	tp := kafkatest.New().CreateTopic(t, 1)
	s := newProducer(t).Sink(tp.Name())
	deliverWithin(t, s, outcome("warm-up"), opTimeout)
	tests := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		wantIs error
	}{
		{"Cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"DeadlinePassed", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, context.DeadlineExceeded},
		{"TinyDeadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 500*time.Microsecond)
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			err := s.Deliver(ctx, outcome("ctx-"+tt.name))
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("Deliver = %v, want errors.Is %v", err, tt.wantIs)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Deliver took %v after its context ended", d)
			}
		})
	}
}
