// Package rabbitmq is Ferry's trigger source for RabbitMQ (AMQP 0-9-1),
// built on github.com/rabbitmq/amqp091-go.
//
// A Source consumes one existing queue with manual acks and a bounded
// prefetch. The queue is the ordering scope: with concurrency 1 messages
// are pushed in queue order.
//
// Acks are coalesced, in delivery order. A message's Ack with a nil error
// records the ack; once every older delivery of the channel is settled,
// one basic.ack with multiple=true acks the whole settled run (RabbitMQ
// handles an ack of its oldest unacked deliveries cheaply, but walks its
// unacked queue for each ack of a delivery in the middle, which is what
// per-message acks in completion order cost). An ack is sent as soon as
// the run reaches it, so nothing waits once the older messages are done;
// acks that finish out of order wait until the gap closes and then leave
// in one frame. A message's Ack with a non-nil error sends basic.nack with
// requeue at once, so the broker delivers the message again; a later
// multiple ack skips it. Waiting acks still hold their prefetch slots, so
// they wait at most one to two seconds behind an oldest delivery that
// does not settle (a slow function, a retry backoff): then they, and the
// acks after them until that delivery settles, are sent one by one and
// the broker keeps delivering. Close sends the waiting acks before
// closing the channel.
//
// amqp091-go does not reconnect by itself. When the connection or channel
// closes, Read returns an error wrapping poller.ErrNotConnected and the
// poller calls Connect again (with backoff). Deliveries of the dead channel
// can no longer be settled (delivery tags are per channel): their Ack
// returns ErrStaleDelivery and the broker redelivers them, as it does the
// messages whose ack was still waiting, so a connection loss causes
// duplicates, never losses.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydev/ferry/poller"
)

var (
	_ poller.Source = (*Source)(nil)
	_ poller.Lagger = (*Source)(nil)
)

// Source consumes one RabbitMQ queue. Create it with New; it is safe for
// concurrent use (Acks from many goroutines, Close during Read).
type Source struct {
	cfg settings

	// gen is the generation of the newest session; a delivery of an older
	// generation can no longer be settled.
	gen atomic.Uint64

	connectMu sync.Mutex // serialises Connect and Close

	// reading serialises Read: deliveries must be tracked in the order
	// the channel delivers them (see tracker).
	reading chan struct{}

	mu     sync.Mutex
	sess   *session
	closed bool

	wg sync.WaitGroup // Lag calls in flight
}

// New validates cfg and returns a Source that is not yet connected.
func New(cfg Config) (*Source, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	return &Source{cfg: s, reading: make(chan struct{}, 1)}, nil
}

// Connect dials the broker (the connection is named "ferry <queue>" in
// the management UI and rabbitmqctl), opens a channel with the configured prefetch,
// checks that the queue exists (a missing queue fails with
// ErrQueueNotFound; retry later) and starts consuming with manual acks.
// Called again after Read returned ErrNotConnected, it drops the previous
// connection first: its unsettled deliveries are requeued by the broker.
// ctx and Config.DialTimeout bound the whole call.
func (s *Source) Connect(ctx context.Context) error {
	s.connectMu.Lock()
	defer s.connectMu.Unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("rabbitmq: connect: %w", ErrClosed)
	}
	old := s.sess
	s.sess = nil
	gen := s.gen.Add(1) // from now on acks of older deliveries are refused
	s.mu.Unlock()

	if old != nil {
		_ = old.shutdown(time.Now().Add(time.Second), ctx.Done())
	}
	ss, err := openSession(ctx, &s.cfg, gen)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.sess = ss
	s.mu.Unlock()
	s.cfg.Logger.Info("rabbitmq source connected", "generation", gen, "prefetch", s.cfg.Prefetch)
	return nil
}

