// Package rocketmq delivers outcomes to RocketMQ 4.x topics, over the
// producer of github.com/apache/rocketmq-client-go/v2 (v2.1.2).
//
// A Producer is one started client producer, shared by every Sink made
// from it. Deliver sends the outcome's JSON with SendSync and returns nil
// only when the broker answered SEND_OK: a flush or replica timeout (the
// broker stored the message but could not make it as durable as asked) is
// an error, as is any transport failure, so the caller retries; a retry
// can duplicate the outcome, never lose it (consumers drop duplicates by
// the message keys / ferry-id property). The message carries the
// ferry-hops, traceparent, ferry-id and ferry-type properties
// (sinks.Encode), the outcome id as its key and the Sink's tag, so Ferry's
// own RocketMQ source reads the hop count back as a header.
//
// The client reconnects by itself: after a broker or name server outage
// the same Producer delivers again once they are back. The client's own
// logging is routed to the Producer's Logger (process-wide, shared with
// Ferry's RocketMQ source: internal/brokers/rocketmq.SetClientLogger).
//
// rocketmq-client-go v2.1.2 has data races in its own goroutines, so the
// tests that run a real client are excluded from -race builds; the
// adapter's own logic is tested under -race with a fake client.
package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	brokerrmq "github.com/ferrydev/ferry/internal/brokers/rocketmq"
)

// Defaults and limits of a Producer.
const (
	// GroupDefault is the producer group when ProducerConfig.Group is
	// empty.
	GroupDefault = "ferry-sink"
	// Retries is how many times the client resends a message to another
	// queue when a send fails (its own retry, within one Deliver).
	Retries = 2
	// CloseTimeout bounds Close: how long it waits for sends in flight
	// and for the client's shutdown.
	CloseTimeout = 5 * time.Second
)

// ErrClosed is returned by Deliver after Close.
var ErrClosed = errors.New("rocketmq producer closed")

// ProducerConfig configures a Producer.
type ProducerConfig struct {
	// NameServers are the name server addresses, IP:port (the client
	// accepts IP addresses only, not host names). Required.
	NameServers []string
	// Group is the producer group. Defaults to GroupDefault
	// ("ferry-sink").
	Group string
	// Logger receives the Producer's logs; the client library's warnings
	// and errors are routed to it too (process-wide, see
	// internal/brokers/rocketmq.SetClientLogger). Defaults to slog.Default().
	Logger *slog.Logger
}

func (c *ProducerConfig) validate() error {
	var errs []error
	if len(c.NameServers) == 0 {
		errs = append(errs, errors.New("nameservers: at least one name server is required"))
	}
	for i, ns := range c.NameServers {
		host, _, err := net.SplitHostPort(ns)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("nameservers[%d]: %q is not IP:port: %w", i, ns, err))
		case net.ParseIP(host) == nil:
			errs = append(errs, fmt.Errorf("nameservers[%d]: %q: the RocketMQ client takes an IP address, not a host name", i, ns))
		}
	}
	if c.Group != "" {
		if err := brokerrmq.CheckName(c.Group, brokerrmq.MaxGroupLen); err != nil {
			errs = append(errs, fmt.Errorf("group: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rocketmq: invalid producer config: %w", err)
	}
	return nil
}

// sender is the part of the client's producer a Producer uses.
type sender interface {
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
	Shutdown() error
}

// Producer is one started client producer, shared by its Sinks. It is safe
// for concurrent use.
type Producer struct {
	client sender
	group  string
	log    *slog.Logger

	mu     sync.Mutex
	closed bool
	sends  sync.WaitGroup // SendSync calls in flight
}

// NewProducer validates cfg, creates the client producer (with a client
// instance of its own) and starts it. Starting does not contact the name
// server: an unreachable one makes Deliver fail, not NewProducer.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Group == "" {
		cfg.Group = GroupDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	brokerrmq.SetClientLogger(cfg.Logger)
	p, err := producer.NewDefaultProducer(
		producer.WithNameServer(cfg.NameServers),
		producer.WithGroupName(cfg.Group),
		// A client of its own: producers sharing a client instance share
		// its producer-group registry, and a second producer of one group
		// would fail to start.
		producer.WithInstanceName(brokerrmq.InstanceName("ferry-sink")),
		producer.WithRetry(Retries),
	)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: creating the producer of group %s: %w", cfg.Group, err)
	}
	if err := p.Start(); err != nil {
		_ = p.Shutdown()
		return nil, fmt.Errorf("rocketmq: starting the producer of group %s: %w", cfg.Group, err)
	}
	pr := newProducer(p, cfg.Group, cfg.Logger)
	pr.log.Debug("rocketmq sink producer started", "nameservers", cfg.NameServers)
	return pr, nil
}

func newProducer(client sender, group string, log *slog.Logger) *Producer {
	return &Producer{client: client, group: group, log: log.With("sink", "rocketmq", "group", group)}
}

// Sink returns a Sink sending to topic with tag (no tag when empty). An
// invalid topic or tag makes every Deliver of the Sink fail.
func (p *Producer) Sink(topic, tag string) *Sink {
	s := &Sink{p: p, topic: topic, tag: tag}
	if topic == "" {
		s.err = errors.New("rocketmq: sink: topic is required")
	} else if err := brokerrmq.CheckName(topic, brokerrmq.MaxTopicLen); err != nil {
		s.err = fmt.Errorf("rocketmq: sink: topic %w", err)
	} else if !validProperty(tag) {
		s.err = fmt.Errorf("rocketmq: sink: tag %q contains a control character", tag)
	}
	return s
}

// begin registers a send in flight, unless the Producer is closed. Adding
// under mu, before Close sets closed, orders every Add before Close's Wait.
func (p *Producer) begin() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.sends.Add(1)
	return true
}

// Close stops the Producer: Deliver fails with ErrClosed from now on.
// Sends in flight get up to CloseTimeout to finish (their Delivers may
// already have returned at their own deadline), then the client shuts
// down, also within CloseTimeout. Calling it again does nothing.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	var errs []error
	if !waitTimeout(p.sends.Wait, CloseTimeout) {
		errs = append(errs, errors.New("sends still in flight at the close timeout"))
	}
	var shutdownErr error
	if !waitTimeout(func() { shutdownErr = p.client.Shutdown() }, CloseTimeout) {
		errs = append(errs, errors.New("client shutdown timed out"))
	} else if shutdownErr != nil {
		errs = append(errs, fmt.Errorf("client shutdown: %w", shutdownErr))
	}
	if len(errs) > 0 {
		return fmt.Errorf("rocketmq: closing the producer of group %s: %w", p.group, errors.Join(errs...))
	}
	return nil
}

// waitTimeout runs fn in a goroutine and reports whether it returned
// within d (it keeps running otherwise; the client's own timeouts end it).
func waitTimeout(fn func(), d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
