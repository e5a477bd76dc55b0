// Package redis is the Redis Streams outcome destination: it appends each
// outcome to a stream as one entry (XADD), built on
// github.com/redis/go-redis/v9.
//
// An entry's fields are, in this order: data (the pinned outcome JSON,
// sinks.Encode), content-type (application/json), ferry-hops, traceparent
// (when set), ferry-id and ferry-type. Ferry's own Redis trigger
// (poller/redisstream) reads "data" as the payload and every other field as
// a header, hop count included.
//
// One Client (one connection pool) serves every Sink on the same Redis.
// A delivery returns once Redis answered the XADD. Deliveries are at least
// once: go-redis retries a command on a network error (up to MaxRetries,
// 3 unless the URL sets max_retries), so an XADD whose answer was lost may
// be appended twice; receivers drop duplicates by ferry-id. Context
// deadlines bound every call (ContextTimeoutEnabled), and a Client
// reconnects by itself after Redis restarts (after a burst of failed dials,
// go-redis stops dialing and probes once a second until Redis answers).
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"

	"github.com/redis/go-redis/v9"

	brokerredis "github.com/ferrydev/ferry/internal/brokers/redis"
	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/wire"
)

// Entry fields with a meaning of their own; the other fields are
// sinks.Encode's headers (ferry-hops, traceparent, ferry-id, ferry-type).
const (
	// FieldData carries the outcome JSON: the field poller/redisstream
	// reads as the payload.
	FieldData = "data"
	// FieldContentType carries sinks.ContentType.
	FieldContentType = "content-type"
)

// headerOrder is the order of sinks.Encode's headers in an entry; any
// other header follows, sorted by name.
var headerOrder = []string{wire.HeaderHops, wire.HeaderTraceParent, wire.HeaderID, wire.HeaderType}

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the Redis URL, e.g. "redis://127.0.0.1:6379/0" or
	// "rediss://user:pass@host:6380/0", parsed by go-redis's ParseURL (its
	// query options, such as dial_timeout or max_retries, apply). Required.
	URL string
	// Logger receives a warning for every failed connection attempt.
	// Defaults to slog.Default().
	Logger *slog.Logger
}

// Client is one Redis connection pool shared by every Sink on the same
// Redis. It is safe for concurrent use. Create it with NewClient and close
// it with Close.
type Client struct {
	rdb  *redis.Client
	addr string // host:port, never the credentials
	log  *slog.Logger
}

// NewClient parses cfg.URL and returns a Client with context deadlines
// enabled. It does no network I/O: the first Deliver connects.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("redis sink config: url: required")
	}
	opt, err := brokerredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis sink config: url: %w", err)
	}
	// Deadlines of the caller's context bound every call (go-redis PR #2243).
	opt.ContextTimeoutEnabled = true
	// One dial per command attempt (go-redis dials up to 5 times by
	// default): an unreachable Redis then fails with its dial error instead
	// of using up the caller's deadline. go-redis still retries the command
	// (MaxRetries), and Ferry retries the delivery.
	opt.DialerRetries = 1
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{rdb: redis.NewClient(opt), addr: opt.Addr, log: cfg.Logger.With("sink", "redis", "addr", opt.Addr)}
	c.rdb.AddHook(dialLogger{c.log})
	return c, nil
}

// Sink returns a Sink appending to stream through c. With maxLen > 0 every
// XADD trims the stream to about maxLen entries (MAXLEN ~ maxLen: Redis
// trims whole nodes, so a few more may remain); otherwise the stream is
// never trimmed. An empty stream name makes every Deliver fail.
func (c *Client) Sink(stream string, maxLen int64) *Sink {
	return &Sink{c: c, stream: stream, maxLen: max(maxLen, 0)}
}

// Close closes the connection pool. Deliveries after Close fail (go-redis
// reports "redis: client is closed").
func (c *Client) Close() error {
	if err := c.rdb.Close(); err != nil {
		return fmt.Errorf("redis sink: close client for %s: %w", c.addr, err)
	}
	return nil
}

// Sink appends outcomes to one stream through a shared Client. It
// implements sinks.Sink and is safe for concurrent use. Get one from
// Client.Sink.
type Sink struct {
	c      *Client
	stream string
	maxLen int64
}

var _ sinks.Sink = (*Sink)(nil)

// Stream is the stream key the Sink appends to.
func (s *Sink) Stream() string { return s.stream }

// Deliver appends o to the stream as one entry (see the package doc) and
// returns nil once Redis answered with the entry id. It returns an error
// naming the stream and the Redis address otherwise, also when ctx ends
// first; an already ended ctx sends nothing.
func (s *Sink) Deliver(ctx context.Context, o *wire.Outcome) error {
	if o == nil {
		return errors.New("redis sink: nil outcome")
	}
	if s.stream == "" {
		return errors.New("redis sink: empty stream name")
	}
	values, err := fields(o)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.failed(o, err)
	}
	args := &redis.XAddArgs{Stream: s.stream, Values: values}
	if s.maxLen > 0 {
		args.MaxLen, args.Approx = s.maxLen, true
	}
	if err := s.c.rdb.XAdd(ctx, args).Err(); err != nil {
		return s.failed(o, err)
	}
	return nil
}

// failed wraps a delivery error with the outcome id, stream and address.
func (s *Sink) failed(o *wire.Outcome, err error) error {
	return fmt.Errorf("redis sink: deliver %s to stream %q at %s: %w", o.ID, s.stream, s.c.addr, err)
}

// fields encodes o as XADD field/value pairs, in the package doc's order.
func fields(o *wire.Outcome) ([]any, error) {
	enc, err := sinks.Encode(o)
	if err != nil {
		return nil, fmt.Errorf("redis sink: encoding outcome %s: %w", o.ID, err)
	}
	values := make([]any, 0, 2*(len(enc.Headers)+2))
	values = append(values, FieldData, enc.Body, FieldContentType, wire.OutcomeContentType)
	seen := make(map[string]bool, len(headerOrder))
	for _, k := range headerOrder {
		seen[k] = true
		if v, ok := enc.Headers[k]; ok {
			values = append(values, k, v)
		}
	}
	var rest []string
	for k := range enc.Headers {
		if !seen[k] && k != FieldData && k != FieldContentType {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		values = append(values, k, enc.Headers[k])
	}
	return values, nil
}

// dialLogger logs failed connection attempts (go-redis logs nothing per
// client): the sign of an unreachable Redis, while Deliver reports each
// failed delivery to its caller.
type dialLogger struct{ log *slog.Logger }

func (h dialLogger) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.log.Warn("redis sink: connecting failed", "err", err)
		}
		return conn, err
	}
}

func (dialLogger) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (dialLogger) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
