package rabbitmq

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Settling deliveries with few frames. RabbitMQ keeps a channel's unacked
// deliveries in a queue ordered by delivery tag: an ack of the oldest one
// is cheap, an ack of a delivery in the middle walks the queue to find it.
// Ferry's workers finish messages out of order (they are routed by key), so
// one basic.ack per message, in completion order, costs the broker several
// times the CPU of in-order `multiple` acks.
//
// tracker therefore records the deliveries handed out on one channel and
// their settlements, and only acks from the front: when the oldest
// deliveries are all settled, one basic.ack with multiple=true acks them.
// AMQP 0-9-1 defines `multiple` as "up to and including" the tag; RabbitMQ
// acks the deliveries still unacked up to it and rejects the frame (closing
// the channel) when the tag itself is no longer unacked, so the tag of a
// `multiple` ack is always one the tracker has not sent anything for.

// tagState is where one tracked delivery stands.
type tagState uint8

const (
	// outstanding: handed out, not settled yet.
	outstanding tagState = iota
	// acked: acked by the poller, the ack not sent yet (it waits until
	// every older delivery is settled).
	acked
	// sent: settled on the broker already, by a nack (requeue) or an
	// individual ack; a `multiple` ack may cover it but never name it.
	sent
)

type tracked struct {
	tag   uint64
	state tagState
}

// ackPlan is the frames one settlement needs, in sending order: the nack,
// then the `multiple` ack, then the individual acks.
type ackPlan struct {
	// nack is the tag to nack with requeue (multiple=false); 0: none.
	nack uint64
	// upTo is the tag of the basic.ack with multiple=true; 0: none.
	upTo uint64
	// singles are acked with multiple=false, one frame each.
	singles []uint64
}

func (p ackPlan) empty() bool { return p.nack == 0 && p.upTo == 0 && len(p.singles) == 0 }

// tracker is the settlement bookkeeping of one channel: pure logic, no
// locking, I/O or clock (acker adds them). Deliveries are added in delivery
// tag order, as the channel delivers them.
type tracker struct {
	// entries[head:] are the tracked deliveries in tag order; the first,
	// when there is one, is outstanding (a settled front is dropped at
	// once). The array is reused: memory stays at about the prefetch.
	entries []tracked
	head    int
	// waiting counts the acked entries, all of them behind an outstanding
	// one.
	waiting int
	// advances counts the times the front moved.
	advances uint64
	// stuck is set by stall: until the front moves, acks are sent one by
	// one instead of waiting.
	stuck bool
}

// live returns the tracked deliveries.
func (t *tracker) live() []tracked { return t.entries[t.head:] }

// add tracks a delivery handed out to the poller.
func (t *tracker) add(tag uint64) {
	live := t.live()
	if n := len(live); n > 0 && live[n-1].tag >= tag {
		// Tags grow on a channel and Read is serialised, so this is not
		// expected; keep the order anyway.
		if i, found := t.find(tag); !found {
			t.entries = slices.Insert(t.entries, t.head+i, tracked{tag: tag})
		}
		return
	}
	if t.head > 0 && t.head >= len(t.entries)/2 {
		// Move the live part to the front (amortised: the dropped part is
		// at least as long as what moves).
		n := copy(t.entries, live)
		t.entries, t.head = t.entries[:n], 0
	}
	t.entries = append(t.entries, tracked{tag: tag})
}

// find returns the index of tag in live().
func (t *tracker) find(tag uint64) (int, bool) {
	return slices.BinarySearchFunc(t.live(), tag, func(e tracked, tag uint64) int {
		switch {
		case e.tag < tag:
			return -1
		case e.tag > tag:
			return 1
		}
		return 0
	})
}

// settle records the outcome of delivery tag (ok: ack; otherwise nack with
// requeue) and returns the frames to send now. A nack is sent at once; an
// ack is sent when it joins the settled front, or at once, alone, while
// the front is stuck.
func (t *tracker) settle(tag uint64, ok bool) (ackPlan, error) {
	i, found := t.find(tag)
	if !found || t.live()[i].state != outstanding {
		return ackPlan{}, fmt.Errorf("delivery tag %d is not outstanding", tag)
	}
	e := &t.live()[i]
	var p ackPlan
	switch {
	case !ok:
		e.state = sent
		p.nack = tag
	case t.stuck && i > 0:
		e.state = sent
		p.singles = []uint64{tag}
	default:
		e.state = acked
		t.waiting++
	}
	if i == 0 {
		p.upTo = t.advance()
	}
	return p, nil
}

