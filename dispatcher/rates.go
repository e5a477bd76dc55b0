package dispatcher

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/ferrydev/ferry/wire"
	"golang.org/x/time/rate"
)

// RateStore holds the token buckets of the tenants' and functions' rates.
// Rates keeps them in this node's memory; a shared store (redisstore.Rates)
// keeps them where every node takes from the same buckets, so that a rate
// holds for the whole cluster.
type RateStore interface {
	// Take takes a token from lane's bucket and from its tenant's when both
	// have one and returns 0; otherwise it takes nothing and returns how
	// long until both will have one. A tenant or lane without a rate always
	// has a token. An error (the store cannot be reached) takes nothing.
	Take(ctx context.Context, lane wire.Lane) (time.Duration, error)
}

var _ RateStore = (*Rates)(nil)

// Rates are token buckets of invocations per second, per tenant and per
// function (lane). A lane is within its rate when both its own bucket and
// its tenant's have a token. Tenants and lanes without a rate are
// unlimited. Rates is safe for concurrent use.
type Rates struct {
	mu      sync.Mutex
	tenants map[string]*rate.Limiter
	lanes   map[wire.Lane]*rate.Limiter
}

// NewRates returns Rates with no rate set.
func NewRates() *Rates {
	return &Rates{tenants: map[string]*rate.Limiter{}, lanes: map[wire.Lane]*rate.Limiter{}}
}

// SetTenant sets a tenant's rate (perSecond <= 0: unlimited) and burst
// (the bucket's size, at least 1).
func (r *Rates) SetTenant(tenant string, perSecond float64, burst int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set(r.tenants, tenant, perSecond, burst)
}

// SetFunction sets a lane's rate and burst, as SetTenant.
func (r *Rates) SetFunction(lane wire.Lane, perSecond float64, burst int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set(r.lanes, lane, perSecond, burst)
}

func set[K comparable](m map[K]*rate.Limiter, k K, perSecond float64, burst int) {
	if !(perSecond > 0) {
		delete(m, k)
		return
	}
	m[k] = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

// limited reports whether lane or its tenant has a rate.
func (r *Rates) limited(lane wire.Lane) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tenants[lane.Tenant] != nil || r.lanes[lane] != nil
}

// held lists the tenants and lanes whose bucket has no whole token at
// now, and the shortest wait until one of them has one (0 if none is
// held). It visits only the tenants and lanes that have a rate.
func (r *Rates) held(now time.Time) (tenants []string, lanes []wire.Lane, next time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	note := func(w time.Duration) bool {
		if w <= 0 {
			return false
		}
		if next == 0 || w < next {
			next = w
		}
		return true
	}
	for t, l := range r.tenants {
		if note(wait(l, now)) {
			tenants = append(tenants, t)
		}
	}
	for ln, l := range r.lanes {
		if note(wait(l, now)) {
			lanes = append(lanes, ln)
		}
	}
	return tenants, lanes, next
}

// Take is TakeAt now; it never fails (RateStore).
func (r *Rates) Take(_ context.Context, lane wire.Lane) (time.Duration, error) {
	return r.TakeAt(lane, time.Now()), nil
}

// TakeAt takes a token from lane's bucket and its tenant's when both have
// one at now and returns 0; else it takes nothing and returns how long
// until both will have one.
func (r *Rates) TakeAt(lane wire.Lane, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, f := r.tenants[lane.Tenant], r.lanes[lane]
	if w := max(wait(t, now), wait(f, now)); w > 0 {
		return w
	}
	for _, l := range []*rate.Limiter{t, f} {
		if l != nil {
			l.AllowN(now, 1)
		}
	}
	return 0
}

// wait returns how long until l has a whole token (0 for a nil l).
func wait(l *rate.Limiter, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	missing := 1 - l.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return max(time.Duration(math.Ceil(missing/float64(l.Limit())*float64(time.Second))), time.Millisecond)
}
