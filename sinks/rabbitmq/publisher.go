// Package rabbitmq delivers outcomes to RabbitMQ (AMQP 0-9-1) exchanges,
// built on github.com/rabbitmq/amqp091-go.
//
// A Publisher owns one connection and one confirm-mode channel, shared by
// every Sink made from it. Deliver publishes the outcome's JSON as a
// persistent message with mandatory set, and returns only once the broker
// confirmed that message: nil for basic.ack, an error for basic.nack, for
// a basic.return (unroutable: no queue bound), or when the channel or
// connection closes first. The message carries the ferry-hops,
// traceparent, ferry-id and ferry-type headers (sinks.Encode), content
// type application/json, message-id = the outcome id and type = the
// outcome type, so Ferry's own RabbitMQ source reads the hop count back.
//
// amqp091-go does not reconnect by itself. A Publisher connects at its
// first Deliver, and whenever its channel or connection is gone the next
// Deliver opens a new one; the Delivers that were waiting on the old one
// fail with ErrNotConfirmed (retry them: the message may have been stored,
// so a retry can duplicate it, never lose it).
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	brokerrabbit "github.com/ferrydev/ferry/internal/brokers/rabbitmq"
	"github.com/ferrydev/ferry/internal/redact"
)

// Timeouts of a Publisher.
const (
	// DialTimeout bounds opening a connection and its channel (TCP
	// connect, AMQP handshake, channel.open, confirm.select). A Deliver
	// waits for it no longer than its own context allows.
	DialTimeout = 10 * time.Second
	// CloseTimeout bounds Close: how long it lets unconfirmed publishes
	// finish and the connection close gracefully before dropping it.
	CloseTimeout = 5 * time.Second
)

// ConnectionName is the client-provided connection name a Publisher
// shows in the management UI and rabbitmqctl list_connections.
const ConnectionName = "ferry sink"

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// URL is the AMQP URI, e.g. "amqp://guest:guest@127.0.0.1:5672/".
	// Its credentials never appear in errors or logs. Required.
	URL string
	// Logger receives connection events. Defaults to slog.Default().
	Logger *slog.Logger
}

// Publisher is one long-lived connection with one confirm-mode channel,
// shared by its Sinks. It is safe for concurrent use; publishes are
// written one at a time and their confirms awaited concurrently.
type Publisher struct {
	url    string
	addr   string // host:port, no credentials
	red    redact.Redactor
	log    *slog.Logger
	ctx    context.Context // ends on Close: aborts an open in progress
	cancel context.CancelFunc

	mu      sync.Mutex
	conn    *amqp.Connection // nil before the first dial
	ch      *pubChan         // the current channel, possibly dead
	opening *opening         // the open in progress, if any
	gen     uint64           // generation of the newest channel
	closed  bool

	wg sync.WaitGroup // opens, watchers, exchange checks, blocked-loggers
}

// opening is one attempt to open a channel, shared by the Delivers that
// wait for it.
type opening struct {
	done chan struct{}
	ch   *pubChan
	err  error
}

// NewPublisher validates cfg and returns a Publisher. It does not connect:
// the first Deliver does.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.URL == "" {
		return nil, errors.New("rabbitmq: invalid publisher config: missing URL")
	}
	u, err := brokerrabbit.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: invalid publisher config: URL is %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Publisher{
		url:    cfg.URL,
		addr:   u.Addr,
		red:    u.Redactor,
		log:    log.With("sink", "rabbitmq", "addr", u.Addr),
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// Sink returns a Sink publishing to exchange with routingKey. The empty
// exchange is the default exchange, which routes to the queue named by the
// routing key. Sinks are cheap; they share the Publisher's connection.
func (p *Publisher) Sink(exchange, routingKey string) *Sink {
	return &Sink{p: p, exchange: exchange, key: routingKey}
}

// channel returns a live channel, opening one (and the connection, when it
// is gone) if needed. Concurrent callers share one open; each waits for it
// no longer than its ctx.
func (p *Publisher) channel(ctx context.Context) (*pubChan, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if c := p.ch; c != nil && c.alive() {
		p.mu.Unlock()
		return c, nil
	}
	op := p.opening
	if op == nil {
		op = &opening{done: make(chan struct{})}
		p.opening = op
		p.gen++
		p.wg.Add(1)
		go p.open(op, p.conn, p.gen)
	}
	p.mu.Unlock()
	select {
	case <-op.done:
		return op.ch, op.err
	case <-ctx.Done():
		return nil, fmt.Errorf("rabbitmq: connecting to %s: %w", p.addr, ctx.Err())
	}
}

// open opens channel generation gen, on conn when it is still open, else
// on a new connection, and publishes the result to op.
func (p *Publisher) open(op *opening, conn *amqp.Connection, gen uint64) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, DialTimeout)
	defer cancel()
	c, err := p.openChannel(ctx, conn, gen)
	p.mu.Lock()
	p.opening = nil
	if err == nil && p.closed {
		// Close did not see this channel: close it here.
		_ = c.conn.CloseDeadline(time.Now().Add(time.Second))
		c, err = nil, ErrClosed
	}
	if err == nil {
		p.ch = c
		p.conn = c.conn
	}
	p.mu.Unlock()
	op.ch, op.err = c, err
	close(op.done)
}