// advance drops the settled front and returns the highest acked tag in it
// (0 when it holds no ack to send): one `multiple` ack for that tag settles
// the whole front, skipping the deliveries already nacked or acked.
func (t *tracker) advance() (upTo uint64) {
	live := t.live()
	n := 0
	for n < len(live) && live[n].state != outstanding {
		if live[n].state == acked {
			upTo = live[n].tag
			t.waiting--
		}
		n++
	}
	if n == 0 {
		return 0
	}
	t.advances++
	t.stuck = false
	t.head += n
	if t.head == len(t.entries) {
		t.entries, t.head = t.entries[:0], 0
	}
	return upTo
}

// stall is called when acks have been waiting for a while: if the front
// has not moved since advances was since, it returns the waiting acks to
// send one by one, and acks are sent alone until the front moves (a slow
// message must not hold the prefetch window: waiting acks still count
// against it, and the broker stops delivering).
func (t *tracker) stall(since uint64) []uint64 {
	if t.advances != since || t.waiting == 0 {
		return nil
	}
	t.stuck = true
	return t.release()
}

// release marks every waiting ack sent and returns their tags.
func (t *tracker) release() []uint64 {
	var tags []uint64
	live := t.live()
	for i := range live {
		if live[i].state == acked {
			live[i].state = sent
			tags = append(tags, live[i].tag)
		}
	}
	t.waiting = 0
	return tags
}

// ackSender sends settlement frames; *amqp.Channel implements it.
type ackSender interface {
	Ack(tag uint64, multiple bool) error
	Nack(tag uint64, multiple, requeue bool) error
}

// ackStats counts the settlement frames sent on one channel.
type ackStats struct {
	multiple, single, nack int
}

// ackPatience is how long acks wait behind an unsettled delivery that does
// not move before they are sent one by one (between ackPatience and twice
// that). Gaps left by workers finishing out of order close much sooner.
// Each Source keeps its own copy (settings.ackPatience), which tests set.
const ackPatience = time.Second

// acker is the tracker of one session's channel with its lock, its clock
// and the channel to send on. Nacks and single acks are sent under the
// lock. `multiple` acks are group-committed: the settlement that moves the
// front records its tag as pending and, unless a send is under way, sends
// it outside the lock, then whatever became pending meanwhile, so
// settlements that arrive during a send cost no frame of their own. The
// broker still sees every frame in a safe order: a `multiple` ack only
// names a tag of the settled front, which a nack never is, and any nack it
// covers was written before the front moved past it; one `multiple` ack
// goes out at a time, with growing tags; close waits for the send under
// way.
type acker struct {
	ch       ackSender
	patience time.Duration

	mu     sync.Mutex
	t      tracker
	closed bool
	stats  ackStats
	// pending is the tag of the next `multiple` ack (0: none); flushing
	// is set while a goroutine sends them, and idle signals its end.
	pending  uint64
	flushing bool
	idle     sync.Cond
	// timer is armed while acks wait (see stall); armedAt is t.advances
	// when it was armed.
	timer   *time.Timer
	armedAt uint64
	// coalesce is how far the settled front moves before a `multiple` ack
	// goes out while deliveries are still outstanding (1: at once); a
	// pending ack that has not reached it goes out after ackLinger, or at
	// once when nothing is outstanding. sent is the tag acked last.
	coalesce uint64
	sent     uint64
	linger   *time.Timer
}

// ackLinger bounds how long a `multiple` ack waits for the front to move
// coalesce tags further.
const ackLinger = 2 * time.Millisecond

func newAcker(ch ackSender, patience time.Duration) *acker {
	a := &acker{ch: ch, patience: patience, coalesce: 1}
	a.idle.L = &a.mu
	return a
}

// add tracks a delivery; it must be called before the delivery is handed
// out, and in delivery order (Read is serialised).
func (a *acker) add(tag uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.t.add(tag)
	}
}

