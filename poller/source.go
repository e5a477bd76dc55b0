// Package poller turns pull into push: a Source reads messages from a broker
// and the poller loop pushes each message or batch through the dispatcher,
// acknowledging only after the outcome. This package holds the Source seam;
// the broker adapters and the loop arrive with the triggers.
package poller

import (
	"context"
	"errors"
	"time"
)

// Message is one message read from a broker.
type Message struct {
	// ID is unique per message, e.g. "kafka:orders/0/42"; used as ce-id.
	ID string
	// Key orders messages when concurrency > 1 (empty: no key).
	Key     string
	Payload []byte
	Headers map[string]string
	Time    time.Time
}

// Batch is a group of messages read together; it is acknowledged as a whole.
type Batch []Message

// AckFunc settles a batch: a nil err commits it (offset, ack, XACK, consume
// success); a non-nil err asks the broker to redeliver it.
type AckFunc func(ctx context.Context, err error) error

// Source reads one broker. The poller loop owns reconnects, batching and
// concurrency; a Source only talks to its broker.
type Source interface {
	// Connect establishes the connection; called again after ErrNotConnected.
	Connect(ctx context.Context) error
	// Read blocks until a batch is available or ctx ends.
	Read(ctx context.Context) (Batch, AckFunc, error)
	// Close releases the connection, committing what was acknowledged.
	Close(ctx context.Context) error
}

// Source errors that tell the poller loop what to do.
var (
	// ErrNotConnected: reconnect with backoff, then Read again.
	ErrNotConnected = errors.New("not connected")
	// ErrEndOfInput: the source has no more messages; stop cleanly.
	ErrEndOfInput = errors.New("end of input")
)
