package backend

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferrydev/ferry/dispatcher"
)

// FuzzEncodeBatch: any batch of broker messages (ids, headers, keys,
// payloads, content types as the broker gave them) encodes to a JSON array
// of CloudEvents that decodes back to the same ids and payloads, or fails
// as a permanent bad_event; never a panic.
func FuzzEncodeBatch(f *testing.F) {
	f.Add("kafka:t/0/1", "kafka://h/t", "", []byte(`{"a":1}`), "", "k", "X-Trace", "v", 0)
	f.Add("id2", "redis://h/s", "com.example", []byte("\xff\x00bin"), "application/octet-stream", "", "ce-id", "x", 15)
	f.Add("", "", "", []byte{}, "application/json", "", "", "", -1)
	f.Add("id", "::not a uri", "t", []byte(`"\ud800"`), "text/json", "key", "Data", "d", 1<<20)
	f.Fuzz(func(t *testing.T, id, source, typ string, payload []byte, ct, key, hname, hvalue string, hops int) {
		ev := dispatcher.Event{ID: id, Source: source, Type: typ, Time: time.Unix(1700000000, 0), Payload: payload,
			ContentType: ct, Key: key, Headers: map[string]string{hname: hvalue}, Hops: hops}
		inv := &dispatcher.Invocation{ID: "b", Batch: []dispatcher.Event{ev, ev}}
		b, err := EncodeBatch(inv)
		if err != nil {
			var de *dispatcher.Error
			if !errors.As(err, &de) || !de.Permanent() {
				t.Fatalf("EncodeBatch error %v is not permanent", err)
			}
			return
		}
		var got []event.Event
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("EncodeBatch wrote %q, which does not decode: %v", b, err)
		}
		if len(got) != 2 {
			t.Fatalf("%d events, want 2", len(got))
		}
		for _, g := range got {
			// The SDK trims ids; the poller matches batch failures trimmed.
			if utf8.ValidString(id) && g.ID() != strings.TrimSpace(id) {
				t.Fatalf("id %q, want %q", g.ID(), strings.TrimSpace(id))
			}
			data := g.Data()
			if g.DataBase64 {
				if !bytes.Equal(data, payload) {
					t.Fatalf("data_base64 %q, want %q", data, payload)
				}
				continue
			}
			var a, w any
			if json.Unmarshal(data, &a) != nil || json.Unmarshal(payload, &w) != nil {
				t.Fatalf("data %q (payload %q) is not JSON", data, payload)
			}
		}
	})
}
