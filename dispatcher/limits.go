package dispatcher

import (
	"context"
	"log/slog"
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
//
// The rates' buckets are in this node's memory (Rates) unless a shared
// RateStore is set (SetRateStore): then a slot is taken first, and the
// token from the store outside Limits' lock; when the store refuses, the
// slot is given back and the lane held back for the wait the store gave
// (a lower bound of its next token: other nodes only take more), so that
// Blocked lists it and waiters do not ask the store again before then.
type Limits struct {
	mu      sync.Mutex
	tenants map[string]*slots
	lanes   map[wire.Lane]*slots
	// fullTenants and fullLanes are those with no free slot now, kept as
	// slots are taken and given back, so Blocked costs O(blocked).
	fullTenants map[string]struct{}
	fullLanes   map[wire.Lane]struct{}
	rates       *Rates
	shared      RateStore // nil: the rates are in rates
	// heldUntil is, per lane the shared store refused, the end of the
	// wait it gave.
	heldUntil map[wire.Lane]time.Time
	log       *slog.Logger
	errLogged time.Time // when a shared store's error was last logged
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
		heldUntil:   map[wire.Lane]time.Time{},
		log:         slog.Default(),
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
// They are not used once a shared RateStore is set.
func (l *Limits) Rates() *Rates { return l.rates }

// SetRateStore makes l take rate tokens from s, a store that nodes share
// (nil: from Rates, in this node's memory); log receives its errors (nil:
// slog.Default). Set it before use. A token costs a call to s outside l's
// lock; an error of s takes nothing: the lane is held back for
// sharedRetry and tried again (Acquire waits, TryAcquire says no), with a
// log line at most every sharedRetry, so no invocation is lost while the
// store is away.
func (l *Limits) SetRateStore(s RateStore, log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shared = s
	if log != nil {
		l.log = log
	}
}

// Shared rate store timings.
const (
	// sharedRetry is how long a lane is held back after an error of the
	// shared rate store.
	sharedRetry = time.Second
	// sharedTimeout bounds one call to the shared rate store; a call that
	// takes longer is an error of the store.
	sharedTimeout = 2 * time.Second
)

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
// store's Lease, as data; it costs O(blocked + rate-limited lanes). With
// a shared RateStore the rate-held lanes are those it refused lately,
// until the wait it gave ends.
func (l *Limits) Blocked() (tenants []string, lanes []wire.Lane) {
	return l.blocked(true)
}

// BlockedSlots is Blocked without the rates: the tenants and lanes
// without a free slot. It is what the task runner hands a Lease that takes
// the rate tokens itself (TaskRunnerConfig.RatesAtLease).
func (l *Limits) BlockedSlots() (tenants []string, lanes []wire.Lane) {
	return l.blocked(false)
}

func (l *Limits) blocked(rates bool) (tenants []string, lanes []wire.Lane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for t := range l.fullTenants {
		tenants = append(tenants, t)
	}
	for ln := range l.fullLanes {
		lanes = append(lanes, ln)
	}
	if !rates {
		return tenants, lanes
	}
	now := l.now()
	if l.shared != nil {
		for ln, until := range l.heldUntil {
			if !until.After(now) {
				delete(l.heldUntil, ln)
				continue
			}
			lanes = append(lanes, ln)
			l.noteWake(until)
		}
		return tenants, lanes
	}
	rt, rl, wait := l.rates.held(now)
	if wait > 0 {
		l.noteWake(now.Add(wait))
	}
	return append(tenants, rt...), append(lanes, rl...)
}

// Room returns how many tasks of lane could start now by the slots free for
// it and its tenant (-1: no bound), and at most 1 when a rate applies to it
// (tokens are taken one by one): what a store that leases several tasks in
// one call may take of the lane.
func (l *Limits) Room(lane wire.Lane) int {
	l.mu.Lock()
	room := -1
	for _, s := range []*slots{l.tenants[lane.Tenant], l.lanes[lane]} {
		if s != nil && s.max > 0 {
			free := max(s.capacity()-s.used, 0)
			if room < 0 || free < room {
				room = free
			}
		}
	}
	shared := l.shared != nil
	l.mu.Unlock()
	if (shared || l.rates.limited(lane)) && (room < 0 || room > 1) {
		room = 1
	}
	return room
}

// TryAcquire takes a slot of lane (and of its tenant) and a rate token if
// all are available. With a shared RateStore it may wait for the store,
// up to sharedTimeout.
func (l *Limits) TryAcquire(lane wire.Lane) bool {
	l.mu.Lock()
	ok, _ := l.tryAcquireLocked(lane, true)
	l.mu.Unlock()
	if !ok || l.shared == nil {
		return ok
	}
	ok, _ = l.takeShared(context.Background(), lane)
	return ok
}

// TryAcquireSlot takes a slot of lane and of its tenant if both are free,
// without a rate token: for work whose token was taken elsewhere (a task
// whose Lease took it, see TaskRunnerConfig.RatesAtLease).
func (l *Limits) TryAcquireSlot(lane wire.Lane) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, _ := l.tryAcquireLocked(lane, false)
	return ok
}

// tryAcquireOrWatch is tryAcquireLocked with rates; when it fails it also
// returns the channel closed at the next release, taken under the same
// lock.
func (l *Limits) tryAcquireOrWatch(lane wire.Lane) (bool, time.Duration, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, wait := l.tryAcquireLocked(lane, true)
	if ok {
		return true, 0, nil
	}
	l.watched = true
	return false, wait, l.freed
}

// tryAcquireLocked takes a slot of lane and of its tenant and, with rates
// and the rates in memory, a token; when only the rate holds lane back it
// also returns how long until the next token. With a shared RateStore it
// takes only the slot (the caller then takes the token: takeShared), unless
// the store's last refusal still holds the lane back. mu is held.
func (l *Limits) tryAcquireLocked(lane wire.Lane, rates bool) (bool, time.Duration) {
	t, f := l.slot(l.tenants, lane.Tenant), l.laneSlot(lane)
	if t.full() || f.full() {
		return false, 0
	}
	now := l.now()
	switch {
	case !rates:
	case l.shared != nil:
		if until, held := l.heldUntil[lane]; held {
			if w := until.Sub(now); w > 0 {
				return false, w
			}
			delete(l.heldUntil, lane)
		}
	default:
		if w := l.rates.TakeAt(lane, now); w > 0 {
			l.noteWake(now.Add(w))
			return false, w
		}
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

// takeShared takes lane's token from the shared RateStore for the slot
// just taken, waiting for the store up to sharedTimeout. When the store
// refuses or fails, it gives the slot back, holds lane back for the wait
// the store gave (sharedRetry after an error, logged) and returns that
// wait; it returns (false, 0) when ctx ended first.
func (l *Limits) takeShared(ctx context.Context, lane wire.Lane) (bool, time.Duration) {
	callCtx, cancel := context.WithTimeout(ctx, sharedTimeout)
	w, err := l.shared.Take(callCtx, lane)
	cancel()
	if err == nil && w <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseLocked(lane)
	if err != nil {
		if ctx.Err() != nil {
			return false, 0
		}
		if now := l.now(); now.Sub(l.errLogged) >= sharedRetry {
			l.errLogged = now
			l.log.Warn("rate store unavailable: invocations wait and retry", "tenant", lane.Tenant,
				"function", lane.Function, "retry_in", sharedRetry, "error", err)
		}
		w = sharedRetry
	}
	until := l.now().Add(w)
	if until.After(l.heldUntil[lane]) {
		l.heldUntil[lane] = until
	}
	l.noteWake(until)
	return false, w
}

// Acquire waits for a slot and a rate token of lane, or for ctx to end.
// With a shared RateStore that fails, it waits and retries (see
// SetRateStore).
func (l *Limits) Acquire(ctx context.Context, lane wire.Lane) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		ok, wait, freed := l.tryAcquireOrWatch(lane)
		if ok && l.shared == nil {
			return nil
		}
		if ok {
			if ok, wait = l.takeShared(ctx, lane); ok {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			freed = nil // a release brings no token: wait for the time
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

// Release gives back a slot taken by TryAcquire, TryAcquireSlot or
// Acquire.
func (l *Limits) Release(lane wire.Lane) {
	l.mu.Lock()
	l.releaseLocked(lane)
	l.mu.Unlock()
}

func (l *Limits) releaseLocked(lane wire.Lane) {
	l.slot(l.tenants, lane.Tenant).used--
	l.laneSlot(lane).used--
	l.noteTenant(lane.Tenant)
	l.noteLane(lane)
	l.broadcast()
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
