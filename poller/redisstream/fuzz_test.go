package redisstream

import (
	"encoding/json"
	"testing"
)

// FuzzToMessage: any stream entry (field names and values as Redis gave
// them) becomes a message without a panic: the payload is the field
// "data", or, without it, a JSON object of every field; the other fields
// are headers.
func FuzzToMessage(f *testing.F) {
	f.Add("1700000000000-0", "data", "payload", "key", "k1")
	f.Add("1-1", "a", "b", "content-type", "text/plain")
	f.Add("not-an-id", "data", "", "data", "dup")
	f.Add("", "", "\xff", "ferry-hops", "99999999999999999999")
	s := &Source{cfg: Config{Stream: "s"}, scope: "redis:s", source: "redis://h/s"}
	f.Fuzz(func(t *testing.T, id, k1, v1, k2, v2 string) {
		values := map[string]any{k1: v1, k2: v2}
		m := s.toMessage(id, values)
		if d, ok := values[FieldData]; ok {
			if string(m.Payload) != d.(string) {
				t.Fatalf("payload %q, want the data field %q", m.Payload, d)
			}
			for k, v := range values {
				if k != FieldData && m.Headers[k] != v.(string) {
					t.Fatalf("header %q = %q, want %q", k, m.Headers[k], v)
				}
			}
			return
		}
		var fields map[string]string
		if err := json.Unmarshal(m.Payload, &fields); err != nil || len(fields) != len(values) {
			t.Fatalf("payload %q is not the JSON of %d fields: %v", m.Payload, len(values), err)
		}
	})
}
