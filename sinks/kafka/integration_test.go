package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/kafka/kafkatest"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/wire"
)

// TestDeliverConcurrent: 1,000 outcomes delivered by 8 goroutines through
// one Producer all land in the topic, each once, keyed and headed by its id.
func TestDeliverConcurrent(t *testing.T) {
	t.Parallel()
	const n, workers = 1000, 8
	tp := kafkatest.New().CreateTopic(t, 3)
	s := newProducer(t).Sink(tp.Name())

	ids, elapsed := sinktest.DeliverConcurrently(t, s, n, workers, opTimeout, func(i int) *wire.Outcome {
		return sinktest.Succeeded(fmt.Sprintf("task-%04d", i))
	})

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
	for _, id := range ids {
		if got[id] != 1 {
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
	sinktest.Deliver(t, s, sinktest.Succeeded("warm-up"), opTimeout) // connects, caches metadata
	var worst time.Duration
	for i := range 5 {
		start := time.Now()
		sinktest.Deliver(t, s, sinktest.Succeeded(fmt.Sprintf("single-%d", i)), opTimeout)
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

	failed := sinktest.Succeeded("task-failed")
	failed.Type, failed.Status, failed.Output = wire.TypeFailed, "failed", nil
	failed.Error = &wire.OutcomeError{Code: "retries_exhausted", Message: "boom"}
	failed.Hops, failed.TraceParent = 0, ""
	failed.RequestPayload = json.RawMessage(`"raw"`)
	succeeded := sinktest.Succeeded("task-succeeded")
	succeeded.Hops = 7
	tests := []*wire.Outcome{succeeded, failed}
	for _, o := range tests {
		sinktest.Deliver(t, s, o, opTimeout)
	}

	msgs := pollertest.ReadAck(t, src, len(tests), opTimeout)
	sinktest.CheckReadBack(t, msgs, tests, func(m *poller.Message) string { return m.Key })
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
	sinktest.Deliver(t, s, sinktest.Succeeded("first"), opTimeout)
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
	sinktest.Deliver(t, s, sinktest.Succeeded("warm-up"), opTimeout)
	tinyDeadline := sinktest.Ended{Name: "TinyDeadline", Context: func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 500*time.Microsecond)
	}, WantIs: context.DeadlineExceeded}
	for _, e := range append(sinktest.EndedContexts(), tinyDeadline) {
		t.Run(e.Name, func(t *testing.T) {
			sinktest.DeliverEnded(t, s, sinktest.Succeeded("ctx-"+e.Name), e, time.Second)
		})
	}
}
