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
	// fullTenants and fullLanes are those with no free slot now, kept as
	// slots are taken and given back, so Blocked costs O(blocked).
	fullTenants map[string]struct{}
	fullLanes   map[wire.Lane]struct{}
	rates       *Rates
	// freed is closed, and replaced, when a slot is released or a limit
	// grows, if anyone took it since (Freed, a waiting Acquire): every
	// waiter wakes, whichever entry point it serves.
	freed   chan struct{}
	watched bool
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
		tenants:     map[string]*slots{},
		lanes:       map[wire.Lane]*slots{},
		fullTenants: map[string]struct{}{},
		fullLanes:   map[wire.Lane]struct{}{},
		rates:       NewRates(),
		freed:       make(chan struct{}),
		now:         time.Now,
	}
}

// SetTenant sets a tenant's limit (max <= 0: unlimited).
func (l *Limits) SetTenant(tenant string, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slot(l.tenants, tenant).max = max
	l.noteTenant(tenant)
	l.broadcast()
}

// SetFunction sets a function's limit (max <= 0: unlimited); its adaptive
// limit starts there.
func (l *Limits) SetFunction(lane wire.Lane, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.laneSlot(lane)
	s.max, s.limit = max, 0
	l.noteLane(lane)
	l.broadcast()
}

// noteTenant and noteLane keep the full sets in step with the slots; mu
// is held.
func (l *Limits) noteTenant(tenant string) {
	if l.tenants[tenant].full() {
		l.fullTenants[tenant] = struct{}{}
	} else {
		delete(l.fullTenants, tenant)
	}
}

func (l *Limits) noteLane(lane wire.Lane) {
	if l.lanes[lane].full() {
		l.fullLanes[lane] = struct{}{}
	} else {
		delete(l.fullLanes, lane)
	}
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

// Blocked lists the tenants and lanes that may not start work now: those
// without a free slot and those whose rate has no token (the time of the
// next token is noted for RateWake). It is what the task runner hands the
// store's Lease, as data; it costs O(blocked + rate-limited lanes).
func (l *Limits) Blocked() (tenants []string, lanes []wire.Lane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for t := range l.fullTenants {
		tenants = append(tenants, t)
	}
	for ln := range l.fullLanes {
		lanes = append(lanes, ln)
	}
	now := l.now()
	rt, rl, wait := l.rates.held(now)
	if wait > 0 {
		l.noteWake(now.Add(wait))
	}
	return append(tenants, rt...), append(lanes, rl...)
}

// TryAcquire takes a slot of lane (and of its tenant) and a rate token if
// all are available.
func (l *Limits) TryAcquire(lane wire.Lane) bool {
	ok, _ := l.tryAcquire(lane)
	return ok
}

// tryAcquireOrWatch is tryAcquire; when it fails it also returns the
// channel closed at the next release, taken under the same lock.
func (l *Limits) tryAcquireOrWatch(lane wire.Lane) (bool, time.Duration, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, wait := l.tryAcquireLocked(lane)
	if ok {
		return true, 0, nil
	}
	l.watched = true
	return false, wait, l.freed
}

// tryAcquire is TryAcquire; when only the rate holds lane back it also
// returns how long until the next token.
func (l *Limits) tryAcquire(lane wire.Lane) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tryAcquireLocked(lane)
}

func (l *Limits) tryAcquireLocked(lane wire.Lane) (bool, time.Duration) {
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
	l.noteTenant(lane.Tenant)
	l.noteLane(lane)
	return true, 0
}

func (l *Limits) noteWake(at time.Time) {
	if l.wake.IsZero() || at.Before(l.wake) {
		l.wake = at
	}
}

// RateWake returns (and forgets) the earliest time at which a lane that
// Blocked or TryAcquire held back for its rate gets a token; zero if none.
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
		ok, wait, freed := l.tryAcquireOrWatch(lane)
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
		case <-freed:
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
	l.noteTenant(lane.Tenant)
	l.noteLane(lane)
	l.broadcast()
	l.mu.Unlock()
}

// Freed returns a channel that is closed at the next release of a slot or
// growth of a limit. Take it before looking at the limits (Blocked), so
// that a release in between is not missed.
func (l *Limits) Freed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watched = true
	return l.freed
}

// InFlight returns the slots in use by lane.
func (l *Limits) InFlight(lane wire.Lane) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.lanes[lane]; s != nil {
		return s.used
	}
	return 0
}

// broadcast wakes everyone waiting on freed; mu is held.
func (l *Limits) broadcast() {
	if l.watched {
		close(l.freed)
		l.freed = make(chan struct{})
		l.watched = false
	}
}
