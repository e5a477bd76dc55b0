package dispatcher

import (
	"context"
	"sync"

	"github.com/ferrydev/ferry/async"
)

// Limits enforces per-tenant and per-function max_concurrency. A slot is
// taken before work is pulled (a task leased, a batch read) and given back
// when its outcome is recorded, so the limits are never exceeded, whichever
// entry point (async task or poller) takes the slot.
type Limits struct {
	mu      sync.Mutex
	tenants map[string]*slots
	lanes   map[async.Lane]*slots
	freed   chan struct{}
}

type slots struct{ max, used int }

func (s *slots) full() bool { return s != nil && s.max > 0 && s.used >= s.max }

// NewLimits returns Limits with no limits set: unknown tenants and lanes are
// unlimited until SetTenant / SetFunction.
func NewLimits() *Limits {
	return &Limits{
		tenants: map[string]*slots{},
		lanes:   map[async.Lane]*slots{},
		freed:   make(chan struct{}, 1),
	}
}

// SetTenant sets a tenant's limit (max <= 0: unlimited).
func (l *Limits) SetTenant(tenant string, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slot(l.tenants, tenant).max = max
}

// SetFunction sets a function's limit (max <= 0: unlimited).
func (l *Limits) SetFunction(lane async.Lane, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.laneSlot(lane).max = max
}

func (l *Limits) slot(m map[string]*slots, k string) *slots {
	s := m[k]
	if s == nil {
		s = &slots{}
		m[k] = s
	}
	return s
}

func (l *Limits) laneSlot(lane async.Lane) *slots {
	s := l.lanes[lane]
	if s == nil {
		s = &slots{}
		l.lanes[lane] = s
	}
	return s
}

// Allow reports whether lane has a free slot now, without taking it.
func (l *Limits) Allow(lane async.Lane) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.tenants[lane.Tenant].full() && !l.lanes[lane].full()
}

// TryAcquire takes a slot of lane (and of its tenant) if both have one.
func (l *Limits) TryAcquire(lane async.Lane) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, f := l.slot(l.tenants, lane.Tenant), l.laneSlot(lane)
	if t.full() || f.full() {
		return false
	}
	t.used++
	f.used++
	return true
}

// Acquire waits for a slot of lane, or for ctx to end.
func (l *Limits) Acquire(ctx context.Context, lane async.Lane) error {
	for !l.TryAcquire(lane) {
		select {
		case <-l.freed:
			// Pass the signal on: another waiter may fit too.
			l.signal()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Release gives back a slot taken by TryAcquire or Acquire.
func (l *Limits) Release(lane async.Lane) {
	l.mu.Lock()
	l.slot(l.tenants, lane.Tenant).used--
	l.laneSlot(lane).used--
	l.mu.Unlock()
	l.signal()
}

// Freed is signalled (coalesced) whenever a slot is released.
func (l *Limits) Freed() <-chan struct{} { return l.freed }

// InFlight returns the slots in use by lane.
func (l *Limits) InFlight(lane async.Lane) int {
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
