package backend

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// BatchContentType is the media type of a poller batch: a JSON array of
// structured-mode CloudEvents.
const BatchContentType = "application/cloudevents-batch+json"

// PartitionKeyExtension carries a message's key (CloudEvents partitioning
// extension).
const PartitionKeyExtension = "partitionkey"

// EncodeBatch renders inv.Batch as a JSON array of structured-mode
// CloudEvents: JSON payloads are embedded as `data`, others as
// `data_base64`; `ferryhops` is each message's hop count + 1; the key is
// `partitionkey`; message headers whose names, lower-cased and stripped to
// [a-z0-9], are valid extension names travel as string extensions.
func EncodeBatch(inv *dispatcher.Invocation) ([]byte, error) {
	events := make([]event.Event, len(inv.Batch))
	for i, e := range inv.Batch {
		ev := newEvent(e.ID, e.Source, e.Type, e.Time)
		for k, v := range e.Headers {
			if name := extensionName(k); name != "" {
				ev.SetExtension(name, v)
			}
		}
		ev.SetExtension(wire.ExtensionHops, e.Hops+1)
		if e.Key != "" {
			ev.SetExtension(PartitionKeyExtension, e.Key)
		}
		if err := ev.SetData(batchData(e)); err != nil {
			return nil, dispatcher.Permanent("bad_event", err)
		}
		if err := ev.Validate(); err != nil {
			return nil, dispatcher.Permanent("bad_event", err)
		}
		events[i] = ev
	}
	b, err := json.Marshal(events)
	if err != nil {
		return nil, dispatcher.Permanent("bad_event", err)
	}
	return b, nil
}

// newEvent starts a CloudEvent with its required attributes; an empty type
// is DefaultEventType and a zero time is now.
func newEvent(id, source, typ string, t time.Time) event.Event {
	ev := event.New(event.CloudEventsVersionV1)
	ev.SetID(id)
	ev.SetSource(source)
	if typ == "" {
		typ = DefaultEventType
	}
	ev.SetType(typ)
	if t.IsZero() {
		t = time.Now()
	}
	ev.SetTime(t)
	return ev
}

// batchData returns the content type and data of e: JSON payloads (typed
// as JSON, or untyped and valid JSON, as Kafka and Redis messages usually
// are) are embedded as data; anything else goes as data_base64.
func batchData(e dispatcher.Event) (string, any) {
	ct := e.ContentType
	isJSON := strings.Contains(ct, "json") || (ct == "" && json.Valid(e.Payload))
	if isJSON && json.Valid(e.Payload) {
		if ct == "" {
			ct = "application/json"
		}
		return ct, json.RawMessage(e.Payload)
	}
	if ct == "" {
		ct = DefaultContentType
	}
	return ct, e.Payload
}

// extensionName maps a header name to a CloudEvents extension name, or ""
// when it cannot be one (reserved, empty, or longer than 20 characters).
func extensionName(header string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(header) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	name := b.String()
	switch name {
	case "", "id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time",
		"data", "database64", wire.ExtensionHops, PartitionKeyExtension, "contenttype", wire.HeaderTraceParent, "tracestate":
		return ""
	}
	if len(name) > 20 {
		return ""
	}
	return name
}
