package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/ferrydev/ferry/poller"
)

// errSessionEnded is returned by an Ack that comes after Close released the
// message's callback: the message is redelivered by the broker.
var errSessionEnded = errors.New("rocketmq: source closed before the ack; the message will be redelivered")

// queueProgress is what a session knows of one message queue, for Close's
// final flush: the offsets of messages whose callback has not reported
// success yet, and the highest offset reported settled.
type queueProgress struct {
	held    map[int64]int
	maxDone int64
}

// mqProgress is the client's view of one queue: the offset it would commit
// and whether the queue was dropped (rebalanced away or shut down).
type mqProgress struct {
	commit  int64
	dropped bool
}

// session is one connected push consumer and the callbacks it runs.
type session struct {
	source  string
	log     *slog.Logger
	orderly bool
	in      *inbox
	seq     *sequencer // nil in orderly mode

	shutdown func() error                                 // the consumer's Shutdown
	progress func() map[primitive.MessageQueue]mqProgress // the client's offsets per queue

	stopping chan struct{} // closed when Close begins
	released chan struct{} // closed once the consumer is shut down
	stopOnce sync.Once

	mu     sync.Mutex
	queues map[primitive.MessageQueue]*queueProgress
}

func newSession(source string, log *slog.Logger, orderly bool) *session {
	s := &session{
		source:   source,
		log:      log,
		orderly:  orderly,
		in:       newInbox(),
		stopping: make(chan struct{}),
		released: make(chan struct{}),
		queues:   map[primitive.MessageQueue]*queueProgress{},
	}
	if !orderly {
		s.seq = newSequencer(s.in.push, sequenceWindow)
	}
	return s
}

// batch is one callback's messages, pending until each one is acked.
type batch struct {
	sess    *session
	mq      primitive.MessageQueue
	offsets []int64
	pending atomic.Int32
	done    chan struct{} // closed when every message was acked with nil
}

// consume is the push consumer's callback. It hands msgs to Read and
// returns only after Ferry's outcome: ConsumeSuccess once all were acked
// with nil. While the Source runs a nack redelivers locally, so the
// callback keeps waiting; it answers with failure only after Close has shut
// the consumer down, when the client drops the answer of the queue instead
// of sending the messages back to the %RETRY% topic (which could advance
// the offset past messages whose send-back failed: #797, #976, #1106).
func (s *session) consume(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	failed := consumer.ConsumeRetryLater
	if s.orderly {
		failed = consumer.SuspendCurrentQueueAMoment
		if octx, ok := primitive.GetOrderlyCtx(ctx); ok {
			octx.SuspendCurrentQueueTimeMillis = int(suspendOrderly / time.Millisecond)
		}
	}
	if len(msgs) == 0 {
		return consumer.ConsumeSuccess, nil
	}
	var mq primitive.MessageQueue
	if mctx, ok := primitive.GetConsumerCtx(ctx); ok && mctx.MQ != nil {
		mq = *mctx.MQ
	} else if msgs[0].Queue != nil {
		mq = *msgs[0].Queue
	} else {
		mq.Topic = msgs[0].Topic
	}
	b := &batch{sess: s, mq: mq, offsets: make([]int64, len(msgs)), done: make(chan struct{})}
	b.pending.Store(int32(len(msgs)))
	out := make([]*poller.Message, len(msgs))
	for i, m := range msgs {
		b.offsets[i] = m.QueueOffset
		out[i] = b.message(toMessage(s.source, mq, m))
	}
	s.hold(mq, b.offsets)
	select {
	case <-s.stopping:
		// Not handed to Read: wait until the queue is dropped, so that the
		// answer below commits nothing and sends nothing back.
		<-s.released
		return failed, nil
	default:
	}
	if s.seq != nil {
		s.seq.add(mq, msgs[0].QueueOffset, msgs[len(msgs)-1].QueueOffset, out)
	} else {
		s.in.push(out)
	}

	select {
	case <-b.done:
	case <-s.released:
		select {
		case <-b.done: // settled just in time
		default:
			return failed, nil
		}
	}
	return consumer.ConsumeSuccess, nil
}

// message sets m's Ack: nil counts it settled, an error redelivers it
// (a fresh Message with the same id) after nackRedelivery.
func (b *batch) message(m *poller.Message) *poller.Message {
	var acked atomic.Bool
	m.Ack = func(_ context.Context, err error) error {
		if !acked.CompareAndSwap(false, true) {
			return fmt.Errorf("rocketmq: message %s acked twice", m.ID)
		}
		select {
		case <-b.sess.released:
			return errSessionEnded
		default:
		}
		if err == nil {
			if b.pending.Add(-1) == 0 {
				// Recorded before the callback can return, so that
				// Close waits for the client to commit it.
				b.sess.settled(b.mq, b.offsets)
				close(b.done)
			}
			return nil
		}
		again := b.message(&poller.Message{
			ID: m.ID, Scope: m.Scope, Key: m.Key, Source: m.Source, Payload: m.Payload,
			ContentType: m.ContentType, Headers: m.Headers, Time: m.Time,
		})
		time.AfterFunc(nackRedelivery, func() {
			select {
			case <-b.sess.stopping:
			default:
				b.sess.in.pushFront(again)
			}
		})
		return nil
	}
	return m
}

// hold records the offsets of a callback's messages as unsettled.
func (s *session) hold(mq primitive.MessageQueue, offsets []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[mq]
	if q == nil {
		q = &queueProgress{held: map[int64]int{}, maxDone: -1}
		s.queues[mq] = q
	}
	for _, off := range offsets {
		q.held[off]++
	}
}

// settled records a callback's offsets as settled, when its last message
// is acked: the callback then returns ConsumeSuccess and Close waits for
// the client to record the offset.
func (s *session) settled(mq primitive.MessageQueue, offsets []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[mq]
	for _, off := range offsets {
		if q.held[off]--; q.held[off] <= 0 {
			delete(q.held, off)
		}
		q.maxDone = max(q.maxDone, off)
	}
}

// targets is, per queue with settled messages, the offset the client
// commits once it has processed every ConsumeSuccess already returned: up
// to the oldest unsettled message, else just past the newest settled one.
func (s *session) targets() map[primitive.MessageQueue]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := make(map[primitive.MessageQueue]int64, len(s.queues))
	for mq, q := range s.queues {
		if q.maxDone < 0 {
			continue
		}
		target := q.maxDone + 1
		for off := range q.held {
			target = min(target, off)
		}
		t[mq] = target
	}
	return t
}

// waitSettled waits until the client has recorded the offsets of every
// ConsumeSuccess returned so far. The client does that right after the
// callback returns, on its own goroutine; shutting it down first would drop
// those offsets and cause duplicates on a graceful stop.
func (s *session) waitSettled(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, settleWait)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		want := s.targets()
		got := s.progress()
		behind := 0
		for mq, off := range want {
			if p, ok := got[mq]; ok && !p.dropped && p.commit < off {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		select {
		case <-ctx.Done():
			s.log.Warn("rocketmq: closing before the client recorded every settled offset; those messages may be redelivered",
				"queues", behind)
			return
		case <-tick.C:
		}
	}
}

// stop ends the session: no more deliveries to Read, the settled offsets
// recorded, the consumer shut down (its queues dropped and the offsets
// flushed to the broker), then the callbacks still waiting released.
func (s *session) stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		close(s.stopping)
		if s.seq != nil {
			s.seq.stop()
		}
		defer close(s.released)
		s.waitSettled(ctx)
		if e := s.shutdown(); e != nil {
			err = fmt.Errorf("rocketmq: shutting down the consumer: %w", e)
		}
	})
	return err
}
