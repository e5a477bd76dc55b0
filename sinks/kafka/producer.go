// Package kafka is the Kafka outcome destination: it produces each outcome
// as one message, built on github.com/segmentio/kafka-go's Writer.
//
// A message carries the pinned outcome JSON (sinks.Encode) as its value,
// the outcome id as its key (so a consumer can drop the duplicates of an
// at-least-once delivery, and Kafka keeps one id's messages in one
// partition) and the headers ferry-hops, traceparent (when set), ferry-id,
// ferry-type and content-type: application/json. Ferry's own Kafka trigger
// (poller/kafka) reads them back, hop count included.
//
// One Producer (one kafka-go Writer, one connection pool) serves every Sink
// on the same brokers; each Sink names its topic per message. A delivery
// returns once every in-sync replica acknowledged it. The writer retries a
// failed batch only a few times (Ferry retries deliveries itself, with
// backoff), batches concurrent deliveries for a few milliseconds, and
// reconnects by itself after a broker restart: the first produce on a
// pooled connection the restart killed fails with "unexpected EOF", which
// kafka-go retries on a new connection.
//
// Known kafka-go behaviour the Sink works around or documents:
//   - WriteMessages returns when its context ends, but the message stays
//     queued and may still be written afterwards (kafka-go #1427): a
//     delivery that failed with a context error may show up later, as a
//     duplicate of its retry. Receivers drop duplicates by ferry-id.
//   - With topic auto-creation, the first metadata answer for a new topic
//     is an error ("Unknown Topic Or Partition" from Kafka 3.9, "Leader Not
//     Available" from older brokers) that WriteMessages does not retry
//     (kafka-go #1208, #1113): Deliver retries such metadata errors, which
//     happen before anything was queued, until the topic is usable, ctx
//     ends or 10s have passed (auto-creation may be off).
//   - Closing a Writer while WriteMessages runs can hang (kafka-go #1307):
//     Close waits for running deliveries first, and refuses new ones.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	brokerkafka "github.com/ferrydev/ferry/internal/brokers/kafka"
)

// ErrClosed is returned (wrapped) by Deliver after the Producer was closed.
var ErrClosed = errors.New("kafka sink: producer closed")

// Writer settings. They bound how long a batch can occupy its partition's
// queue: at most writeAttempts × writeTimeout plus the backoffs.
const (
	// batchTimeout is how long the writer waits for more messages before it
	// sends a partial batch (kafka-go's default is 1s). Concurrent
	// deliveries within it share one produce request.
	batchTimeout = 5 * time.Millisecond
	// batchSize is the most messages in one produce request.
	batchSize = 500
	// writeAttempts is kafka-go's attempts per batch (its default is 10):
	// Ferry retries a failed delivery on its own schedule.
	writeAttempts   = 3
	writeBackoffMin = 50 * time.Millisecond
	writeBackoffMax = 500 * time.Millisecond
	writeTimeout    = 10 * time.Second
	readTimeout     = 10 * time.Second
	dialTimeout     = 5 * time.Second
	idleTimeout     = 30 * time.Second
	// metadataBackoff paces Deliver's retries of a metadata error (a topic
	// being created); doubled up to metadataBackoffMax, for metadataWait at
	// most (then the error is returned, e.g. when auto-creation is off).
	metadataBackoff    = 50 * time.Millisecond
	metadataBackoffMax = time.Second
	metadataWait       = 10 * time.Second
)

