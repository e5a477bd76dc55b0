package kafkatest

import (
	"context"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/test/brokers"
)

var _ brokers.Reader = (*Topic)(nil)

// ReadBack reads every partition of the topic with a plain kafka-go reader
// (no consumer group) from its first offset, once the partitions hold want
// messages between them, and returns them partition by partition. Key is
// the message key; ContentType the "content-type" header.
func (tp *Topic) ReadBack(t testing.TB, want int, within time.Duration) []brokers.Msg {
	t.Helper()
	return ReadTopic(t, tp.b.Addr, tp.name, tp.parts, want, within)
}

// ReadTopic is ReadBack for any topic named on the broker at addr, with
// its partition ids parts.
func ReadTopic(t testing.TB, addr, topic string, parts []int, want int, within time.Duration) []brokers.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
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
	var offs []kafkago.PartitionOffsets
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		lo, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
		if err != nil {
			t.Fatalf("kafkatest: list offsets of %s: %v", topic, err)
		}
		offs = lo.Topics[topic]
		n := int64(0)
		for _, po := range offs {
			if po.Error != nil {
				t.Fatalf("kafkatest: list offsets of %s/%d: %v", topic, po.Partition, po.Error)
			}
			n += po.LastOffset - po.FirstOffset
		}
		if n >= int64(want) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kafkatest: %s holds %d messages after %v, want %d", topic, n, within, want)
		case <-time.After(wait): // polling the broker's offsets
		}
	}
	var out []brokers.Msg
	for _, po := range offs {
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers: []string{addr}, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 200 * time.Millisecond,
		})
		if err := r.SetOffset(po.FirstOffset); err != nil {
			t.Fatalf("kafkatest: set offset: %v", err)
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("kafkatest: read %s/%d: %v", topic, po.Partition, err)
			}
			msg := brokers.Msg{Key: string(m.Key), Payload: m.Value, Headers: map[string]string{}}
			for _, h := range m.Headers {
				msg.Headers[h.Key] = string(h.Value)
			}
			msg.ContentType = msg.Headers["content-type"]
			out = append(out, msg)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		r.Close()
	}
	return out
}
