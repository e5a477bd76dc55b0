// Package sinks delivers invocation outcomes to destinations: signed
// webhooks, the log, and the message brokers (Kafka, RocketMQ, RabbitMQ,
// Redis Streams). Every sink sends the same wire.Outcome JSON; a failed
// delivery is returned as an error so that the caller
// retries it, counts it and records it, never dropping it silently.
package sinks

import (
	"context"

	"github.com/ferrydev/ferry/wire"
)

// Sink delivers an outcome to one destination. Deliver returns nil only
// once the destination has accepted the outcome; an error means the caller
// should retry it on the destination's schedule.
type Sink interface {
	Deliver(ctx context.Context, o *wire.Outcome) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, o *wire.Outcome) error

// Deliver calls f.
func (f SinkFunc) Deliver(ctx context.Context, o *wire.Outcome) error { return f(ctx, o) }
