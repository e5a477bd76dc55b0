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
	"regexp"
	"time"
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

// Tuning of the push consumer. The values keep memory bounded: at most
// consumeGoroutines callbacks of consumeBatch messages are in flight per
// topic, and a queue stops pulling beyond pullThresholdForQueue cached
// messages or pullThresholdSizeMiB MiB.
const (
	consumeBatch          = 16
	pullBatch             = consumeBatch // one callback per pull: fewer goroutines, order easier to keep
	consumeGoroutines     = 16
	pullThresholdForQueue = 128
	pullThresholdSizeMiB  = 16
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
	// maxRead caps the messages one Read returns.
	maxRead = 256
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
	// Logger receives the Source's own logs and the client library's
	// warnings and errors. Defaults to slog.Default().
	Logger *slog.Logger
}

// nameRE is what RocketMQ accepts for topic and group names.
var nameRE = regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)

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
		case len(f.v) > 127 || !nameRE.MatchString(f.v):
			errs = append(errs, fmt.Errorf("%s: %q must be 1-127 characters of [%%|a-zA-Z0-9_-]", f.name, f.v))
		}
	}
	if c.Start != StartEarliest && c.Start != StartLatest {
		errs = append(errs, fmt.Errorf("start: %q is neither %q nor %q", c.Start, StartEarliest, StartLatest))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rocketmq: invalid config: %w", err)
	}
	return nil
}
