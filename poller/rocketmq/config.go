// Package rocketmq is Ferry's RocketMQ trigger source: a poller.Source over
// the push consumer of github.com/apache/rocketmq-client-go/v2 (v2.1.2) in
// clustering mode, for RocketMQ 4.x brokers.
//
// The push consumer calls a callback with each batch of messages; the
// callback hands them to Read and blocks until Ferry has settled every one
// of them. Only then does it answer the client: ConsumeSuccess when all were
// acknowledged with a nil error. The client commits a queue's offset only up
// to the oldest message whose callback has not answered yet, so nothing past
// an unsettled message is ever committed. A nack (Ack with an error) while
// the Source runs redelivers the message locally after a short delay: the
// adapter never asks the client to send a message back to the group's
// %RETRY% topic, because v2.1.2 advances the offset even when that send-back
// fails (rocketmq-client-go #797, #976, #1106). On Close the consumer is shut
// down first (its process queues are dropped and the settled offsets are
// flushed to the broker), and only then do the callbacks still waiting
// return; the client ignores the answers of dropped queues, so messages that
// were read but not settled are redelivered from the committed offset.
package rocketmq

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	brokerrmq "github.com/ferrydev/ferry/internal/brokers/rocketmq"
)

// Start positions for a consumer group that has no committed offset yet.
const (
	// StartEarliest begins at the oldest message still stored
	// (ConsumeFromFirstOffset).
	StartEarliest = "earliest"
	// StartLatest begins after the newest message (ConsumeFromLastOffset).
	// RocketMQ 4.x still starts a brand-new group at offset 0 when the
	// queue's first message has not been swept from memory yet.
	StartLatest = "latest"
)

// TagsAll is the subscription expression that matches every tag.
const TagsAll = "*"

// Window of messages read and not yet settled (Config.InFlight).
const (
	// DefaultInFlight is the least window of concurrent consumption: 16
	// callbacks of 16 messages.
	DefaultInFlight = 256
	// MaxInFlight caps Config.InFlight: the client pauses a queue's pulls
	// at no more than 65535 cached messages.
	MaxInFlight = 65535
)

// Tuning of the push consumer. Memory stays bounded: the callbacks in
// flight, each blocked until Ferry settles its messages, are sized from
// Config.InFlight (see flow), and a queue stops pulling beyond its cached
// message count (at least minQueueCache) or pullThresholdSizeMiB MiB.
const (
	consumeBatch         = 16           // messages per callback in concurrent mode, at least in orderly mode
	maxConsumeBatch      = 1024         // the client's limit on messages per callback
	pullBatch            = consumeBatch // one callback per pull: fewer goroutines, order easier to keep
	minQueueCache        = 128
	pullThresholdSizeMiB = 16
	// defaultMaxSpan is the client's default bound on the offsets a
	// queue spans in its cache (concurrent mode) before it stops pulling.
	defaultMaxSpan = 1000
	// consumeTimeout is how long a message may stay unsettled before the
	// client's expiry sweep sends it back to the %RETRY% topic itself (and
	// advances the offset). Ferry settles every message only after its
	// outcome, which can take hours with retries: keep the sweep out of the
	// way. (The client's sweeper goroutine sleeps this long before its
	// first run, and outlives Shutdown until then.)
	consumeTimeout = 7 * 24 * time.Hour
	// suspendOrderly is how long an orderly queue pauses after a batch
	// that Ferry did not settle (only on shutdown).
	suspendOrderly = time.Second
	// nackRedelivery is the delay before a nacked message is read again.
	nackRedelivery = time.Second
	// sequenceWindow is how long a batch that arrived ahead of an earlier
	// batch of the same queue is held back before giving up on the gap.
	sequenceWindow = 200 * time.Millisecond
	// settleWait bounds how long Close waits for the client to record the
	// offsets of settled messages before shutting it down.
	settleWait = 5 * time.Second
)