// settle records the outcome of delivery tag and sends the frames it
// allows. It returns ErrStaleDelivery once the acker is closed, and wraps
// it when a frame cannot be sent (the channel is gone: the broker requeues
// every delivery not acked yet, this one included).
func (a *acker) settle(tag uint64, ok bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrStaleDelivery
	}
	p, err := a.t.settle(tag, ok)
	if err != nil {
		return err
	}
	upTo := p.upTo
	p.upTo = 0
	err = a.send(p)
	a.watch()
	if err != nil || upTo == 0 {
		return err
	}
	a.pending = upTo
	if a.flushing {
		return nil // the goroutine sending sends this one too
	}
	if len(a.t.live()) > 0 && upTo-a.sent < a.coalesce {
		// Deliveries are still outstanding: let the front move on, so
		// one frame acks many (the broker pays per frame).
		if a.linger == nil {
			a.linger = time.AfterFunc(ackLinger, a.lingered)
		}
		return nil
	}
	return a.flush()
}

// lingered sends the `multiple` ack that waited ackLinger.
func (a *acker) lingered() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.linger = nil
	if a.closed || a.flushing || a.pending == 0 {
		return
	}
	// A failure means the channel is closed: the broker requeues, and
	// Read reports the loss.
	_ = a.flush()
}

// flush sends the pending `multiple` acks outside the lock (held on entry
// and on return) until none is left.
func (a *acker) flush() error {
	a.flushing = true
	defer func() {
		a.flushing = false
		a.idle.Broadcast()
	}()
	for a.pending != 0 && !a.closed {
		upTo := a.pending
		a.pending = 0
		a.mu.Unlock()
		err := a.ch.Ack(upTo, true)
		a.mu.Lock()
		if err != nil {
			return fmt.Errorf("%w: ack up to tag %d: %w", ErrStaleDelivery, upTo, err)
		}
		a.sent = upTo
		a.stats.multiple++
	}
	return nil
}

// watch arms the timer when acks wait and it is not armed.
func (a *acker) watch() {
	if a.timer == nil && a.t.waiting > 0 && !a.closed {
		a.armedAt = a.t.advances
		a.timer = time.AfterFunc(a.patience, a.expire)
	}
}

// expire sends the waiting acks if the front has not moved since the
// timer was armed, and watches again.
func (a *acker) expire() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.timer = nil
	if a.closed {
		return
	}
	// A failure means the channel is closed: the broker requeues, and
	// Read reports the loss.
	_ = a.send(ackPlan{singles: a.t.stall(a.armedAt)})
	a.watch()
}

// close sends the acks still waiting behind an outstanding delivery, one
// frame each (the outstanding ones are requeued when the channel closes),
// and refuses every later settlement with ErrStaleDelivery. Idempotent.
func (a *acker) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	if a.linger != nil {
		a.linger.Stop()
		a.linger = nil
	}
	for a.flushing {
		a.idle.Wait()
	}
	p := ackPlan{upTo: a.pending, singles: a.t.release()}
	a.pending = 0
	a.t = tracker{}
	return a.send(p)
}

// send writes p's frames in order; it stops at the first failure, which
// means the channel is closed (basic.ack and basic.nack have no reply).
func (a *acker) send(p ackPlan) error {
	if p.empty() {
		return nil
	}
	if p.nack != 0 {
		if err := a.ch.Nack(p.nack, false, true); err != nil {
			return fmt.Errorf("%w: nack: %w", ErrStaleDelivery, err)
		}
		a.stats.nack++
	}
	if p.upTo != 0 {
		if err := a.ch.Ack(p.upTo, true); err != nil {
			return fmt.Errorf("%w: ack up to tag %d: %w", ErrStaleDelivery, p.upTo, err)
		}
		a.stats.multiple++
	}
	for _, tag := range p.singles {
		if err := a.ch.Ack(tag, false); err != nil {
			return fmt.Errorf("%w: ack: %w", ErrStaleDelivery, err)
		}
		a.stats.single++
	}
	return nil
}

// counts returns the frames sent so far.
func (a *acker) counts() ackStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}
