package redisstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// pickBatch is how many tenants with ready tasks one pick returns; pickTTL
// is how long a node reuses a pick (a wake-up ends it sooner).
const (
	pickBatch = 16
	pickTTL   = 50 * time.Millisecond
)

// pick is a node's current choice of tenants with ready tasks, in the
// cluster's round-robin order, visited in turn by its Leases.
type pick struct {
	mu      sync.Mutex
	tenants []string
	i       int       // the tenant to try first
	at      time.Time // when picked (zero: none)
	gen     uint64    // q.gen when picked
	nowMS   int64     // Redis's time at the pick
	next    int64     // the earliest future ready time then (-1: none)
}

// Lease takes the next ready task fairly across the cluster (see
// async.Queue): a script on the global slot picks tenants with ready tasks
// round-robin after the shared cursor (a node reuses the pick for up to
// pickTTL, until a wake-up, or until its tenants run dry, visiting them in
// turn), then a script on the tenant's slot requeues its expired leases
// and leases a task from its lanes round-robin, within the tenant's and
// the function's max_concurrency (counted with the leases) and rates
// (GCRA). Blocked tenants and lanes in req are skipped. The lease expires
// after req.TTL of Redis's clock.
func (q *Queue) Lease(ctx context.Context, req async.LeaseRequest) (*async.Task, time.Time, error) {
	ts, next, err := q.LeaseMany(ctx, req, 1)
	if len(ts) == 0 {
		return nil, next, err
	}
	return ts[0], next, err
}

// LeaseMany is Lease for up to n tasks at once (async.BatchLeaser), taken
// from one tenant's lanes round-robin in one script: a node with n free
// workers fills them with one round trip.
func (q *Queue) LeaseMany(ctx context.Context, req async.LeaseRequest, n int) ([]*async.Task, time.Time, error) {
	if req.TTL <= 0 {
		return nil, time.Time{}, fmt.Errorf("redis store: lease: ttl must be positive, got %v", req.TTL)
	}
	if err := q.begin("lease"); err != nil {
		return nil, time.Time{}, err
	}
	blocked := make(map[string]bool, len(req.BlockedTenants))
	for _, t := range req.BlockedTenants {
		blocked[t] = true
	}
	p := &q.picked
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		fresh := false
		if p.at.IsZero() || time.Since(p.at) > pickTTL || p.gen != q.gen.Load() || len(p.tenants) == 0 {
			if err := q.repick(ctx, req); err != nil {
				return nil, time.Time{}, err
			}
			fresh = true
		}
		next := p.next
		soonest := func(at int64) {
			if at >= 0 && (next < 0 || at < next) {
				next = at
			}
		}
		for tried := 0; tried < len(p.tenants); {
			i := p.i % len(p.tenants)
			tenant := p.tenants[i]
			if blocked[tenant] {
				p.i, tried = i+1, tried+1
				continue
			}
			r, err := q.tenantRun(ctx, scriptLease, tenant, q.leaseArgs(tenant, req, max(n, 1))...)
			if err != nil {
				return nil, time.Time{}, unavailable("lease", err)
			}
			if str(r[0]) == "none" {
				q.hints.note(tenant, r[4], r[5], false)
				soonest(num(r[2]))
				soonest(num(r[3]))
				// Dry or held back: out of this pick.
				p.tenants = append(p.tenants[:i], p.tenants[i+1:]...)
				continue
			}
			p.i = i + 1
			count := int(num(r[1]))
			tail := r[2+count*(1+numFields):]
			q.hints.note(tenant, tail[1], tail[2], false)
			var out []*async.Task
			for k := range count {
				vals := r[2+k*(1+numFields) : 2+(k+1)*(1+numFields)]
				t, _, err := decode(vals[1:])
				if err != nil || t == nil {
					// The task cannot be read: leave it leased so the
					// lease expires and the error shows again.
					q.log.Error("redis store: leased task cannot be decoded", "tenant", tenant, "id", str(vals[0]), "error", err)
					continue
				}
				q.mu.Lock()
				q.leased[t.ID] = t
				q.mu.Unlock()
				out = append(out, t.Clone())
			}
			if len(out) == 0 {
				tried++
				continue
			}
			return out, time.Time{}, nil
		}
		if !fresh {
			p.at = time.Time{} // look at the cluster again before giving up
			continue
		}
		if next < 0 {
			return nil, time.Time{}, nil
		}
		return nil, q.local(next, p.nowMS), nil
	}
}

