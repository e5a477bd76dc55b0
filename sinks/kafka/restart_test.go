package kafka_test

import (
	"testing"

	"github.com/ferrydev/ferry/poller/kafka/kafkatest"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerOutage: with Kafka stopped, Deliver fails within its deadline;
// once Kafka is back, the same Producer delivers again by itself.
// Not parallel: it takes the broker away from the other tests.
func TestBrokerOutage(t *testing.T) {
	tp := kafkatest.New().CreateTopic(t, 1)
	s := newProducer(t).Sink(tp.Name())
	sinktest.Deliver(t, s, sinktest.Succeeded("before"), opTimeout) // connected, metadata cached

	// kafkatest's own cleanup deletes the topic over a connection the
	// restart killed, and fails: delete it here, once Kafka is back (the
	// outage's restart cleanup, registered later, runs first).
	t.Cleanup(func() { deleteTopic(t, tp.Name()) })
	sinktest.Outage{Broker: brokers.Kafka}.Run(t, s, sinktest.Succeeded("down"), sinktest.Succeeded("after"))

	got := map[string]bool{}
	for _, r := range readTopic(t, tp) {
		got[r.key] = true
	}
	if !got["before"] || !got["after"] {
		t.Errorf("topic holds %v, want before and after", got)
	}
}
