package kafka_test

import (
	"testing"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
)

// TestSink runs the Sink contract (sinks/sinktest) on Kafka: the key is
// the outcome id, the content type a header.
func TestSink(t *testing.T) {
	sinktest.TestSink(t, kafkatest.New(), sinktest.Features{
		Parallel:    true,
		Within:      opTimeout,
		KeyIsID:     true,
		ContentType: true,
		Outage:      sinktest.Outage{Broker: brokers.Kafka},
	}, func(t testing.TB, tp brokers.Reader) sinks.Sink {
		return newProducer(t).Sink(tp.Name())
	}, func(t testing.TB, addr string) sinks.Sink {
		return newProducer(t, addr).Sink("orders")
	})
}
