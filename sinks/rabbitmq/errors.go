package rabbitmq

import (
	"errors"
	"fmt"
)

// Errors of the RabbitMQ sink, checked with errors.Is. Every one of them
// means "not delivered (or not known to be delivered)": the caller retries
// the outcome on its destination schedule.
var (
	// ErrClosed is returned by Deliver after Close, and to the Delivers
	// Close cut short.
	ErrClosed = errors.New("rabbitmq publisher closed")
	// ErrUnroutable is returned when the broker returned the message
	// (basic.return): no queue is bound to the exchange for the routing
	// key. The message was not stored anywhere. The error is a
	// *ReturnedError.
	ErrUnroutable = errors.New("message unroutable: no queue bound for the routing key")
	// ErrNacked is returned when the broker answered the publish with
	// basic.nack: it could not take responsibility for the message.
	ErrNacked = errors.New("broker nacked the message")
	// ErrNotConfirmed is returned when the channel or connection closed
	// before the broker confirmed the message: it may or may not have been
	// stored, so a retry can duplicate it (consumers drop duplicates by
	// message-id / ferry-id).
	ErrNotConfirmed = errors.New("channel closed before the broker confirmed the message; it may or may not have been delivered")
	// ErrExchangeNotFound is returned when the sink's exchange does not
	// exist. The sink checks an exchange on its own short-lived channel
	// before its first publish, so a missing exchange never closes the
	// channel the other sinks of the Publisher share.
	ErrExchangeNotFound = errors.New("exchange not found")
)

// ReturnedError is an unroutable message the broker returned
// (basic.return). It matches ErrUnroutable with errors.Is.
type ReturnedError struct {
	// Exchange and RoutingKey are where the message was published.
	Exchange, RoutingKey string
	// Code and Text are the broker's reply (312 NO_ROUTE).
	Code uint16
	Text string
}

// Error implements error.
func (e *ReturnedError) Error() string {
	return fmt.Sprintf("broker returned the message published to exchange %q with routing key %q: %d %s",
		e.Exchange, e.RoutingKey, e.Code, e.Text)
}

// Is reports whether target is ErrUnroutable.
func (e *ReturnedError) Is(target error) bool { return target == ErrUnroutable }
