package kafka

import (
	"strings"
	"testing"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/wire"
)

// FuzzConvert: any Kafka record (key, value, headers with repeated or odd
// names, any partition and offset) becomes a message without a panic: the
// last value of a repeated header wins, content-type (any case) is the
// content type, and the hop count reads as the worker reads it.
func FuzzConvert(f *testing.F) {
	f.Add([]byte("k"), []byte(`{"a":1}`), "ferry-hops", []byte("3"), "Content-Type", []byte("application/json"), 0, int64(42))
	f.Add([]byte(nil), []byte(nil), "", []byte(nil), "", []byte{0xff}, -1, int64(-1))
	f.Add([]byte("k"), []byte("v"), "x", []byte("1"), "x", []byte("2"), 1<<30, int64(1)<<62)
	s := &Source{cfg: Config{Topic: "t"}, uri: "kafka://h/t", scopes: map[int]string{}}
	f.Fuzz(func(t *testing.T, key, value []byte, h1 string, v1 []byte, h2 string, v2 []byte, partition int, offset int64) {
		m := s.convert(kafkago.Message{Topic: "t", Partition: partition, Offset: offset, Key: key, Value: value,
			Headers: []kafkago.Header{{Key: h1, Value: v1}, {Key: h2, Value: v2}}})
		if m.Headers[h2] != string(v2) {
			t.Fatalf("header %q = %q, want the last value %q", h2, m.Headers[h2], v2)
		}
		if strings.EqualFold(h2, "content-type") && m.ContentType != string(v2) {
			t.Fatalf("content type %q, want %q", m.ContentType, v2)
		}
		if n, err := wire.ParseHops(m.Headers[wire.HeaderHops]); err == nil && n < 0 {
			t.Fatalf("hops %d", n)
		}
		if string(m.Key) != string(key) || string(m.Payload) != string(value) || m.Time.IsZero() {
			t.Fatalf("message %+v lost the record's key, value or time", m)
		}
	})
}
