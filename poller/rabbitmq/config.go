package rabbitmq

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	brokerrabbit "github.com/ferrydev/ferry/internal/brokers/rabbitmq"
	"github.com/ferrydev/ferry/internal/redact"
)

// Defaults and limits of Config.
const (
	// PrefetchDefault is the channel QoS (unacknowledged deliveries in
	// flight) when Config.Prefetch is 0.
	PrefetchDefault = 64
	// PrefetchMax is the largest prefetch count AMQP 0-9-1 can carry.
	PrefetchMax = 65535
	// DialTimeoutDefault bounds the TCP connect and the AMQP handshake when
	// Config.DialTimeout is 0.
	DialTimeoutDefault = 10 * time.Second
	// CloseTimeoutDefault bounds Close when its context has no deadline.
	CloseTimeoutDefault = 5 * time.Second
)

// Queue types of Config.QueueType.
const (
	// QueueQuorum is a replicated queue whose enqueues and acks go
	// through a Raft log written before they are confirmed.
	QueueQuorum = "quorum"
	// QueueClassic is RabbitMQ's original queue type.
	QueueClassic = "classic"
)

// Config configures a Source.
type Config struct {
	// URL is the AMQP URI, e.g. "amqp://guest:guest@127.0.0.1:5672/".
	// Its credentials never appear in Message.Source, errors or logs.
	// Required.
	URL string
	// Queue is the existing queue to consume. Ferry does not declare
	// users' queues: a missing queue makes Connect fail (retryably).
	// Required.
	Queue string
	// Prefetch is the channel QoS: how many unacknowledged deliveries the
	// broker sends ahead. It bounds the memory held by the Source and the
	// number of messages redelivered after a crash. Defaults to
	// PrefetchDefault (64); at most PrefetchMax.
	Prefetch int
	// QueueType, when set ("quorum" or "classic"), makes Connect declare
	// the queue durable with that x-queue-type when it is missing; a queue
	// of another type makes Connect fail with ErrQueueType. Empty: Connect
	// only checks that the queue exists (ErrQueueNotFound otherwise).
	QueueType string
	// DialTimeout bounds the TCP connect and AMQP handshake of Connect (as
	// does Connect's context). Defaults to DialTimeoutDefault (10s).
	DialTimeout time.Duration
	// Logger receives connection events. Defaults to slog.Default().
	Logger *slog.Logger
}

// settings is a validated Config with its derived, credential-free names.
type settings struct {
	Config
	// addr is host:port of the broker, without credentials.
	addr string
	// source is the CloudEvents source, "amqp://host:port/queue".
	source string
	// scope is the ordering scope, "rabbitmq:<queue>".
	scope string
	// red removes the URL and its password from error texts.
	red redact.Redactor
	// ackPatience is how long acks wait behind a delivery that does not
	// settle: the ackPatience constant, which tests change.
	ackPatience time.Duration
}

func (c Config) settings() (settings, error) {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("missing URL"))
	}
	if c.Queue == "" {
		errs = append(errs, errors.New("missing Queue"))
	}
	if c.Prefetch < 0 || c.Prefetch > PrefetchMax {
		errs = append(errs, fmt.Errorf("bad Prefetch %[2]d: must be between 0 and %[1]d", PrefetchMax, c.Prefetch))
	}
	if c.QueueType != "" && c.QueueType != QueueQuorum && c.QueueType != QueueClassic {
		errs = append(errs, fmt.Errorf("bad QueueType %q: must be %q, %q or empty", c.QueueType, QueueQuorum, QueueClassic))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("bad DialTimeout %s: must not be negative", c.DialTimeout))
	}
	var u brokerrabbit.URL
	if c.URL != "" {
		var err error
		if u, err = brokerrabbit.ParseURL(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("bad URL: %w", err))
		}
	}
	if len(errs) > 0 {
		return settings{}, fmt.Errorf("rabbitmq: invalid config: %w", errors.Join(errs...))
	}
	if c.Prefetch == 0 {
		c.Prefetch = PrefetchDefault
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DialTimeoutDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	s := settings{
		Config:      c,
		addr:        u.Addr,
		source:      u.URI.Scheme + "://" + u.Addr + "/" + url.PathEscape(c.Queue),
		scope:       "rabbitmq:" + c.Queue,
		red:         u.Redactor,
		ackPatience: ackPatience,
	}
	s.Logger = c.Logger.With("broker", "rabbitmq", "addr", u.Addr, "queue", c.Queue)
	return s, nil
}

// clean wraps err so that its text carries no credentials.
func (s *settings) clean(err error) error { return s.red.Error(err) }
