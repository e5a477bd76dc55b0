package redisstore

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// upkeepEvery is the period of the upkeep pass: it bounds how long a task
// whose hint a killed node failed to write waits, and how stale Stats is.
const upkeepEvery = time.Second

// Run does the upkeep until ctx ends (async.Upkeeper): every second it
// pings Redis (Healthy), and for every tenant requeues expired leases,
// sweeps finished tasks past retention, repairs the ready hint, counts
// the lanes for Stats and renews this node's delivery claims.
func (q *Queue) Run(ctx context.Context) error {
	t := time.NewTicker(upkeepEvery)
	defer t.Stop()
	for {
		if err := q.Upkeep(ctx); err != nil && ctx.Err() == nil {
			q.log.Warn("redis store: upkeep failed; retrying", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Healthy reports whether Redis answered the latest upkeep ping.
func (q *Queue) Healthy() bool { return !q.down.Load() }

// Upkeep runs one upkeep pass now.
func (q *Queue) Upkeep(ctx context.Context) error {
	if err := q.begin("upkeep"); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	err := q.rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		if !q.down.Swap(true) {
			q.log.Error("redis store: Redis does not answer; submits fail with 503 until it is back", "error", err)
		}
		return unavailable("ping", err)
	}
	if q.down.Swap(false) {
		q.log.Info("redis store: Redis answers again")
		q.signal()
	}
	var stats []async.LaneStats
	var errs []error
	for _, tenant := range q.knownTenants() {
		s, err := q.upkeepTenant(ctx, tenant)
		errs = append(errs, err)
		stats = append(stats, s...)
	}
	sort.Slice(stats, func(i, j int) bool {
		a, b := stats[i].Lane, stats[j].Lane
		return a.Tenant < b.Tenant || (a.Tenant == b.Tenant && a.Function < b.Function)
	})
	q.mu.Lock()
	q.stats = stats
	q.mu.Unlock()
	return errors.Join(errs...)
}

func (q *Queue) upkeepTenant(ctx context.Context, tenant string) ([]async.LaneStats, error) {
	args := make([]any, 0, len(q.lanes[tenant]))
	for _, fn := range q.lanes[tenant] {
		args = append(args, fn)
	}
	res, err := q.tenantRun(ctx, scriptUpkeep, tenant, args...)
	if err != nil {
		return nil, unavailable("upkeep "+tenant, err)
	}
	reaped := num(res[3])
	if err := q.hints.now(ctx, tenant, res[0], res[1], reaped > 0); err != nil {
		return nil, unavailable("upkeep "+tenant, err)
	}
	if reaped > 0 {
		q.log.Info("redis store: requeued tasks whose lease expired", "tenant", tenant, "tasks", reaped)
	}
	var stats []async.LaneStats
	for i := 4; i+2 < len(res); i += 3 {
		queued, running := int(num(res[i+1])), int(num(res[i+2]))
		if queued+running > 0 {
			stats = append(stats, async.LaneStats{Lane: wire.Lane{Tenant: tenant, Function: str(res[i])}, Queued: queued, Running: running})
		}
	}
	if held := q.held(tenant); len(held) > 0 {
		if err := q.renew(ctx, tenant, held, q.opts.ClaimTTL); err != nil {
			return stats, err
		}
	}
	return stats, nil
}

// renew renews this node's claims for ttl without taking new ones; a
// negative ttl gives them back (claimable at once).
func (q *Queue) renew(ctx context.Context, tenant string, ids []string, ttl time.Duration) error {
	args := []any{ttl.Milliseconds(), 0}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := q.tenantRun(ctx, scriptClaim, tenant, args...)
	if err != nil && !errors.Is(err, redis.Nil) {
		return unavailable("renew delivery claims", err)
	}
	return nil
}