// repick asks the cluster for tenants with ready tasks; p.mu is held.
func (q *Queue) repick(ctx context.Context, req async.LeaseRequest) error {
	p := &q.picked
	gen := q.gen.Load()
	k := q.keys
	args := []any{q.skew(), pickBatch}
	for _, t := range req.BlockedTenants {
		args = append(args, t)
	}
	res, err := scriptPick.Run(ctx, q.rdb, []string{k.ready(), k.cursor()}, args...).Slice()
	if err != nil {
		p.at = time.Time{}
		return unavailable("lease", err)
	}
	p.nowMS, p.next = num(res[0]), num(res[1])
	p.tenants = p.tenants[:0]
	for _, v := range res[2:] {
		p.tenants = append(p.tenants, str(v))
	}
	p.i, p.at, p.gen = 0, time.Now(), gen
	return nil
}

// leaseArgs are the lease script's arguments for one tenant: the lease
// length, the tenant's limits, the lanes req blocks, and the configured
// functions' limits.
func (q *Queue) leaseArgs(tenant string, req async.LeaseRequest, n int) []any {
	tl := q.opts.Tenants[tenant]
	args := []any{req.TTL.Milliseconds(), n, tl.MaxConcurrency, tl.Rate, tl.Burst}
	var blocked []any
	for _, l := range req.BlockedLanes {
		if l.Tenant == tenant {
			blocked = append(blocked, l.Function)
		}
	}
	args = append(args, len(blocked))
	args = append(args, blocked...)
	for _, fn := range q.lanes[tenant] {
		fl := q.opts.Functions[wire.Lane{Tenant: tenant, Function: fn}]
		args = append(args, fn, fl.MaxConcurrency, fl.Rate, fl.Burst)
	}
	return args
}

// Complete records the final outcome of a task this queue leased, with
// its pending deliveries (this node then holds their claim), and returns
// the task as stored. async.ErrLeaseLost when token is not the current
// lease: another node took the task over, or it finished.
func (q *Queue) Complete(ctx context.Context, id string, token uint64, c async.Completion) (*async.Task, error) {
	if c.Status != async.StatusSucceeded && c.Status != async.StatusFailed {
		return nil, fmt.Errorf("redis store: complete %s: status must be succeeded or failed, got %q", id, c.Status)
	}
	t, err := q.takeLease("complete", id, token)
	if err != nil {
		return nil, err
	}
	c.ApplyTo(t, q.now())
	pending := 0
	if t.HasPendingDeliveries() {
		pending = 1
	}
	res, err := q.finish(ctx, t, "complete", async.AppendRecord(nil, t), string(c.Status), pending)
	if err != nil {
		return nil, err
	}
	t.FinishedAt = msTime(res.now)
	t.UpdatedAt = t.FinishedAt
	t.LeaseExpiresAt = time.Time{}
	if pending == 1 {
		q.hold(t.Tenant, t.ID, true)
	}
	return t, nil
}

// Retry records a failed attempt and queues the task again at at (as a
// delay from now, counted on Redis's clock). async.ErrLeaseLost as for
// Complete.
func (q *Queue) Retry(ctx context.Context, id string, token uint64, at time.Time, taskErr *async.TaskError) error {
	t, err := q.takeLease("retry", id, token)
	if err != nil {
		return err
	}
	t.Attempts++
	t.LastError = taskErr
	t.Status = async.StatusQueued
	delay := delayMS(at.Sub(q.now()))
	_, err = q.finish(ctx, t, "retry", async.AppendRecord(nil, t), delay, 0)
	return err
}

// Release puts a leased task back, ready now, without spending an
// attempt. async.ErrLeaseLost as for Complete.
func (q *Queue) Release(ctx context.Context, id string, token uint64) error {
	t, err := q.takeLease("release", id, token)
	if err != nil {
		return err
	}
	_, err = q.finish(ctx, t, "release", nil, 0, 0)
	return err
}

