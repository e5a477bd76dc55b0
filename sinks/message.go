package sinks

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/ferrydev/ferry/wire"
)

// Message is an outcome encoded for a message broker: the pinned JSON body
// and the headers (wire.HeaderHops, wire.HeaderTraceParent when set, wire.HeaderID,
// wire.HeaderType).
type Message struct {
	Body    []byte
	Headers map[string]string
}

// Encode encodes o for a message-broker sink.
func Encode(o *wire.Outcome) (Message, error) {
	body, err := json.Marshal(o)
	if err != nil {
		return Message{}, err
	}
	h := map[string]string{
		wire.HeaderHops: strconv.Itoa(o.Hops),
		wire.HeaderID:   o.ID,
		wire.HeaderType: o.Type,
	}
	if o.TraceParent != "" && !strings.ContainsAny(o.TraceParent, "\r\n\x00") {
		h[wire.HeaderTraceParent] = o.TraceParent
	}
	return Message{Body: body, Headers: h}, nil
}
