// Package conformance is the delivery contract of Ferry's triggers, written
// once and run against every real broker (as Watermill's pubsub tests and
// Benthos' integration stream tests do). A broker takes part by
// implementing Broker in its own test-support package.
package conformance

import (
	"testing"

	"github.com/ferrydev/ferry/poller"
)

// Msg is a message the suite produces.
type Msg struct {
	// Key routes the message to an ordering scope where the broker routes
	// by key (Kafka partition, RocketMQ queue); also the message key.
	Key     string
	Payload []byte
	Headers map[string]string
}

// Broker is one real broker under test.
type Broker interface {
	// Name is the broker kind as in the trigger config: kafka, rocketmq,
	// rabbitmq, redis.
	Name() string
	// NewTopic creates a fresh, uniquely named topic / queue / stream with
	// the given number of ordering scopes where the broker has them (Kafka
	// partitions, RocketMQ read/write queues; ignored elsewhere).
	NewTopic(t testing.TB, scopes int) Topic
}

// Topic is one topic / queue / stream of a Broker.
type Topic interface {
	// Name is the topic / queue / stream name.
	Name() string
	// SourceYAML is the trigger's `source:` value in flow style for this
	// topic and consumer group, e.g.
	// `{ kafka: { brokers: ["127.0.0.1:9092"], topic: t1, group: g1 } }`.
	// Options the suite needs (a short Redis claim_idle, ...) are included.
	SourceYAML(group string) string
	// Source returns a Source on this topic for the group, not connected.
	Source(t testing.TB, group string) poller.Source
	// Produce sends msgs in order and returns once the broker has them all
	// (acks / confirms). Messages with the same Key land in the same scope.
	Produce(t testing.TB, msgs []Msg)
	// Backlog is how many produced messages the group has not yet
	// committed / acknowledged (0 once its committed position is past all
	// of them).
	Backlog(t testing.TB, group string) int64
}

// BulkTopic is a Topic that also produces large volumes fast, for the
// poller benchmarks (millions of messages): batched or pipelined where
// Produce waits for each message or holds them all in memory.
type BulkTopic interface {
	Topic
	// ProduceN produces n messages, msg(i) for i in [0, n), with the
	// semantics of Produce (same encoding, same scope per Key, the order
	// of each scope kept), and returns once the broker has them all.
	ProduceN(t testing.TB, n int, msg func(i int) Msg)
}
