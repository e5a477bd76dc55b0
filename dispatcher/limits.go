package dispatcher

import (
	"context"
	"sync"
	"time"

	"github.com/ferrydev/ferry/wire"
)

// Limits enforces per-tenant and per-function max_concurrency, the
// functions' adaptive concurrency limits (see Feedback) and the tenants'
// and functions' rates. A slot (and a rate token) is taken before work is
// pulled (a task leased, a batch read) and the slot is given back when its
// outcome is recorded, so the limits are never exceeded, whichever entry
// point (async task or poller) takes the slot.
type Limits struct {
	mu      sync.Mutex
	tenants map[string]*slots
	lanes   map[wire.Lane]*slots
	rates   *Rates
	freed   chan struct{}
	wake    time.Time // earliest time a rate-limited lane gets a token
	now     func() time.Time
}

// slots counts a tenant's or a lane's invocations in flight.
type slots struct {
	max, used int
	// limit is a lane's adaptive limit in [1, max] (AIMD); 0 until the
	// first feedback. decreased is when it was last halved.
	limit     float64
	decreased time.Time
}

// capacity is the number of slots usable now.
func (s *slots) capacity() int {
	if s.limit > 0 {
		return min(s.max, max(1, int(s.limit)))
	}
	return s.max
}

func (s *slots) full() bool { return s != nil && s.max > 0 && s.used >= s.capacity() }

// NewLimits returns Limits with no limits set: unknown tenants and lanes are
// unlimited until SetTenant / SetFunction / Rates.
func NewLimits() *Limits {
	return &Limits{
		tenants: map[string]*slots{},
		lanes:   map[wire.Lane]*slots{},
		rates:   NewRates(),
		freed:   make(chan struct{}, 1),
		now:     time.Now,
	}
}

// SetTenant sets a tenant's limit (max <= 0: unlimited).
func (l *Limits) SetTenant(tenant string, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slot(l.tenants, tenant).max = max
}

// SetFunction sets a function's limit (max <= 0: unlimited); its adaptive
// limit starts there.
func (l *Limits) SetFunction(lane wire.Lane, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.laneSlot(lane)
	s.max, s.limit = max, 0
}

// Rates returns the rates invocations are held to; set them before use.
func (l *Limits) Rates() *Rates { return l.rates }

func (l *Limits) slot(m map[string]*slots, k string) *slots {
	s := m[k]
	if s == nil {
		s = &slots{}
		m[k] = s
	}
	return s
}

func (l *Limits) laneSlot(lane wire.Lane) *slots {
	s := l.lanes[lane]
	if s == nil {
		s = &slots{}
		l.lanes[lane] = s
	}
	return s
}

// Allow reports whether lane has a free slot and a rate token now, without
// taking them. When only the rate holds it back, the time of its next
// token is noted for RateWake.
func (l *Limits) Allow(lane wire.Lane) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tenants[lane.Tenant].full() || l.lanes[lane].full() {
		return false
	}
	now := l.now()
	if w := l.rates.Wait(lane, now); w > 0 {
		l.noteWake(now.Add(w))
		return false
	}
	return true
}

// TryAcquire takes a slot of lane (and of its tenant) and a rate token if
// all are available.
func (l *Limits) TryAcquire(lane wire.Lane) bool {
	ok, _ := l.tryAcquire(lane)
	return ok
}

// tryAcquire is TryAcquire; when only the rate holds lane back it also
// returns how long until the next token.
func (l *Limits) tryAcquire(lane wire.Lane) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, f := l.slot(l.tenants, lane.Tenant), l.laneSlot(lane)
	if t.full() || f.full() {
		return false, 0
	}
	now := l.now()
	if w := l.rates.Take(lane, now); w > 0 {
		l.noteWake(now.Add(w))
		return false, w
	}
	t.used++
	f.used++
	return true, 0
}

func (l *Limits) noteWake(at time.Time) {
	if l.wake.IsZero() || at.Before(l.wake) {
		l.wake = at
	}
}

// RateWake returns (and forgets) the earliest time at which a lane that
// Allow or TryAcquire held back for its rate gets a token; zero if none.
func (l *Limits) RateWake() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.wake
	l.wake = time.Time{}
	return w
}

// Acquire waits for a slot and a rate token of lane, or for ctx to end.
func (l *Limits) Acquire(ctx context.Context, lane wire.Lane) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		ok, wait := l.tryAcquire(lane)
		if ok {
			return nil
		}
		var tick <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			tick = timer.C
		}
		select {
		case <-l.freed:
			// Pass the signal on: another waiter may fit too.
			l.signal()
		case <-tick:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release gives back a slot taken by TryAcquire or Acquire.
func (l *Limits) Release(lane wire.Lane) {
	l.mu.Lock()
	l.slot(l.tenants, lane.Tenant).used--
	l.laneSlot(lane).used--
	l.mu.Unlock()
	l.signal()
}

// Freed is signalled (coalesced) whenever a slot is released or the
// adaptive limit grows.
func (l *Limits) Freed() <-chan struct{} { return l.freed }

// InFlight returns the slots in use by lane.
func (l *Limits) InFlight(lane wire.Lane) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.lanes[lane]; s != nil {
		return s.used
	}
	return 0
}

func (l *Limits) signal() {
	select {
	case l.freed <- struct{}{}:
	default:
	}
}
