package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrydev/ferry/async"
)

// Enqueue stores t (see async.Queue) in one script: the idempotency key
// (cluster-wide, within the window), the tenant's max_queued and the
// delay (counted from Redis's clock) are decided there. The task is
// durable when Redis acknowledges it as far as Redis's appendfsync makes
// it so (always: fsynced). An id already in use is async.ErrConflict.
func (q *Queue) Enqueue(ctx context.Context, t *async.Task, maxQueued int) (*async.Task, bool, error) {
	if err := t.CheckNew(); err != nil {
		return nil, false, fmt.Errorf("redis store: enqueue: %w", err)
	}
	if err := q.begin("enqueue"); err != nil {
		return nil, false, err
	}
	q.note(t.Tenant)
	it := newEnqueueItem(t, maxQueued)
	res, err := q.enqueues.do(ctx, t.Tenant, it)
	if err != nil {
		return nil, false, unavailable("enqueue", err)
	}
	r := q.enqueued(ctx, it, res)
	return r.Task, r.Created, r.Err
}

// EnqueueBatch stores the tenant's tasks as Enqueue does, all in one script
// (atomic: Redis applies all of them or none), and returns a result per
// task in order (see async.Queue).
func (q *Queue) EnqueueBatch(ctx context.Context, ts []*async.Task, maxQueued int) ([]async.EnqueueResult, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	calls := make([]*batchCall[enqueueItem, []any], len(ts))
	for i, t := range ts {
		if err := t.CheckNew(); err != nil {
			return nil, fmt.Errorf("redis store: enqueue: %w", err)
		}
		if t.Tenant != ts[0].Tenant {
			return nil, fmt.Errorf("redis store: enqueue: a batch holds tasks of tenants %q and %q", ts[0].Tenant, t.Tenant)
		}
		calls[i] = &batchCall[enqueueItem, []any]{tenant: t.Tenant, item: newEnqueueItem(t, maxQueued)}
	}
	if err := q.begin("enqueue"); err != nil {
		return nil, err
	}
	tenant := ts[0].Tenant
	q.note(tenant)
	q.enqueueBatch(ctx, map[string][]*batchCall[enqueueItem, []any]{tenant: calls})
	out := make([]async.EnqueueResult, len(ts))
	for i, c := range calls {
		if c.err != nil {
			return nil, unavailable("enqueue", c.err)
		}
		out[i] = q.enqueued(ctx, c.item, c.out)
	}
	return out, nil
}

func newEnqueueItem(t *async.Task, maxQueued int) enqueueItem {
	rec := t.Clone()
	rec.Status = async.StatusQueued
	return enqueueItem{t: t, rec: rec, enc: async.AppendRecord(nil, rec), delay: delayMS(t.ReadyAt.Sub(t.CreatedAt)), maxQueued: maxQueued}
}

// enqueued turns the script's answer for one task into its result.
func (q *Queue) enqueued(ctx context.Context, it enqueueItem, res []any) async.EnqueueResult {
	t := it.t
	switch str(res[0]) {
	case "dup":
		got, err := q.Get(ctx, t.Tenant, str(res[1]))
		return async.EnqueueResult{Task: got, Err: err}
	case "exists":
		return async.EnqueueResult{Err: fmt.Errorf("redis store: enqueue: task id %q already exists: %w", t.ID, async.ErrConflict)}
	case "quota":
		return async.EnqueueResult{Err: fmt.Errorf("redis store: enqueue: tenant %q has %d unfinished tasks: %w", t.Tenant, num(res[1]), async.ErrQuotaExceeded)}
	}
	rec := it.rec
	now := num(res[1])
	rec.CreatedAt = msTime(str(res[1]))
	rec.UpdatedAt = rec.CreatedAt
	rec.ReadyAt = rec.CreatedAt
	if it.delay > 0 {
		rec.ReadyAt = time.UnixMilli(now + it.delay + 1).UTC() // as ready_at in the script
	}
	rec.LeaseExpiresAt, rec.FinishedAt = time.Time{}, time.Time{}
	return async.EnqueueResult{Task: rec, Created: true}
}

// enqueueItem is one Enqueue for the enqueue script.
type enqueueItem struct {
	t         *async.Task
	rec       *async.Task // t as stored, queued
	enc       []byte      // rec's binary record
	delay     int64
	maxQueued int
}

// enqueueBatch stores a batch of concurrent Enqueues (group commit): one
// script per tenant, in one pipeline; then each tenant's hint, at once
// when a task made it ready sooner, so that a Lease on any node after the
// Enqueue returned sees the task.
func (q *Queue) enqueueBatch(ctx context.Context, byTenant map[string][]*batchCall[enqueueItem, []any]) {
	cmds := runPipelined(ctx, q.rdb, scriptEnqueue, byTenant, func(tenant string, calls []*batchCall[enqueueItem, []any]) []any {
		args := make([]any, 0, 2+8*len(calls))
		args = append(args, q.keys.tenant(tenant), q.skew())
		for _, c := range calls {
			it := c.item
			args = append(args, it.t.ID, it.t.Function, it.enc, it.t.Payload, it.delay, it.maxQueued,
				it.t.IdempotencyKey, q.opts.IdempotencyTTL.Milliseconds())
		}
		return args
	})
	for tenant, calls := range byTenant {
		vals, err := cmds[tenant].Slice()
		if err == nil && len(vals) != 4*len(calls) {
			err = fmt.Errorf("enqueue script answered %d values for %d tasks", len(vals), len(calls))
		}
		var seq, earliest any = int64(0), "-2"
		for i, c := range calls {
			if err != nil {
				c.err = err
				continue
			}
			c.out = vals[4*i : 4*i+4]
			if str(c.out[0]) == "ok" && num(c.out[2]) > num(seq) {
				seq, earliest = c.out[2], c.out[3]
			}
		}
		if err == nil {
			// seq > 0: a task made the tenant ready sooner than it was:
			// wake the nodes, whatever the global hint said before.
			if herr := q.hints.now(ctx, tenant, seq, earliest, num(seq) > 0); herr != nil {
				// Stored: the flusher and the upkeep make them leasable.
				q.log.Warn("redis store: tasks stored, their ready hint not yet", "tenant", tenant, "error", herr)
			}
		}
	}
}
