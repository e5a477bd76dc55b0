package sinks

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Header names every message-broker sink sets on the messages it sends: the
// same names the pollers read (a header, a property or a stream field,
// depending on the broker).
const (
	// HeaderHops carries the outcome's hop count (Outcome.Hops).
	HeaderHops = "ferry-hops"
	// HeaderTraceParent carries the W3C traceparent, when there is one.
	HeaderTraceParent = "traceparent"
	// HeaderID carries the outcome's id (the task or message id), so that
	// consumers can drop duplicates of an at-least-once delivery.
	HeaderID = "ferry-id"
	// HeaderType carries the outcome type (ferry.task.succeeded / failed).
	HeaderType = "ferry-type"
	// ContentType is the content type of every outcome message body.
	ContentType = "application/json"
)

// Message is an outcome encoded for a message broker: the pinned JSON body
// and the headers (HeaderHops, HeaderTraceParent when set, HeaderID,
// HeaderType).
type Message struct {
	Body    []byte
	Headers map[string]string
}

// Encode encodes o for a message-broker sink.
func Encode(o *Outcome) (Message, error) {
	body, err := json.Marshal(o)
	if err != nil {
		return Message{}, err
	}
	h := map[string]string{
		HeaderHops: strconv.Itoa(o.Hops),
		HeaderID:   o.ID,
		HeaderType: o.Type,
	}
	if o.TraceParent != "" && !strings.ContainsAny(o.TraceParent, "\r\n\x00") {
		h[HeaderTraceParent] = o.TraceParent
	}
	return Message{Body: body, Headers: h}, nil
}
