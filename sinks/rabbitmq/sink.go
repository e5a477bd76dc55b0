package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/wire"
)

// AppID is the app-id property of every message a Sink publishes.
const AppID = "ferry"

// Sink publishes outcomes to one exchange with one routing key, through
// its Publisher. It is safe for concurrent use.
type Sink struct {
	p        *Publisher
	exchange string
	key      string
	// checked is set once the exchange is known to exist; cleared when a
	// publish fails with 404 (the exchange was deleted since).
	checked atomic.Bool
}

var _ sinks.Sink = (*Sink)(nil)

// Deliver publishes o once and waits for the broker's confirm, as long as
// ctx allows. It returns nil only once the broker acknowledged the
// message; otherwise an error wrapping ErrUnroutable (no queue bound),
// ErrNacked, ErrNotConfirmed (channel or connection lost: the message may
// have been stored), ErrExchangeNotFound, ErrClosed, or ctx's error. After
// ctx ends the message may still be confirmed later; nothing waits for it.
// The first Deliver to a non-default exchange checks that the exchange
// exists, on a channel of its own.
func (s *Sink) Deliver(ctx context.Context, o *wire.Outcome) error {
	if o == nil {
		return errors.New("rabbitmq: deliver: nil outcome")
	}
	msg, err := publishing(o)
	if err != nil {
		return fmt.Errorf("rabbitmq: encoding outcome %s: %w", o.ID, err)
	}
	c, err := s.p.channel(ctx)
	if err != nil {
		return fmt.Errorf("rabbitmq: delivering %s: %w", o.ID, err)
	}
	if s.exchange != "" && !s.checked.Load() {
		if err := s.checkExchange(ctx, c); err != nil {
			return fmt.Errorf("rabbitmq: delivering %s: %w", o.ID, err)
		}
		s.checked.Store(true)
	}
	done, err := c.publish(ctx, s.exchange, s.key, msg)
	if err != nil {
		return fmt.Errorf("rabbitmq: publishing %s to %s: %w", o.ID, s.target(), s.p.red.Error(err))
	}
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		var aerr *amqp.Error
		if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
			s.checked.Store(false)
		}
		return fmt.Errorf("rabbitmq: publishing %s to %s: %w", o.ID, s.target(), s.p.red.Error(err))
	case <-ctx.Done():
		return fmt.Errorf("rabbitmq: waiting for the broker to confirm %s to %s: %w", o.ID, s.target(), ctx.Err())
	}
}

// target names the destination in errors.
func (s *Sink) target() string {
	if s.exchange == "" {
		return fmt.Sprintf("queue %q (default exchange)", s.key)
	}
	return fmt.Sprintf("exchange %q, routing key %q", s.exchange, s.key)
}

// checkExchange declares the exchange passively on a channel of its own,
// so that a missing exchange (which makes the broker close the channel)
// never closes the channel the Publisher's sinks share. ctx bounds the
// wait; the check itself ends when the connection does, at the latest.
func (s *Sink) checkExchange(ctx context.Context, c *pubChan) error {
	result := make(chan error, 1)
	started := s.p.goTracked(func() {
		ch, err := c.conn.Channel()
		if err != nil {
			result <- fmt.Errorf("checking exchange %q: opening a channel: %w", s.exchange, s.p.red.Error(err))
			return
		}
		// Passive: only existence is checked, not the kind.
		err = ch.ExchangeDeclarePassive(s.exchange, amqp.ExchangeDirect, false, false, false, false, nil)
		var aerr *amqp.Error
		switch {
		case err == nil:
			_ = ch.Close()
		case errors.As(err, &aerr) && aerr.Code == amqp.NotFound:
			// The broker closed the channel.
			err = fmt.Errorf("exchange %q on %s: %w (declare it; Ferry does not)", s.exchange, s.p.addr, ErrExchangeNotFound)
		default:
			_ = ch.Close()
			err = fmt.Errorf("checking exchange %q: %w", s.exchange, s.p.red.Error(err))
		}
		result <- err
	})
	if !started {
		return ErrClosed
	}
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("checking exchange %q: %w", s.exchange, ctx.Err())
	}
}

// publishing encodes o as a persistent AMQP message: the pinned JSON body,
// the sinks.Encode headers as strings, content type application/json,
// message-id o.ID, type o.Type, timestamp o.Time (now when unset).
func publishing(o *wire.Outcome) (amqp.Publishing, error) {
	m, err := sinks.Encode(o)
	if err != nil {
		return amqp.Publishing{}, err
	}
	headers := make(amqp.Table, len(m.Headers))
	for k, v := range m.Headers {
		headers[k] = v
	}
	ts := o.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	return amqp.Publishing{
		Headers:      headers,
		ContentType:  wire.OutcomeContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    o.ID,
		Timestamp:    ts,
		Type:         o.Type,
		AppId:        AppID,
		Body:         m.Body,
	}, nil
}
