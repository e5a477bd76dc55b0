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
	if err := validateNew(t); err != nil {
		return nil, false, err
	}
	if err := q.begin("enqueue"); err != nil {
		return nil, false, err
	}
	q.note(t.Tenant)
	rec := t.Clone()
	rec.Status = async.StatusQueued
	delay := max(t.ReadyAt.Sub(t.CreatedAt).Milliseconds(), 0)
	res, err := q.tenantRun(ctx, scriptEnqueue, t.Tenant,
		t.ID, t.Function, async.AppendRecord(nil, rec), t.Payload, delay, maxQueued,
		t.IdempotencyKey, q.opts.IdempotencyTTL.Milliseconds())
	if err != nil {
		return nil, false, unavailable("enqueue", err)
	}
	switch str(res[0]) {
	case "dup":
		got, err := q.Get(ctx, t.Tenant, str(res[1]))
		return got, false, err
	case "exists":
		return nil, false, fmt.Errorf("redis store: enqueue: task id %q already exists: %w", t.ID, async.ErrConflict)
	case "quota":
		return nil, false, fmt.Errorf("redis store: enqueue: tenant %q has %d unfinished tasks: %w", t.Tenant, num(res[1]), async.ErrQuotaExceeded)
	}
	now := num(res[1])
	if err := q.hints.now(ctx, t.Tenant, res[2], res[3], false); err != nil {
		// Stored: the flusher and the upkeep make it leasable; say so.
		q.log.Warn("redis store: task stored, its ready hint not yet", "task", t.ID, "error", err)
	}
	rec.CreatedAt = msTime(str(res[1]))
	rec.UpdatedAt = rec.CreatedAt
	rec.ReadyAt = time.UnixMilli(now + delay).UTC()
	rec.LeaseExpiresAt, rec.FinishedAt = time.Time{}, time.Time{}
	return rec, true, nil
}

func validateNew(t *async.Task) error {
	var missing []string
	if t.ID == "" {
		missing = append(missing, "ID")
	}
	if t.Tenant == "" {
		missing = append(missing, "Tenant")
	}
	if t.Function == "" {
		missing = append(missing, "Function")
	}
	if t.CreatedAt.IsZero() {
		missing = append(missing, "CreatedAt")
	}
	if t.ReadyAt.IsZero() {
		missing = append(missing, "ReadyAt")
	}
	if len(missing) > 0 {
		return fmt.Errorf("redis store: enqueue: task fields required but not set: %v", missing)
	}
	return nil
}
