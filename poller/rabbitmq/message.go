package rabbitmq

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/wire"
)

// HeaderKey is the AMQP header whose value becomes Message.Key (the
// ordering key within the queue when the trigger runs with concurrency >
// 1). Without it a message has no key.
const HeaderKey = "ferry-key"

// HeaderContentType is the Message.Headers entry carrying the AMQP
// content-type property.
const HeaderContentType = "content-type"

// wellKnown headers are stored under their lower-case name whatever case a
// producer used, so that the loop guard and tracing always find them.
var wellKnown = []string{wire.HeaderHops, wire.HeaderTraceParent, HeaderKey}

// message converts a delivery of session ss.
//
// Message.ID is the AMQP message-id property when the producer set one,
// which is stable across redeliveries. Otherwise it is
// "rabbitmq:<queue>/<delivery tag>@<channel generation>", unique but NOT
// stable: a redelivery gets a new tag. Producers should set message-id so
// that receivers can drop duplicates by ce-id.
func (s *Source) message(ss *session, d amqp.Delivery) *poller.Message {
	ss.acks.add(d.DeliveryTag) // before the message can be settled
	// The producer's message-id as a CloudEvents id carries it: trimmed,
	// valid UTF-8 (batch responses name items by that id).
	id := strings.ToValidUTF8(strings.TrimSpace(d.MessageId), "\uFFFD")
	if id == "" {
		id = fmt.Sprintf("rabbitmq:%s/%d@%d", s.cfg.Queue, d.DeliveryTag, ss.gen)
	}
	headers := make(map[string]string, len(d.Headers)+1)
	for k, v := range d.Headers {
		for _, name := range wellKnown {
			if strings.EqualFold(k, name) {
				k = name
			}
		}
		headers[k] = stringify(v)
	}
	if d.ContentType != "" {
		headers[HeaderContentType] = d.ContentType
	}
	t := d.Timestamp
	if t.IsZero() {
		t = time.Now()
	}
	return &poller.Message{
		ID:          id,
		Scope:       s.cfg.scope,
		Key:         headers[HeaderKey],
		Source:      s.cfg.source,
		Payload:     d.Body,
		ContentType: d.ContentType,
		Headers:     headers,
		Time:        t,
		Ack:         s.ackFunc(ss, d.DeliveryTag, id),
	}
}

// ackFunc settles delivery tag of session ss (see tracker): a nil error
// records an ack, sent as part of one basic.ack with multiple=true once
// every older delivery of the channel is settled (at once when this one
// was the oldest); a non-nil error sends basic.nack with requeue at once.
// Neither waits for the broker (the frames have no reply). An ack still
// waiting when the channel closes is lost with the channel, and the broker
// redelivers the message: a duplicate, never a loss; Close sends the
// waiting acks before closing the channel.
// A delivery of a closed or replaced channel is never settled on another
// channel (its tag means nothing there, and an unknown tag makes the
// broker close the channel): such an Ack returns ErrStaleDelivery and the
// broker redelivers the message.
func (s *Source) ackFunc(ss *session, tag uint64, id string) poller.AckFunc {
	var settled atomic.Bool
	return func(_ context.Context, cause error) error {
		if !settled.CompareAndSwap(false, true) {
			return fmt.Errorf("rabbitmq: ack %s: %w", id, ErrAlreadySettled)
		}
		if s.gen.Load() != ss.gen || ss.ch.IsClosed() {
			return fmt.Errorf("rabbitmq: ack %s (channel generation %d): %w", id, ss.gen, ErrStaleDelivery)
		}
		if err := ss.acks.settle(tag, cause == nil); err != nil {
			// basic.ack / basic.nack is a one-way frame: it fails only when
			// the channel or connection is (now) closed, and the library
			// then shuts the connection down. The broker requeues.
			return fmt.Errorf("rabbitmq: ack %s (channel generation %d): %w", id, ss.gen, s.cfg.clean(err))
		}
		return nil
	}
}

// stringify renders an AMQP field value as a header string: text as is,
// numbers in decimal, times in RFC 3339 (UTC), nested tables and arrays
// as JSON.
func stringify(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case int8:
		return strconv.FormatInt(int64(v), 10)
	case int16:
		return strconv.FormatInt(int64(v), 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case uint8:
		return strconv.FormatUint(uint64(v), 10)
	case uint16:
		return strconv.FormatUint(uint64(v), 10)
	case uint32:
		return strconv.FormatUint(uint64(v), 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	case amqp.Decimal:
		return decimal(v)
	default:
		b, err := json.Marshal(jsonable(v))
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

// jsonable converts nested AMQP values so that JSON shows them as
// stringify would (bytes as text, decimals as numbers).
func jsonable(v any) any {
	switch v := v.(type) {
	case amqp.Table:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = jsonable(x)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = jsonable(x)
		}
		return a
	case []byte:
		return string(v)
	case amqp.Decimal:
		return json.Number(decimal(v))
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	default:
		return v
	}
}

// decimal renders an AMQP decimal (Value × 10^-Scale).
func decimal(d amqp.Decimal) string {
	return new(big.Rat).SetFrac(big.NewInt(int64(d.Value)), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale)), nil)).FloatString(int(d.Scale))
}
