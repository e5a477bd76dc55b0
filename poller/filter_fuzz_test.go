package poller

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzFilterMatch: a trigger filter on any message (payload, headers)
// answers without a panic; a JSON filter matches only a JSON object whose
// field has a wanted value, and a header filter only a message with that
// header (names case-insensitive).
func FuzzFilterMatch(f *testing.F) {
	f.Add([]byte(`{"status":"paid","n":42}`), "status", "paid", "X-Kind", "order", "x-kind", "order")
	f.Add([]byte(`{"status":null}`), "status", "null", "", "", "k", "")
	f.Add([]byte(`[1,2]`), "0", "1", "a", "b", "A", "b")
	f.Add([]byte(`{"s":"\u00e9\ud800"}`), "s", "é", "h", "v", "H", "w")
	f.Add([]byte(`{"a":{"b":1}}`), "a", `{"b":1}`, "h", "v", "h", "v")
	f.Fuzz(func(t *testing.T, payload []byte, field, want, hname, hvalue, fname, fvalue string) {
		m := &Message{Payload: payload, Headers: map[string]string{hname: hvalue}}
		if !(*Filter)(nil).Match(m) || !(&Filter{}).Match(m) {
			t.Fatal("an empty filter refused a message")
		}
		if (&Filter{JSON: map[string][]string{field: {want}}}).Match(m) {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(payload, &obj); err != nil {
				t.Fatalf("JSON filter matched a payload that is no object: %q", payload)
			}
			if raw, ok := obj[field]; !ok || jsonText(raw) != want {
				t.Fatalf("JSON filter %s=%q matched %q", field, want, payload)
			}
		}
		if (&Filter{Headers: map[string][]string{fname: {fvalue}}}).Match(m) {
			if !strings.EqualFold(fname, hname) || hvalue != fvalue {
				t.Fatalf("header filter %s=%q matched headers %s=%q", fname, fvalue, hname, hvalue)
			}
		}
	})
}

// TestPickMatchesTrimmedIDs: a batch response names items by the ce-id the
// function saw, which the CloudEvents SDK trimmed (found by
// FuzzEncodeBatch): a message id " 7" is named "7" and must still be
// retried, not acknowledged as a success.
func TestPickMatchesTrimmedIDs(t *testing.T) {
	a, b := &item{m: &Message{ID: " 7"}}, &item{m: &Message{ID: "8"}}
	got := pick([]*item{a, b}, []string{"7"})
	if len(got) != 1 || got[0] != a {
		t.Fatalf("pick = %v, want the item with id %q", got, a.m.ID)
	}
}
