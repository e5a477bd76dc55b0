package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Buffers of the notification channels the watcher drains. The watcher
// reads them continuously, so they only absorb bursts; the library gives
// up on a listener that blocks it for 5 s, which must never happen to us.
const (
	confirmBuffer = 1024
	returnBuffer  = 256
)

// pubChan is one confirm-mode channel and the goroutine (watch) that
// settles its publishes. Every publish registers a waiter under the
// delivery tag the library will give it: tags are sequential per channel,
// and publishes are serialised by sem, so the tag is known before the
// publish. watch reads confirms (NotifyPublish: one per tag, in order) and
// returns (NotifyReturn) until the channel closes, then fails every waiter
// left. Draining both until they close is what keeps the library from
// blocking on us (amqp091-go #21, #122).
type pubChan struct {
	gen  uint64
	log  *slog.Logger
	conn *amqp.Connection // nil in unit tests

	// send publishes one message and returns its delivery tag; isClosed
	// reports the library's view of the channel; abort closes the channel
	// without waiting. They wrap *amqp.Channel (fakes in unit tests).
	send     func(exchange, key string, msg amqp.Publishing) (uint64, error)
	isClosed func() bool
	abort    func()
	// spawn runs a frame write in a goroutine the Publisher's Close waits
	// for; false when the Publisher is closed.
	spawn func(func()) bool

	confirms <-chan amqp.Confirmation
	returns  <-chan amqp.Return
	// chClosed is buffered 1. The library reports a connection's loss on
	// each of its channels too, so no connection listener is needed.
	chClosed <-chan *amqp.Error

	// closing is set by Publisher.Close: waiters failed from then on get
	// ErrClosed.
	closing atomic.Bool

	sem  chan struct{} // held while publishing: one publish at a time
	last uint64        // delivery tag of the last publish; guarded by sem

	mu      sync.Mutex
	pending map[uint64]*waiter
	idle    chan struct{} // closed when pending becomes empty; nil if nobody waits
	err     error         // why the channel is dead; nil while alive
	dead    chan struct{} // closed when err is set
}

// waiter is one publish waiting for its confirm.
type waiter struct {
	id       string         // message-id, to correlate a basic.return
	returned *ReturnedError // set when the broker returned the message
	done     chan error     // buffered 1: the watcher never blocks on it
}

func newPubChan(gen uint64, log *slog.Logger) *pubChan {
	return &pubChan{
		gen:     gen,
		log:     log,
		sem:     make(chan struct{}, 1),
		pending: map[uint64]*waiter{},
		dead:    make(chan struct{}),
	}
}

// attach sets c up on an open channel in confirm mode: it registers the
// listeners (before any publish, so no confirm or return is missed).
func (c *pubChan) attach(conn *amqp.Connection, ch *amqp.Channel) {
	c.conn = conn
	c.send = func(exchange, key string, msg amqp.Publishing) (uint64, error) {
		dc, err := ch.PublishWithDeferredConfirm(exchange, key, true, false, msg)
		if err != nil {
			return 0, err
		}
		if dc == nil {
			return 0, errors.New("channel not in confirm mode")
		}
		return dc.DeliveryTag, nil
	}
	c.isClosed = ch.IsClosed
	c.abort = func() { go func() { _ = ch.Close() }() }
	c.chClosed = ch.NotifyClose(make(chan *amqp.Error, 1))
	c.returns = ch.NotifyReturn(make(chan amqp.Return, returnBuffer))
	c.confirms = ch.NotifyPublish(make(chan amqp.Confirmation, confirmBuffer))
}

// alive reports whether new publishes may use c.
func (c *pubChan) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return !c.isClosed()
	}
}