// openChannel opens a confirm-mode channel and starts its watcher. ctx
// bounds all of it: when ctx ends the socket is closed, which fails any
// pending AMQP call.
func (p *Publisher) openChannel(ctx context.Context, conn *amqp.Connection, gen uint64) (*pubChan, error) {
	fresh := conn == nil || conn.IsClosed()
	if fresh {
		var err error
		if conn, err = p.dial(ctx); err != nil {
			return nil, err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseDeadline(time.Now()) })
	ch, err := conn.Channel()
	if err == nil {
		if err = ch.Confirm(false); err != nil {
			_ = ch.Close()
		}
	}
	if !stop() {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if err != nil {
		if fresh {
			_ = conn.CloseDeadline(time.Now().Add(time.Second))
		}
		return nil, fmt.Errorf("rabbitmq: opening a confirm-mode channel on %s: %w", p.addr, p.red.Error(err))
	}
	c := newPubChan(gen, p.log)
	c.attach(conn, ch)
	c.spawn = p.goTracked
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c.watch()
		if err := c.failure(); err != nil && !errors.Is(err, ErrClosed) {
			p.log.Warn("rabbitmq sink: channel lost; the next delivery reconnects", "generation", gen, "error", p.red.Error(err))
		}
	}()
	if fresh {
		p.watchBlocked(conn)
		p.log.Info("rabbitmq sink connected", "generation", gen)
	} else {
		p.log.Info("rabbitmq sink channel reopened", "generation", gen)
	}
	return c, nil
}

// dial opens a connection named ConnectionName, bounded by ctx.
func (p *Publisher) dial(ctx context.Context) (*amqp.Connection, error) {
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	dial := func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: DialTimeout}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// The handshake ignores ctx: make its end fail the socket.
		stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
		// Bound the TLS and AMQP handshake; amqp091-go clears the
		// deadline once the connection is open (heartbeats take over).
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(DialTimeout)
		}
		if err := c.SetDeadline(deadline); err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(ConnectionName)
	conn, err := amqp.DialConfig(p.url, amqp.Config{Dial: dial, Properties: props})
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: dial %s: %w", p.addr, p.red.Error(err))
	}
	return conn, nil
}

// watchBlocked logs when the broker blocks and unblocks publishers
// (resource alarms); Delivers wait meanwhile, bounded by their contexts.
func (p *Publisher) watchBlocked(conn *amqp.Connection) {
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for b := range blocked {
			if b.Active {
				p.log.Warn("rabbitmq sink: broker blocks publishing", "reason", b.Reason)
			} else {
				p.log.Info("rabbitmq sink: broker unblocked publishing")
			}
		}
	}()
}

// goTracked runs fn in a goroutine Close waits for, unless the Publisher
// is closed (then it reports false). Adding to wg under mu, before Close
// sets closed, orders every Add before Close's Wait.
func (p *Publisher) goTracked(fn func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
	return true
}

// Close stops the Publisher: Deliver fails with ErrClosed from now on,
// publishes still waiting for their confirm get up to CloseTimeout to
// finish, then the connection is closed (dropped when the broker does not
// answer). It returns once every goroutine of the Publisher has ended.
// Calling it again does nothing.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	op := p.opening
	p.mu.Unlock()

	timer := time.NewTimer(CloseTimeout)
	defer timer.Stop()
	if op != nil {
		p.cancel() // an open in progress gives up at once
		<-op.done
	}
	p.mu.Lock()
	c, conn := p.ch, p.conn
	p.mu.Unlock()

	var errs []error
	if c != nil {
		c.closing.Store(true)
		if !c.waitIdle(timer.C) {
			errs = append(errs, errors.New("publishes still unconfirmed at the close timeout"))
		}
	}
	p.cancel()
	if conn != nil {
		deadline := time.Now().Add(time.Second)
		if err := conn.CloseDeadline(deadline); err != nil && !errors.Is(err, amqp.ErrClosed) {
			errs = append(errs, fmt.Errorf("close connection: %w", p.red.Error(err)))
		}
	}
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(CloseTimeout):
		errs = append(errs, errors.New("goroutines still running after the close timeout"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("rabbitmq: closing the publisher of %s: %w", p.addr, errors.Join(errs...))
	}
	return nil
}
