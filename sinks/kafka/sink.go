package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/wire"
)

// HeaderContentType is the message header carrying the body's content type
// (sinks.ContentType); poller/kafka reads it as the payload's content type.
const HeaderContentType = "content-type"

// Sink produces outcomes to one topic through a shared Producer. It
// implements sinks.Sink and is safe for concurrent use. Get one from
// Producer.Sink.
type Sink struct {
	p     *Producer
	topic string
	err   error // an invalid topic, found when the Sink was made
}

var _ sinks.Sink = (*Sink)(nil)

// Topic is the topic the Sink produces to.
func (s *Sink) Topic() string { return s.topic }

// Deliver produces o as one message (see the package doc) and returns nil
// once every in-sync replica acknowledged it. It makes one delivery: a
// failed batch is retried by kafka-go a few times at most, then Deliver
// returns an error naming the topic and brokers, to be retried by the
// caller. Deliver returns when ctx ends (the message may still be written
// later, see the package doc); an already ended ctx writes nothing.
func (s *Sink) Deliver(ctx context.Context, o *wire.Outcome) error {
	if o == nil {
		return errors.New("kafka sink: nil outcome")
	}
	if s.err != nil {
		return s.err
	}
	m, err := message(s.topic, o)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.failed(o, err)
	}
	if !s.p.enter() {
		return s.failed(o, ErrClosed)
	}
	defer s.p.leave()
	if err := s.p.write(ctx, m); err != nil {
		return s.failed(o, unwrapWriteErrors(err))
	}
	return nil
}

// failed wraps a delivery error with the outcome id, topic and brokers.
func (s *Sink) failed(o *wire.Outcome, err error) error {
	return fmt.Errorf("kafka sink: deliver %s to topic %q at %v: %w", o.ID, s.topic, s.p.brokers, err)
}

// unwrapWriteErrors returns the error of the one message a Deliver writes
// instead of kafka-go's WriteErrors list, so that errors.Is / As see it.
func unwrapWriteErrors(err error) error {
	var werr kafkago.WriteErrors
	if errors.As(err, &werr) {
		for _, e := range werr {
			if e != nil {
				return e
			}
		}
	}
	return err
}

// message encodes o for topic: value = the outcome JSON, key = o.ID,
// headers = sinks.Encode's plus content-type, in a stable order.
func message(topic string, o *wire.Outcome) (kafkago.Message, error) {
	enc, err := sinks.Encode(o)
	if err != nil {
		return kafkago.Message{}, fmt.Errorf("kafka sink: encoding outcome %s: %w", o.ID, err)
	}
	keys := make([]string, 0, len(enc.Headers))
	for k := range enc.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	headers := make([]kafkago.Header, 0, len(keys)+1)
	headers = append(headers, kafkago.Header{Key: HeaderContentType, Value: []byte(wire.OutcomeContentType)})
	for _, k := range keys {
		headers = append(headers, kafkago.Header{Key: k, Value: []byte(enc.Headers[k])})
	}
	return kafkago.Message{
		Topic:   topic,
		Key:     []byte(o.ID),
		Value:   enc.Body,
		Headers: headers,
	}, nil
}