// publish sends msg and returns the channel on which its outcome arrives:
// nil once the broker confirmed it, else why not. ctx bounds the wait for
// the publish slot. The frame write runs in a goroutine of its own (spawn)
// holding the slot, because it ignores contexts: it blocks while the
// broker blocks publishers (resource alarms) until the connection
// unblocks or closes, and the caller must not block with it.
func (c *pubChan) publish(ctx context.Context, exchange, key string, msg amqp.Publishing) (<-chan error, error) {
	select {
	case c.sem <- struct{}{}:
	case <-c.dead:
		return nil, c.failure()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release := func() { <-c.sem }
	if err := ctx.Err(); err != nil {
		release()
		return nil, err
	}
	if c.closing.Load() {
		release()
		return nil, ErrClosed
	}
	tag := c.last + 1
	w := &waiter{id: msg.MessageId, done: make(chan error, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		release()
		return nil, err
	}
	c.pending[tag] = w
	c.mu.Unlock()

	send := func() {
		defer release()
		got, err := c.send(exchange, key, msg)
		if err != nil {
			// Not sent; the library took the tag back (unpublish): so
			// do we.
			c.forget(tag)
			if c.closing.Load() {
				err = fmt.Errorf("%w (%w)", ErrClosed, err)
			}
			w.settle(err)
			return
		}
		c.last = got
		if got != tag {
			// Confirms can no longer be matched to publishes: retire
			// the channel; its waiters (this one included) fail and the
			// next Deliver opens a new channel.
			c.die(fmt.Errorf("delivery tag %d, expected %d: %w", got, tag, ErrNotConfirmed))
			c.abort()
		}
	}
	if !c.spawn(send) {
		c.forget(tag)
		release()
		return nil, ErrClosed
	}
	return w.done, nil
}

// settle reports the publish's outcome; only the first one counts (a send
// failure and the channel's death can both report).
func (w *waiter) settle(err error) {
	select {
	case w.done <- err:
	default:
	}
}

// forget drops the waiter of a publish that was never sent.
func (c *pubChan) forget(tag uint64) {
	c.mu.Lock()
	delete(c.pending, tag)
	c.signalIdle()
	c.mu.Unlock()
}

// watch settles publishes until the channel closes, then fails the rest.
func (c *pubChan) watch() {
	returns := c.returns
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			c.onReturn(r)
		case cf, ok := <-c.confirms:
			if !ok {
				c.die(c.closeReason())
				return
			}
			// The library hands a message's basic.return to us before its
			// basic.ack (both from its reader goroutine, in frame order),
			// so any return of this message is already buffered.
			returns = c.drainReturns(returns)
			c.onConfirm(cf)
		}
	}
}

// drainReturns handles the returns already buffered; it returns nil once
// the returns channel is closed.
func (c *pubChan) drainReturns(returns <-chan amqp.Return) <-chan amqp.Return {
	for returns != nil {
		select {
		case r, ok := <-returns:
			if !ok {
				return nil
			}
			c.onReturn(r)
		default:
			return returns
		}
	}
	return nil
}

// onReturn marks the oldest unconfirmed publish with r's message-id as
// returned. Returns and confirms both come in publish order, so the oldest
// such publish is the returned one, even when an id is published twice.
func (c *pubChan) onReturn(r amqp.Return) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var oldest uint64
	for tag, w := range c.pending {
		if w.id == r.MessageId && w.returned == nil && (oldest == 0 || tag < oldest) {
			oldest = tag
		}
	}
	if oldest == 0 {
		c.log.Warn("rabbitmq sink: broker returned a message no publish is waiting for",
			"message_id", r.MessageId, "exchange", r.Exchange, "routing_key", r.RoutingKey)
		return
	}
	c.pending[oldest].returned = &ReturnedError{
		Exchange: r.Exchange, RoutingKey: r.RoutingKey, Code: r.ReplyCode, Text: r.ReplyText,
	}
}

// onConfirm settles the publish with cf's delivery tag.
func (c *pubChan) onConfirm(cf amqp.Confirmation) {
	c.mu.Lock()
	w := c.pending[cf.DeliveryTag]
	delete(c.pending, cf.DeliveryTag)
	c.signalIdle()
	c.mu.Unlock()
	switch {
	case w == nil:
		// A publish whose send failed after the broker saw it cannot be
		// told apart; nothing waits for it.
		c.log.Debug("rabbitmq sink: confirm without a waiting publish", "delivery_tag", cf.DeliveryTag)
	case !cf.Ack:
		w.settle(ErrNacked)
	case w.returned != nil:
		w.settle(w.returned)
	default:
		w.settle(nil)
	}
}

// die marks c dead with reason (the first reason wins) and fails every
// waiting publish.
func (c *pubChan) die(reason error) {
	c.mu.Lock()
	if c.err == nil {
		if c.closing.Load() {
			reason = fmt.Errorf("%w (%w)", ErrClosed, reason)
		}
		c.err = reason
		close(c.dead)
	}
	left := c.pending
	c.pending = map[uint64]*waiter{}
	c.signalIdle()
	err := c.err
	c.mu.Unlock()
	for _, w := range left {
		w.settle(err)
	}
}

// failure is why c died.
func (c *pubChan) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// closeReason says why the confirms channel closed, from the close
// notifications (the library sends those before it closes the listeners).
func (c *pubChan) closeReason() error {
	select {
	case e, ok := <-c.chClosed:
		if ok && e != nil {
			return fmt.Errorf("%w: channel or connection closed: %w", ErrNotConfirmed, e)
		}
	default:
	}
	return fmt.Errorf("%w: channel or connection closed", ErrNotConfirmed)
}

// signalIdle wakes waitIdle when nothing is pending. Called with mu held.
func (c *pubChan) signalIdle() {
	if len(c.pending) == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

// waitIdle waits until no publish is waiting for a confirm, c dies, or
// timeout fires; it reports whether c became idle (or died).
func (c *pubChan) waitIdle(timeout <-chan time.Time) bool {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return true
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-c.dead:
		return true
	case <-timeout:
		return false
	}
}
