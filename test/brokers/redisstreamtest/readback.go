package redisstreamtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/brokers"
)

var _ brokers.Reader = (*Topic)(nil)

// ReadBack reads the stream with XRANGE (no consumer group) once it holds
// want entries, and returns them in stream order: Payload is the field
// FieldData, Key the field FieldKey, ContentType the field "content-type",
// and Headers every field but FieldData.
func (tp *Topic) ReadBack(t testing.TB, want int, within time.Duration) []brokers.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		entries, err := tp.client.XRange(ctx, tp.name, "-", "+").Result()
		if err != nil {
			t.Fatalf("redisstreamtest: XRANGE %s: %v", tp.name, err)
		}
		if len(entries) >= want {
			out := make([]brokers.Msg, len(entries))
			for i, e := range entries {
				m := brokers.Msg{Headers: map[string]string{}}
				for k, v := range e.Values {
					s := fmt.Sprint(v)
					if k == FieldData {
						m.Payload = []byte(s)
						continue
					}
					m.Headers[k] = s
				}
				m.Key, m.ContentType = m.Headers[FieldKey], m.Headers["content-type"]
				out[i] = m
			}
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("redisstreamtest: %s holds %d entries after %v, want %d", tp.name, len(entries), within, want)
		case <-time.After(wait): // polling the stream
		}
	}
}
