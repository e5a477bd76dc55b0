package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/poller"
)

// session is one AMQP connection with one consuming channel. amqp091-go
// does not reconnect by itself (Config.Recovery is left nil on purpose:
// Ferry's poller owns reconnects), so a session lives until its
// connection or channel closes; Connect then builds a new one with the
// next generation. Delivery tags belong to the session's channel.
type session struct {
	gen        uint64
	conn       *amqp.Connection
	ch         *amqp.Channel
	tag        string
	deliveries <-chan amqp.Delivery
	// acks tracks the deliveries handed out and settles them on ch.
	acks *acker
	// connClosed and chClosed are buffered NotifyClose listeners, so the
	// library never waits on us to report a close.
	connClosed chan *amqp.Error
	chClosed   chan *amqp.Error

	mu  sync.Mutex
	err error // why the session died; nil while it is alive

	shutdownOnce sync.Once
	shutdownErr  error
}

// openSession dials, opens a channel, sets QoS, checks that the queue
// exists and starts consuming. ctx bounds all of it: when ctx ends the
// socket is closed, which fails any pending AMQP call.
func openSession(ctx context.Context, cfg *settings, gen uint64) (*session, error) {
	dial := func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: cfg.DialTimeout}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// Bound the TLS and AMQP handshake; amqp091-go clears the
		// deadline once the connection is open (heartbeats take over).
		deadline := time.Now().Add(cfg.DialTimeout)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		if err := c.SetDeadline(deadline); err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("ferry " + cfg.Queue)
	conn, err := amqp.DialConfig(cfg.URL, amqp.Config{Dial: dial, Properties: props})
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: dial %s: %w", cfg.addr, cfg.clean(err))
	}
	// From here on a cancelled ctx kills the socket, so no call below can
	// hang on a broker that stopped answering.
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseDeadline(time.Now()) })
	defer stop()

	ss, err := consume(conn, cfg, gen)
	if err != nil {
		_ = conn.CloseDeadline(time.Now().Add(time.Second))
		if ctx.Err() != nil {
			return nil, fmt.Errorf("rabbitmq: connect %s: %w (%v)", cfg.addr, ctx.Err(), err)
		}
		return nil, err
	}
	return ss, nil
}

// consume sets up the consuming channel on an open connection.
func consume(conn *amqp.Connection, cfg *settings, gen uint64) (*session, error) {
	ss := &session{
		gen:        gen,
		conn:       conn,
		tag:        consumerTag(cfg.Queue, gen),
		connClosed: conn.NotifyClose(make(chan *amqp.Error, 1)),
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: open channel on %s: %w", cfg.addr, cfg.clean(err))
	}
	ss.ch = ch
	ss.chClosed = ch.NotifyClose(make(chan *amqp.Error, 1))
	ss.acks = newAcker(ch, cfg.ackPatience)
	ss.acks.coalesce = uint64(max(1, cfg.Prefetch/4)) // a quarter of the window per frame at most
	if err := ch.Qos(cfg.Prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("rabbitmq: set prefetch %d: %w", cfg.Prefetch, cfg.clean(err))
	}
	if err := declareQueue(ch, cfg); err != nil {
		return nil, err
	}
	ss.deliveries, err = ch.Consume(cfg.Queue, ss.tag, false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: consume queue %q: %w", cfg.Queue, cfg.clean(err))
	}
	return ss, nil
}

// consumerTag is unique per Source and generation (at most 255 bytes).
func consumerTag(queue string, gen uint64) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	if len(queue) > 200 {
		queue = queue[:200]
	}
	return fmt.Sprintf("ferry-%s-%s-%d", queue, hex.EncodeToString(b[:]), gen)
}

// fail records why the session died (the first reason wins) and returns
// the error Read reports, which wraps poller.ErrNotConnected; first tells
// whether this call recorded it.
func (ss *session) fail(reason error) (err error, first bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.err == nil {
		ss.err = fmt.Errorf("rabbitmq: channel generation %d lost: %w: %w", ss.gen, reason, poller.ErrNotConnected)
		first = true
	}
	return ss.err, first
}

// failed returns the recorded failure, or nil while the session is alive.
func (ss *session) failed() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.err
}

