package poller

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Filter selects the messages a trigger invokes. Every listed header and
// every listed top-level JSON field must equal one of its values; header
// names match case-insensitively. Values of JSON fields compare as their
// JSON text without quotes for strings: `paid`, `42`, `true`, `null`.
// Messages that do not match are committed without invoking. A nil Filter
// matches everything.
type Filter struct {
	Headers map[string][]string
	JSON    map[string][]string
}

// Match reports whether m passes the filter.
func (f *Filter) Match(m *Message) bool {
	if f == nil {
		return true
	}
	for name, want := range f.Headers {
		v, ok := header(m.Headers, name)
		if !ok || !contains(want, v) {
			return false
		}
	}
	if len(f.JSON) == 0 {
		return true
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(m.Payload, &obj); err != nil {
		return false
	}
	for field, want := range f.JSON {
		raw, ok := obj[field]
		if !ok || !contains(want, jsonText(raw)) {
			return false
		}
	}
	return true
}

func header(h map[string]string, name string) (string, bool) {
	if v, ok := h[name]; ok {
		return v, true
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func contains(list []string, v string) bool {
	for _, w := range list {
		if w == v {
			return true
		}
	}
	return false
}

// jsonText is a JSON value's text: strings unquoted, others as written.
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// BatchResponse is what a function may answer to a batch to report the
// items that failed, as AWS Lambda's partial batch responses do:
//
//	{"batchItemFailures": [{"itemIdentifier": "<ce id of the message>"}]}
//
// Only the named items are retried; the others count as succeeded. An
// empty list, or any other body, means the whole batch succeeded.
type BatchResponse struct {
	BatchItemFailures []struct {
		ItemIdentifier string `json:"itemIdentifier"`
	} `json:"batchItemFailures"`
}

// ParseBatchFailures returns the ids of the failed items named by a batch
// response body, or nil when it names none (or is not such a response).
func ParseBatchFailures(body []byte) []string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil
	}
	var r BatchResponse
	if json.Unmarshal(body, &r) != nil {
		return nil
	}
	ids := make([]string, 0, len(r.BatchItemFailures))
	for _, f := range r.BatchItemFailures {
		if f.ItemIdentifier != "" {
			ids = append(ids, f.ItemIdentifier)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return ids
}
