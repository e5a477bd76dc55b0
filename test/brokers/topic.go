package brokers

import (
	"testing"
	"time"
)

// Msg is a message a test produces to a Topic, or reads back from one with
// the broker's own client library (Reader).
type Msg struct {
	// Key routes the message to an ordering scope where the broker routes
	// by key (Kafka partition, RocketMQ queue); also the message key.
	Key     string
	Payload []byte
	Headers map[string]string
	// ContentType is the broker's content type field when a message is
	// read back from a broker that has one (the AMQP content-type
	// property); empty otherwise. Produce ignores it: a "content-type"
	// header sets the property where there is one.
	ContentType string
}

// Broker is one real broker under test. The implementations live in
// test/brokers/kafkatest, rabbitmqtest, redisstreamtest and rocketmqtest;
// they speak to the broker with its client library only and import
// neither Ferry's pollers nor its sinks, so that both sides' tests (and
// test/conformance) can share them.
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
	// Options the suites need (a short Redis claim_idle, ...) are included.
	SourceYAML(group string) string
	// DestinationYAML is this topic as a Ferry destination (an on_success
	// or on_failure entry) in flow style, on the broker SourceYAML uses.
	DestinationYAML() string
	// Produce sends msgs in order and returns once the broker has them all
	// (acks / confirms). Messages with the same Key land in the same scope.
	Produce(t testing.TB, msgs []Msg)
	// Backlog is how many produced messages the group has not yet
	// committed / acknowledged (0 once its committed position is past all
	// of them).
	Backlog(t testing.TB, group string) int64
}

// Reader is a Topic whose messages a test can read back with the broker's
// own client library, without any consumer group of Ferry's: the sink
// tests check what a sink wrote this way.
type Reader interface {
	Topic
	// ReadBack reads the topic until it has read want messages, or
	// within has passed (then it fails t), and returns them in the order
	// read (per scope, the broker's order). It does not consume them for
	// any consumer group the tests use.
	ReadBack(t testing.TB, want int, within time.Duration) []Msg
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