// pendingClose returns a close notification no Read has seen yet, or nil.
func (ss *session) pendingClose() error {
	select {
	case e, ok := <-ss.connClosed:
		return closeReason("connection", e, ok)
	case e, ok := <-ss.chClosed:
		return closeReason("channel", e, ok)
	default:
		return nil
	}
}

// closeReason turns a NotifyClose value into an error.
func closeReason(what string, e *amqp.Error, ok bool) error {
	if !ok || e == nil {
		return fmt.Errorf("%s closed", what)
	}
	return fmt.Errorf("%s closed by broker or network: %w", what, e)
}

// shutdown stops the session: send the acks still waiting behind an
// unsettled delivery (one frame each; later Acks get ErrStaleDelivery),
// cancel the consumer (no new deliveries), drain the deliveries channel
// (undrained deliveries block the library's close, amqp091-go #21 / #122),
// close the channel, then the connection. Acks already written are on the
// wire before the channel close, and the broker handles a channel's frames
// in order, so they all take effect; deliveries never acked are requeued
// by the broker. Everything is bounded by deadline: past it the socket is
// closed, which fails every pending call. Safe to call more than once.
func (ss *session) shutdown(deadline time.Time, cancel <-chan struct{}) error {
	ss.shutdownOnce.Do(func() {
		done := make(chan error, 1)
		go func() { done <- ss.closeGracefully(deadline) }()
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		select {
		case err := <-done:
			ss.shutdownErr = err
			return
		case <-timer.C:
		case <-cancel:
		}
		// Force: a socket deadline in the past fails every pending read and
		// write, so the library shuts the connection down and every call
		// in closeGracefully returns.
		_ = ss.conn.CloseDeadline(time.Now())
		<-done
		ss.shutdownErr = fmt.Errorf("rabbitmq: close channel generation %d: timed out, connection dropped", ss.gen)
	})
	return ss.shutdownErr
}

func (ss *session) closeGracefully(deadline time.Time) error {
	var errs []error
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		// Ends when the consumer is cancelled or the channel closes.
		// Dropped deliveries were never acked: the broker requeues them.
		for range ss.deliveries {
		}
	}()
	if err := ss.acks.close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
		errs = append(errs, fmt.Errorf("send waiting acks: %w", err))
	}
	if !ss.ch.IsClosed() && !ss.conn.IsClosed() {
		if err := ss.ch.Cancel(ss.tag, false); err != nil && !errors.Is(err, amqp.ErrClosed) {
			errs = append(errs, fmt.Errorf("cancel consumer: %w", err))
		}
	}
	if err := ss.ch.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
		errs = append(errs, fmt.Errorf("close channel: %w", err))
	}
	<-drained
	if err := ss.conn.CloseDeadline(deadline); err != nil && !errors.Is(err, amqp.ErrClosed) {
		errs = append(errs, fmt.Errorf("close connection: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("rabbitmq: close channel generation %d: %w", ss.gen, errors.Join(errs...))
	}
	return nil
}

// declareQueue checks that the queue exists or, with a QueueType, declares
// it durable with that type (a no-op when it exists with the same one).
func declareQueue(ch *amqp.Channel, cfg *settings) error {
	var err error
	if cfg.QueueType == "" {
		_, err = ch.QueueDeclarePassive(cfg.Queue, false, false, false, false, nil)
	} else {
		_, err = ch.QueueDeclare(cfg.Queue, true, false, false, false, amqp.Table{"x-queue-type": cfg.QueueType})
	}
	if err == nil {
		return nil
	}
	var aerr *amqp.Error
	switch {
	case errors.As(err, &aerr) && aerr.Code == amqp.NotFound:
		return fmt.Errorf("rabbitmq: queue %q on %s: %w (declare it, or set queue_type)", cfg.Queue, cfg.addr, ErrQueueNotFound)
	case errors.As(err, &aerr) && aerr.Code == amqp.PreconditionFailed:
		return fmt.Errorf("rabbitmq: queue %q on %s: %w: want %s: %s", cfg.Queue, cfg.addr, ErrQueueType, cfg.QueueType, aerr.Reason)
	}
	return fmt.Errorf("rabbitmq: check queue %q: %w", cfg.Queue, cfg.clean(err))
}