// ProducerConfig configures a Producer.
type ProducerConfig struct {
	// Brokers are the bootstrap addresses (host:port). Required.
	Brokers []string
	// Logger receives kafka-go's errors (failed produce attempts) as
	// warnings and, when debug is enabled, kafka-go's own log. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// validate names every invalid field.
func (cfg ProducerConfig) validate() error {
	if err := errors.Join(brokerkafka.CheckBrokers(cfg.Brokers)...); err != nil {
		return fmt.Errorf("kafka sink config: %w", err)
	}
	return nil
}

// Producer is one long-lived Kafka writer shared by every Sink on the same
// brokers. It is safe for concurrent use. Create it with NewProducer and
// close it with Close.
type Producer struct {
	brokers []string
	log     *slog.Logger
	tr      *kafkago.Transport
	w       *kafkago.Writer

	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
}

// NewProducer validates cfg and returns a Producer. It does no network I/O:
// the first Deliver connects, and an unreachable broker shows as Deliver
// errors, not here.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Producer{
		brokers: append([]string(nil), cfg.Brokers...),
		log:     cfg.Logger.With("sink", "kafka"),
		tr: &kafkago.Transport{
			DialTimeout: dialTimeout,
			IdleTimeout: idleTimeout,
			ClientID:    "ferry",
		},
	}
	p.w = &kafkago.Writer{
		Addr: kafkago.TCP(p.brokers...),
		// No Topic: every message names its own, so Sinks share the writer.
		// Murmur2 on the key, as the Java client's default partitioner.
		Balancer:               &kafkago.Murmur2Balancer{},
		MaxAttempts:            writeAttempts,
		WriteBackoffMin:        writeBackoffMin,
		WriteBackoffMax:        writeBackoffMax,
		BatchSize:              batchSize,
		BatchTimeout:           batchTimeout,
		ReadTimeout:            readTimeout,
		WriteTimeout:           writeTimeout,
		RequiredAcks:           kafkago.RequireAll,
		AllowAutoTopicCreation: true,
		Transport:              p.tr,
		ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) {
			p.log.Warn("kafka-go: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
		}),
	}
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.w.Logger = kafkago.LoggerFunc(func(format string, args ...any) {
			p.log.Debug("kafka-go: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
		})
	}
	return p, nil
}

// Sink returns a Sink producing to topic through p. Sinks are cheap; they
// share p's connections and batches. The topic is checked here, once: a
// topic that is not a valid Kafka topic name makes every Deliver of the
// Sink fail with that error, before anything is sent.
func (p *Producer) Sink(topic string) *Sink {
	s := &Sink{p: p, topic: topic}
	if err := brokerkafka.CheckTopic(topic); err != nil {
		s.err = fmt.Errorf("kafka sink: topic %q: %w", topic, err)
	}
	return s
}

// Close waits for the deliveries in progress, refuses new ones (Deliver
// then returns an error wrapping ErrClosed), flushes and closes the writer
// and its connections. A batch still being retried after its caller gave
// up is given its remaining attempts. Close is idempotent.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	p.inflight.Wait()
	err := p.w.Close()
	p.tr.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("kafka sink: close producer for %v: %w", p.brokers, err)
	}
	return nil
}

// enter registers a delivery; false once p is closed.
func (p *Producer) enter() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	p.inflight.Add(1)
	return true
}

// leave ends a delivery registered by enter.
func (p *Producer) leave() { p.inflight.Done() }

// write writes m and waits for its acknowledgement, retrying metadata
// errors that kafka-go reports before it queued m (a topic being
// auto-created, a leader election) for metadataWait at most.
func (p *Producer) write(ctx context.Context, m kafkago.Message) error {
	backoff := metadataBackoff
	giveUp := time.Now().Add(metadataWait)
	for {
		err := p.w.WriteMessages(ctx, m)
		if err == nil || !retryBeforeQueue(err) || ctx.Err() != nil || time.Now().After(giveUp) {
			return err
		}
		p.log.Debug("kafka sink: topic not ready; retrying", "topic", m.Topic, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after: %w)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, metadataBackoffMax)
	}
}

// retryBeforeQueue reports whether err is a retriable Kafka error returned
// while looking up the topic's partitions, before anything was queued (so a
// retry cannot duplicate the message). Errors of a written batch come as
// kafkago.WriteErrors and are left to the caller.
func retryBeforeQueue(err error) bool {
	var werr kafkago.WriteErrors
	if errors.As(err, &werr) {
		return false
	}
	var kerr kafkago.Error
	if !errors.As(err, &kerr) {
		return false
	}
	// UnknownTopicOrPartition is not "temporary" for kafka-go, but with
	// auto-creation it is what a topic being created answers for a moment.
	return kerr.Temporary() || kerr == kafkago.UnknownTopicOrPartition
}