// Config configures a Source. Zero values take the defaults documented on
// each field.
type Config struct {
	// NameServers are the name server addresses, host:port. Required.
	NameServers []string
	// Topic is the topic to consume. Required.
	Topic string
	// Group is the consumer group (clustering mode: the group's consumers
	// share the topic's queues). Required.
	Group string
	// Tags is the subscription expression, e.g. "a || b". Defaults to "*".
	Tags string
	// Start is where a group without a committed offset begins:
	// "earliest" (ConsumeFromFirstOffset) or "latest". Defaults to
	// "earliest".
	Start string
	// Orderly consumes each message queue in order, one batch at a time,
	// holding the broker's queue lock (set it when the trigger's
	// concurrency is 1). Otherwise queues are consumed concurrently and the
	// Source still returns each queue's messages in offset order.
	Orderly bool
	// InFlight is how many messages read and not yet settled the Source
	// may hold: the trigger sets it to its batch size × concurrency, so
	// that its workers fill their batches without waiting out the batch
	// window. Concurrent consumption keeps up to InFlight messages in its
	// callbacks, at least 256 (DefaultInFlight); orderly consumption hands
	// each queue over in callbacks of up to InFlight messages (16 to 1024,
	// the client's limit), one callback per queue at a time. Each queue
	// caches enough to fill the window alone, within 16 MiB. One Read
	// returns at most max(InFlight, 256) messages. Values above 65535
	// (MaxInFlight) count as 65535. Defaults to 0: the minimums above.
	InFlight int
	// Logger receives the Source's own logs and the client library's
	// warnings and errors. Defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Tags == "" {
		c.Tags = TagsAll
	}
	if c.Start == "" {
		c.Start = StartEarliest
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.NameServers) == 0 {
		errs = append(errs, errors.New("nameservers: at least one name server is required"))
	}
	for i, ns := range c.NameServers {
		if _, _, err := net.SplitHostPort(ns); err != nil {
			errs = append(errs, fmt.Errorf("nameservers[%d]: %q is not host:port: %w", i, ns, err))
		}
	}
	for _, f := range []struct{ name, v string }{{"topic", c.Topic}, {"group", c.Group}} {
		switch {
		case f.v == "":
			errs = append(errs, fmt.Errorf("%s: required", f.name))
		default:
			if err := brokerrmq.CheckName(f.v, brokerrmq.MaxTopicLen); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
			}
		}
	}
	if c.Start != StartEarliest && c.Start != StartLatest {
		errs = append(errs, fmt.Errorf("start: %q is neither %q nor %q", c.Start, StartEarliest, StartLatest))
	}
	if c.InFlight < 0 {
		errs = append(errs, fmt.Errorf("inflight: %d is negative", c.InFlight))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rocketmq: invalid config: %w", err)
	}
	return nil
}

// flow is the push consumer's flow control, derived from Config.InFlight.
type flow struct {
	// consumeBatch is the most messages per callback.
	consumeBatch int
	// goroutines bounds the callbacks in flight per topic (concurrent
	// mode; orderly mode runs one callback per queue).
	goroutines int
	// queueCache is the cached messages, in flight included, beyond which
	// a queue stops pulling.
	queueCache int64
	// maxSpan is the offsets a queue's cache may span before it stops
	// pulling (concurrent mode): past a message stuck in retries, the
	// queue runs at most this far ahead.
	maxSpan int
	// maxRead is the most messages one Read returns.
	maxRead int
}

// flow sizes the client's window from InFlight. Concurrent mode: enough
// callbacks of consumeBatch messages to hold the window, and a queue
// cache as large as the window, so that a queue fills it alone (a group
// member may own one queue; at the end of a backlog one queue may be left).
// Orderly mode: callbacks as large as the window (each queue holds one at
// a time, and a queue's next callback waits for the previous one to be
// settled), and room in the cache for the next one.
func (c *Config) flow() flow {
	want := min(max(c.InFlight, 0), MaxInFlight)
	window := max(want, DefaultInFlight)
	f := flow{
		consumeBatch: consumeBatch,
		goroutines:   (window + consumeBatch - 1) / consumeBatch,
		queueCache:   int64(max(window, minQueueCache)),
		maxRead:      window,
	}
	if c.Orderly {
		f.consumeBatch = min(max(want, consumeBatch), maxConsumeBatch)
		f.queueCache = int64(max(2*f.consumeBatch, minQueueCache))
	}
	f.maxSpan = int(min(max(2*f.queueCache, defaultMaxSpan), MaxInFlight))
	return f
}