// Read blocks until at least one delivery arrives, or ctx ends, and
// returns every delivery already buffered (at most Config.Prefetch, the
// broker's limit of unacknowledged deliveries), in queue order. Draining
// the buffer on every call keeps the connection flowing. When the
// connection or channel is gone, or the broker cancelled the consumer
// (queue deleted), Read returns an error wrapping poller.ErrNotConnected.
// Concurrent Reads run one after the other.
func (s *Source) Read(ctx context.Context) ([]*poller.Message, error) {
	select {
	case s.reading <- struct{}{}:
		defer func() { <-s.reading }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	ss, closed := s.sess, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("rabbitmq: read: %w", ErrClosed)
	case ss == nil:
		return nil, fmt.Errorf("rabbitmq: read %s: %w", s.cfg.Queue, poller.ErrNotConnected)
	}
	if err := ss.failed(); err != nil {
		return nil, err
	}
	if reason := ss.pendingClose(); reason != nil {
		return nil, s.lost(ss, reason)
	}

	var msgs []*poller.Message
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case d, ok := <-ss.deliveries:
		if !ok {
			return nil, s.lost(ss, errors.New("consumer cancelled or channel closed"))
		}
		msgs = append(msgs, s.message(ss, d))
	case e, ok := <-ss.connClosed:
		return nil, s.lost(ss, closeReason("connection", e, ok))
	case e, ok := <-ss.chClosed:
		return nil, s.lost(ss, closeReason("channel", e, ok))
	}
	for len(msgs) < s.cfg.Prefetch {
		select {
		case d, ok := <-ss.deliveries:
			if !ok {
				// Reported by the next Read; hand out what we have.
				return msgs, nil
			}
			msgs = append(msgs, s.message(ss, d))
		default:
			return msgs, nil
		}
	}
	return msgs, nil
}

// lost records the session's end, logs it once, and returns Read's error.
func (s *Source) lost(ss *session, reason error) error {
	err, first := ss.fail(reason)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("rabbitmq: read: %w", ErrClosed)
	}
	if first {
		s.cfg.Logger.Warn("rabbitmq source lost its connection; unacked deliveries will be redelivered",
			"generation", ss.gen, "reason", s.cfg.clean(reason).Error())
	}
	return err
}

// Lag returns the number of messages ready in the queue (not yet delivered
// to any consumer), read with a passive queue.declare on a short-lived
// side channel. Deliveries in flight (unacknowledged) are not counted.
func (s *Source) Lag(ctx context.Context) (int64, error) {
	s.mu.Lock()
	ss := s.sess
	if ss == nil || s.closed {
		s.mu.Unlock()
		return 0, fmt.Errorf("rabbitmq: lag %s: %w", s.cfg.Queue, poller.ErrNotConnected)
	}
	s.wg.Add(1)
	s.mu.Unlock()

	type result struct {
		n   int64
		err error
	}
	res := make(chan result, 1)
	go func() {
		defer s.wg.Done()
		// Ends when the broker answers or the connection closes (Close
		// waits for it).
		ch, err := ss.conn.Channel()
		if err != nil {
			res <- result{err: err}
			return
		}
		q, err := ch.QueueDeclarePassive(s.cfg.Queue, false, false, false, false, nil)
		_ = ch.Close()
		res <- result{n: int64(q.Messages), err: err}
	}()
	select {
	case <-ctx.Done():
		return 0, fmt.Errorf("rabbitmq: lag %s: %w", s.cfg.Queue, ctx.Err())
	case r := <-res:
		if r.err != nil {
			return 0, fmt.Errorf("rabbitmq: lag %s: %w", s.cfg.Queue, s.cfg.clean(r.err))
		}
		return r.n, nil
	}
}

// Close sends the acks still waiting behind an unsettled delivery, cancels
// the consumer, drains the deliveries still buffered, closes the channel
// and the connection. Acks made before Close take effect (no duplicates
// after a graceful stop); deliveries read but never acked are requeued by
// the broker. ctx bounds the close handshake (CloseTimeoutDefault when ctx
// has no deadline); past it the connection is dropped, which also
// requeues. Close is idempotent and safe before Connect; Acks after Close
// return ErrStaleDelivery.
func (s *Source) Close(ctx context.Context) error {
	s.connectMu.Lock()
	defer s.connectMu.Unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ss := s.sess
	s.sess = nil
	s.mu.Unlock()

	var err error
	if ss != nil {
		deadline := time.Now().Add(CloseTimeoutDefault)
		if dl, ok := ctx.Deadline(); ok {
			deadline = dl
		}
		err = ss.shutdown(deadline, ctx.Done())
		s.gen.Add(1) // every delivery handed out is now stale
		if err == nil {
			n := ss.acks.counts()
			s.cfg.Logger.Info("rabbitmq source closed", "generation", ss.gen,
				"multiple_acks", n.multiple, "single_acks", n.single, "nacks", n.nack)
		}
	}
	s.wg.Wait()
	return err
}
