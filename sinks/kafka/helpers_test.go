package kafka_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/poller/kafka/kafkatest"
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

// record is one message read back from a topic.
type record struct {
	key, value string
	headers    map[string]string
}

// readTopic reads every message of tp (up to the partitions' end offsets
// at the time of the call) with a plain kafka-go reader per partition.
func readTopic(t testing.TB, tp *kafkatest.Topic) []record {
	t.Helper()
	return readTopicName(t, tp.Name(), tp.Partitions())
}

func readTopicName(t testing.TB, topic string, parts []int) []record {
	t.Helper()
	addr := brokers.Addr(brokers.Kafka)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	// A Transport of its own: kafka-go's DefaultTransport keeps pooled
	// connections across a broker restart, and a Client does not retry the
	// request that finds one dead ("unexpected EOF").
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafkago.Client{Addr: kafkago.TCP(addr), Timeout: opTimeout, Transport: tr}
	reqs := make([]kafkago.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafkago.FirstOffsetOf(p), kafkago.LastOffsetOf(p))
	}
	lo, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	var out []record
	for _, po := range lo.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers: []string{addr}, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 200 * time.Millisecond,
		})
		if err := r.SetOffset(po.FirstOffset); err != nil {
			t.Fatalf("set offset: %v", err)
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, po.Partition, err)
			}
			rec := record{key: string(m.Key), value: string(m.Value), headers: map[string]string{}}
			for _, h := range m.Headers {
				rec.headers[h.Key] = string(h.Value)
			}
			out = append(out, rec)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// deleteTopic deletes topic (errors are logged: it is cleanup), over
// connections of its own.
func deleteTopic(t testing.TB, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	tr := &kafkago.Transport{} // not DefaultTransport: see readTopicName
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
