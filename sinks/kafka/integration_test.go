package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
)

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
	recs := kafkatest.ReadTopic(t, brokers.Addr(brokers.Kafka), name, []int{0}, 1, opTimeout)
	if len(recs) != 1 || recs[0].Key != "first" {
		t.Errorf("topic %s holds %+v, want the one outcome", name, recs)
	}
}

// TestDeliverTinyDeadline: Deliver returns promptly, with the context's
// error, when its deadline is too short for the write (shorter than the
// writer's batch timeout). Ended contexts are in the Sink contract.
func TestDeliverTinyDeadline(t *testing.T) {
	t.Parallel()
	tp := kafkatest.New().CreateTopic(t, 1)
	s := newProducer(t).Sink(tp.Name())
	sinktest.Deliver(t, s, sinktest.Succeeded("warm-up"), opTimeout)
	tinyDeadline := sinktest.Ended{Name: "TinyDeadline", Context: func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 500*time.Microsecond)
	}, WantIs: context.DeadlineExceeded}
	sinktest.DeliverEnded(t, s, sinktest.Succeeded("ctx-tiny"), tinyDeadline, time.Second)
}
