package kafkatest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/test/brokers"
)

var _ brokers.BulkTopic = (*Topic)(nil)

// bulkChunk is how many messages ProduceN builds and hands to the writer
// at a time, which bounds its memory.
const bulkChunk = 50000

// ProduceN writes n messages, msg(i) for i in [0, n), as Produce does
// (acks from all in-sync replicas, the Key picks the partition) but fast
// enough for benchmarks of millions of messages: an asynchronous writer
// sends batches of up to 5,000 messages per partition back to back, and
// ProduceN returns once every batch is acknowledged. Each partition
// receives its messages in order.
func (tp *Topic) ProduceN(t testing.TB, n int, msg func(i int) brokers.Msg) {
	t.Helper()
	var (
		mu   sync.Mutex
		errs []error
	)
	w := &kafkago.Writer{
		Addr:         kafkago.TCP(tp.b.Addr),
		Topic:        tp.name,
		Balancer:     &kafkago.Hash{},
		RequiredAcks: kafkago.RequireAll,
		Async:        true,
		BatchSize:    5000,
		BatchBytes:   4 << 20,
		BatchTimeout: 2 * time.Millisecond,
		WriteTimeout: opTimeout,
		MaxAttempts:  10,
		Transport:    &kafkago.Transport{DialTimeout: 5 * time.Second, ClientID: "ferry-test"},
		Completion: func(_ []kafkago.Message, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		},
	}
	ctx := context.Background()
	for from := 0; from < n; from += bulkChunk {
		out := make([]kafkago.Message, min(bulkChunk, n-from))
		for i := range out {
			m := msg(from + i)
			km := kafkago.Message{Value: m.Payload}
			if m.Key != "" {
				km.Key = []byte(m.Key)
			}
			for k, v := range m.Headers {
				km.Headers = append(km.Headers, kafkago.Header{Key: k, Value: []byte(v)})
			}
			out[i] = km
		}
		if err := w.WriteMessages(ctx, out...); err != nil {
			_ = w.Close()
			t.Fatalf("kafkatest: produce messages %d-%d of %d to %s: %v", from, from+len(out), n, tp.name, err)
		}
	}
	// Close flushes the pending batches and waits for their completions.
	if err := w.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("kafkatest: produce %d messages to %s: %v", n, tp.name, err)
	}
}
