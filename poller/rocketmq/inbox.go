package rocketmq

import (
	"slices"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/ferrydev/ferry/poller"
)

// inbox is the queue between the consume callbacks and Read. Its length is
// bounded by the callbacks in flight (each blocks until its messages are
// settled), so it needs no limit of its own.
type inbox struct {
	mu     sync.Mutex
	items  []*poller.Message
	notify chan struct{} // one pending wake-up for Read
}

func newInbox() *inbox { return &inbox{notify: make(chan struct{}, 1)} }

func (in *inbox) wake() {
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

// push appends msgs.
func (in *inbox) push(msgs []*poller.Message) {
	in.mu.Lock()
	in.items = append(in.items, msgs...)
	in.mu.Unlock()
	in.wake()
}

// pushFront puts a redelivered message ahead of the others.
func (in *inbox) pushFront(m *poller.Message) {
	in.mu.Lock()
	in.items = slices.Insert(in.items, 0, m)
	in.mu.Unlock()
	in.wake()
}

// take removes and returns up to n messages, oldest first.
func (in *inbox) take(n int) []*poller.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	n = min(n, len(in.items))
	if n == 0 {
		return nil
	}
	out := slices.Clone(in.items[:n])
	clear(in.items[:n])
	in.items = in.items[n:]
	if len(in.items) == 0 {
		in.items = nil // let the backing array go
	} else {
		in.wake()
	}
	return out
}

// sequencer restores queue order in concurrent mode. The client starts one
// goroutine per batch, in offset order, but they may reach the callback in
// any order. Offsets are dense within a queue (except where tag filtering
// or a rebalance skips some), so a batch that does not start where the
// previous one of its queue ended waits, at most sequenceWindow, for the
// batch in between.
type sequencer struct {
	out    func([]*poller.Message)
	window time.Duration

	mu      sync.Mutex
	queues  map[primitive.MessageQueue]*queueSeq
	stopped bool
}

type queueSeq struct {
	next  int64 // offset after the last batch passed on; valid when known
	known bool
	held  []heldBatch // sorted by first offset
	timer *time.Timer
}

type heldBatch struct {
	first, last int64
	msgs        []*poller.Message
}

func newSequencer(out func([]*poller.Message), window time.Duration) *sequencer {
	return &sequencer{out: out, window: window, queues: map[primitive.MessageQueue]*queueSeq{}}
}

// add passes the batch of queue mq holding offsets first..last on, in order.
func (s *sequencer) add(mq primitive.MessageQueue, first, last int64, msgs []*poller.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	q := s.queues[mq]
	if q == nil {
		q = &queueSeq{}
		s.queues[mq] = q
	}
	i, _ := slices.BinarySearchFunc(q.held, first, func(h heldBatch, f int64) int { return cmpInt(h.first, f) })
	q.held = slices.Insert(q.held, i, heldBatch{first, last, msgs})
	s.drain(mq, q, false)
}

// drain passes on the held batches that are next in line; with force, the
// first held batch goes regardless of a gap before it. Caller holds s.mu.
func (s *sequencer) drain(mq primitive.MessageQueue, q *queueSeq, force bool) {
	for len(q.held) > 0 && (force || !q.known || q.held[0].first <= q.next) {
		h := q.held[0]
		q.held[0] = heldBatch{}
		q.held = q.held[1:]
		s.out(h.msgs)
		q.next, q.known, force = h.last+1, true, false
	}
	if len(q.held) == 0 {
		q.held = nil
		return
	}
	if q.timer == nil {
		q.timer = time.AfterFunc(s.window, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			q.timer = nil
			if !s.stopped {
				s.drain(mq, q, true)
			}
		})
	}
}

// stop drops what is held (those callbacks return unsettled on Close) and
// stops the timers.
func (s *sequencer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for _, q := range s.queues {
		if q.timer != nil {
			q.timer.Stop()
		}
	}
	s.queues = nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
