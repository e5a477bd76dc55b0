package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/wire"
)

// StatusError is a send the broker answered with a status other than
// SEND_OK: it stored the message but could not flush it to disk or to its
// replica in time. The outcome may be delivered; a retry may duplicate it.
type StatusError struct {
	// Status is the broker's send status, e.g. "FLUSH_DISK_TIMEOUT".
	Status string
	// MsgID is the id the client gave the message.
	MsgID string
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("broker answered %s (message %s), not SEND_OK", e.Status, e.MsgID)
}

// statusName names a client send status as the broker does.
func statusName(s primitive.SendStatus) string {
	switch s {
	case primitive.SendOK:
		return "SEND_OK"
	case primitive.SendFlushDiskTimeout:
		return "FLUSH_DISK_TIMEOUT"
	case primitive.SendFlushSlaveTimeout:
		return "FLUSH_SLAVE_TIMEOUT"
	case primitive.SendSlaveNotAvailable:
		return "SLAVE_NOT_AVAILABLE"
	default:
		return "status " + strconv.Itoa(int(s))
	}
}

// Sink sends outcomes to one topic with one tag, through its Producer. It
// is safe for concurrent use.
type Sink struct {
	p     *Producer
	topic string
	tag   string
	err   error // invalid topic or tag
}

var _ sinks.Sink = (*Sink)(nil)

// Deliver sends o once with SendSync (the client may resend it to another
// queue up to Retries times) and returns nil only when the broker answered
// SEND_OK. Another status is a *StatusError; a transport failure, an
// unknown topic or an outage the client's error. Deliver returns when ctx
// ends even if the client does not (its name server lookups ignore ctx):
// the send then finishes in the background, tracked by Close. A ctx that
// is already over sends nothing.
func (s *Sink) Deliver(ctx context.Context, o *wire.Outcome) error {
	if o == nil {
		return errors.New("rocketmq: deliver: nil outcome")
	}
	if s.err != nil {
		return s.err
	}
	msg, err := message(s.topic, s.tag, o)
	if err != nil {
		return fmt.Errorf("rocketmq: encoding outcome %s: %w", o.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rocketmq: delivering %s to topic %s: %w", o.ID, s.topic, err)
	}
	if !s.p.begin() {
		return fmt.Errorf("rocketmq: delivering %s: %w", o.ID, ErrClosed)
	}
	result := make(chan error, 1)
	go func() {
		defer s.p.sends.Done()
		result <- s.p.send(ctx, msg)
	}()
	select {
	case err = <-result:
	case <-ctx.Done():
		select {
		case err = <-result: // finished just in time
		default:
			err = ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("rocketmq: sending %s to topic %s: %w", o.ID, s.topic, err)
	}
	return nil
}

// send calls SendSync and turns a status other than SEND_OK into an error.
func (p *Producer) send(ctx context.Context, msg *primitive.Message) error {
	res, err := p.client.SendSync(ctx, msg)
	switch {
	case err != nil:
		return err
	case res == nil:
		return errors.New("client returned no send result")
	case res.Status != primitive.SendOK:
		return &StatusError{Status: statusName(res.Status), MsgID: res.MsgID}
	}
	return nil
}

// message encodes o as a RocketMQ message on topic: the pinned JSON body,
// the sinks.Encode headers as user properties, keys = o.ID, and tag (when
// not empty).
func message(topic, tag string, o *wire.Outcome) (*primitive.Message, error) {
	m, err := sinks.Encode(o)
	if err != nil {
		return nil, err
	}
	msg := primitive.NewMessage(topic, m.Body)
	for k, v := range m.Headers {
		if !validProperty(v) {
			return nil, fmt.Errorf("property %s: %q contains a control character", k, v)
		}
		msg.WithProperty(k, v)
	}
	if o.ID != "" {
		msg.WithKeys([]string{o.ID})
	}
	if tag != "" {
		msg.WithTag(tag)
	}
	return msg, nil
}

// validProperty reports whether v can travel as a property value: the
// remoting protocol separates properties with \x01 and \x02.
func validProperty(v string) bool {
	return !strings.ContainsAny(v, "\x00\x01\x02")
}