// Extend renews a lease this queue holds for ttl more (of Redis's clock):
// the heartbeat of a long attempt. async.ErrLeaseLost when the lease
// expired and the task was taken over, or it is not held here.
func (q *Queue) Extend(ctx context.Context, id string, token uint64, ttl time.Duration) error {
	if err := q.begin("extend"); err != nil {
		return err
	}
	q.mu.Lock()
	t := q.leased[id]
	q.mu.Unlock()
	if t == nil || t.Lease != token {
		return fmt.Errorf("redis store: extend %s: lease %d is not held here: %w", id, token, async.ErrLeaseLost)
	}
	ok, err := q.tenantRun(ctx, scriptExtend, t.Tenant, id, token, ttl.Milliseconds())
	if err != nil {
		return unavailable("extend "+id, err)
	}
	if num(ok[0]) != 1 {
		return fmt.Errorf("redis store: extend %s: lease %d: %w", id, token, async.ErrLeaseLost)
	}
	return nil
}

// takeLease returns (and forgets) the task this queue leased as id with
// token; async.ErrLeaseLost when it holds no such lease.
func (q *Queue) takeLease(op, id string, token uint64) (*async.Task, error) {
	if err := q.begin(op); err != nil {
		return nil, err
	}
	q.mu.Lock()
	t := q.leased[id]
	if t != nil && t.Lease == token {
		delete(q.leased, id)
	}
	q.mu.Unlock()
	if t == nil || t.Lease != token {
		return nil, fmt.Errorf("redis store: %s %s: lease %d is not held here: %w", op, id, token, async.ErrLeaseLost)
	}
	return t, nil
}

// finishItem is one Complete, Retry or Release for the finish script.
type finishItem struct {
	t       *async.Task
	op      string
	rec     []byte // nil keeps the record
	arg     any    // final status (complete) or delay ms (retry)
	pending int
}

// finishResult is the script's answer for one item.
type finishResult struct {
	lost          bool
	now           string
	wake          bool
	seq, earliest any
}

// finish runs one Complete, Retry or Release of a task this queue leased,
// batched with the concurrent others (finishBatch).
func (q *Queue) finish(ctx context.Context, t *async.Task, op string, rec []byte, arg any, pending int) (finishResult, error) {
	res, err := q.finishes.do(ctx, t.Tenant, finishItem{t: t, op: op, rec: rec, arg: arg, pending: pending})
	if err != nil {
		return res, unavailable(op+" "+t.ID, err)
	}
	if res.lost {
		return res, fmt.Errorf("redis store: %s %s: lease %d: %w", op, t.ID, t.Lease, async.ErrLeaseLost)
	}
	return res, nil
}

// finishBatch runs a batch of finishes: one script per tenant, in one
// pipeline; then the tenants' hints that must go out at once, and a
// wake-up when a slot freed at a limit.
func (q *Queue) finishBatch(ctx context.Context, byTenant map[string][]*batchCall[finishItem, finishResult]) {
	cmds := runPipelined(ctx, q.rdb, scriptFinish, byTenant, func(tenant string, calls []*batchCall[finishItem, finishResult]) []any {
		args := make([]any, 0, 2+10*len(calls))
		args = append(args, q.keys.tenant(tenant), q.skew())
		for _, c := range calls {
			it := c.item
			rec := any("")
			if it.rec != nil {
				rec = it.rec
			}
			args = append(args, it.t.ID, it.t.Lease, it.op, rec, it.arg, it.pending,
				q.opts.Retention.Milliseconds(), q.opts.ClaimTTL.Milliseconds(),
				q.opts.Tenants[tenant].MaxConcurrency, q.opts.Functions[it.t.Lane()].MaxConcurrency)
		}
		return args
	})
	for tenant, calls := range byTenant {
		vals, err := cmds[tenant].Slice()
		if err == nil && len(vals) != 5*len(calls) {
			err = fmt.Errorf("finish script answered %d values for %d tasks", len(vals), len(calls))
		}
		wake := false
		var seq, earliest any = int64(0), "-2"
		for i, c := range calls {
			if err != nil {
				c.err = err
				continue
			}
			r := vals[5*i : 5*i+5]
			c.out = finishResult{lost: str(r[0]) == "lost", now: str(r[1]), wake: num(r[2]) == 1, seq: r[3], earliest: r[4]}
			wake = wake || c.out.wake
			if num(r[3]) > num(seq) {
				seq, earliest = r[3], r[4]
			}
		}
		if err == nil {
			if herr := q.hints.now(ctx, tenant, seq, earliest, wake || num(seq) > 0); herr != nil {
				q.log.Warn("redis store: ready hint not updated; the upkeep will", "tenant", tenant, "error", herr)
			}
		}
	}
}

// now is the node's clock.
func (q *Queue) now() time.Time { return q.opts.Clock() }
