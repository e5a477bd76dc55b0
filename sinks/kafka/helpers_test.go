package kafka_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/sinks/kafka"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
)

// opTimeout bounds each broker call the tests make.
const opTimeout = 30 * time.Second

// newProducer returns a Producer on brokers (default: the test Kafka),
// closed in t.Cleanup.
func newProducer(t testing.TB, addrs ...string) *kafka.Producer {
	t.Helper()
	if len(addrs) == 0 {
		addrs = []string{brokers.Addr(brokers.Kafka)}
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: addrs, Logger: sinktest.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// deleteTopic deletes topic (errors are logged: it is cleanup), over
// connections of its own (kafka-go's DefaultTransport keeps pooled
// connections across a broker restart).
func deleteTopic(t testing.TB, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers.Addr(brokers.Kafka)), Timeout: opTimeout, Transport: tr}
	res, err := c.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Logf("delete topic %s: %v", topic, err)
	}
}
