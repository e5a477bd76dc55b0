package redisstream

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydev/ferry/poller"
)

// Entry fields with a meaning of their own.
const (
	// FieldData is the entry field carrying the payload.
	FieldData = "data"
	// FieldKey is the entry field carrying the message key.
	FieldKey = "key"
	// FieldContentType is the entry field carrying the payload's content type.
	FieldContentType = "content-type"
)

// toMessage turns a stream entry into a Message without its Ack.
//
// Payload is the field "data"; every other field travels as a header. An
// entry without "data" is sent as a JSON object of all its fields, with
// content type application/json.
func (s *Source) toMessage(id string, values map[string]any) *poller.Message {
	m := &poller.Message{
		ID:     "redis:" + s.cfg.Stream + "/" + id,
		Scope:  s.scope,
		Source: s.source,
		Time:   entryTime(id),
	}
	if d, ok := values[FieldData]; ok {
		// The common case, read once: no copy of the fields.
		m.Payload = []byte(fieldString(d))
		if len(values) > 1 {
			m.Headers = make(map[string]string, len(values)-1)
			for k, v := range values {
				if k != FieldData {
					m.Headers[k] = fieldString(v)
				}
			}
		}
		m.Key, m.ContentType = m.Headers[FieldKey], m.Headers[FieldContentType]
		return m
	}
	fields := make(map[string]string, len(values))
	for k, v := range values {
		fields[k] = fieldString(v)
	}
	m.Headers = fields
	m.Key = fields[FieldKey]
	// A map of strings always marshals.
	m.Payload, _ = json.Marshal(fields)
	m.ContentType = "application/json"
	return m
}

// fieldString renders one field value (go-redis hands out strings; other
// types are rendered defensively).
func fieldString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// entryTime is the time encoded in an entry id "<ms>-<seq>", or now when
// the id does not parse.
func entryTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Now()
	}
	return time.UnixMilli(n)
}

// compareIDs orders two entry ids "<ms>-<seq>" numerically (-1, 0, +1).
func compareIDs(a, b string) int {
	am, as := splitID(a)
	bm, bs := splitID(b)
	switch {
	case am < bm:
		return -1
	case am > bm:
		return 1
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

func splitID(id string) (ms, seq uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(a, 10, 64)
	seq, _ = strconv.ParseUint(b, 10, 64)
	return ms, seq
}
