// Package poller turns pull into push: a Source reads messages from a broker
// and the poller loop pushes each message or batch through the dispatcher,
// settling (committing / acking) each message only after its outcome.
package poller

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// AckFunc settles one message: a nil err commits it (Kafka offset, AMQP ack,
// XACK, RocketMQ consume success); a non-nil err asks the broker to deliver
// it again (AMQP nack with requeue, pending entry left for a claim, offset
// not committed). The poller calls it exactly once per message, and only
// after the message's outcome: succeeded, or failed and delivered to the
// on_failure destinations. It must not block: sources that commit
// synchronously batch the commits behind it, and the poller passes a
// context without a deadline (an Ack that talks to the broker bounds the
// call itself).
type AckFunc func(ctx context.Context, err error) error

// Message is one message read from a broker.
type Message struct {
	// ID is unique per message, e.g. "kafka:orders/0/42"; sent as ce-id
	// and used in batch responses to name failed items.
	ID string
	// Scope is the ordering scope the broker keeps order in: a Kafka
	// partition, a RocketMQ message queue, an AMQP queue, a Redis stream.
	// With concurrency 1 order is kept per scope.
	Scope string
	// Key orders messages within a scope when concurrency > 1 (the Kafka
	// key, the RocketMQ sharding key / keys, ...). Empty: no key.
	Key string
	// Source is the CloudEvents source, e.g. "kafka://127.0.0.1:9092/orders".
	Source  string
	Payload []byte
	// ContentType of the payload when the broker carries one.
	ContentType string
	// Headers are the message headers / properties / fields, carried to the
	// function. The hop count is read from the wire.HeaderHops entry.
	Headers map[string]string
	// Time is when the message was produced (or read, when unknown).
	Time time.Time
	// Ack settles the message; set by the Source.
	Ack AckFunc
}

// Source reads one broker. The poller loop owns reconnects, batching,
// ordering, retries and concurrency; a Source only talks to its broker.
type Source interface {
	// Connect establishes the connection (joins the consumer group,
	// declares nothing the user did not ask for). Called again, with
	// backoff, after Read returns ErrNotConnected.
	Connect(ctx context.Context) error
	// Read blocks until at least one message is available, or ctx ends,
	// and returns the messages in the order the broker keeps (per Scope).
	// It returns ErrNotConnected (wrapped) when the connection is lost.
	Read(ctx context.Context) ([]*Message, error)
	// Close commits what was acknowledged and releases the connection.
	// Messages read but never acknowledged are redelivered by the broker.
	Close(ctx context.Context) error
}

// Lagger is implemented by sources that can tell how far the consumer group
// is behind the newest message (for the ferry_trigger_lag metric).
type Lagger interface {
	Lag(ctx context.Context) (int64, error)
}

// PartitionLagger is a Lagger that also tells the lag of each partition or
// message queue (for ferry_trigger_partition_lag), keyed by its name.
type PartitionLagger interface {
	PartitionLag(ctx context.Context) (map[string]int64, error)
}

// Source errors that tell the poller loop what to do.
var (
	// ErrNotConnected: reconnect with backoff, then Read again.
	ErrNotConnected = errors.New("not connected")
	// ErrEndOfInput: the source has no more messages; stop cleanly.
	ErrEndOfInput = errors.New("end of input")
	// ErrRejoin is an ErrNotConnected that is no fault: the source must
	// connect again to redeliver what was nacked (a Kafka consumer re-reads
	// from the committed offsets). The loop reconnects at once, quietly.
	ErrRejoin = fmt.Errorf("rejoin to redeliver nacked messages: %w", ErrNotConnected)
)
