package embedded

import (
	"context"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
)

// UpdateDelivery replaces Deliveries[d.Index] of a finished task. When the
// last pending delivery settles, the task's retention starts (it expires
// Retention later). Written with pebble.NoSync: an update lost in a crash
// leaves the delivery pending, so it is delivered again (at least once).
// async.ErrNotFound for an unknown task, async.ErrConflict for a task that
// has not finished.
func (q *Queue) UpdateDelivery(ctx context.Context, tenant, id string, d async.Delivery) error {
	if err := q.begin("update delivery"); err != nil {
		return err
	}
	defer q.end()
	lk := q.stripe(id)
	lk.Lock()
	defer lk.Unlock()

	t, err := q.readRecord(id)
	if err != nil {
		return err
	}
	if t != nil && t.Tenant != tenant {
		t = nil // another tenant's task: not found
	}
	if t == nil {
		return fmt.Errorf("embedded: update delivery %s: %w", id, async.ErrNotFound)
	}
	if !t.Status.Final() {
		return fmt.Errorf("embedded: update delivery %s: task is %s: %w", id, t.Status, async.ErrConflict)
	}
	if d.Index < 0 || d.Index >= len(t.Deliveries) {
		return fmt.Errorf("embedded: update delivery %s: index %d out of range (task has %d deliveries)", id, d.Index, len(t.Deliveries))
	}
	now := q.now()
	wasPending := t.HasPendingDeliveries()
	t.Deliveries[d.Index] = d
	t.UpdatedAt = now
	pending := t.HasPendingDeliveries()

	b := q.db.NewBatch()
	defer b.Close()
	if err := putRecord(b, t); err != nil {
		return fmt.Errorf("embedded: update delivery: %w", err)
	}
	if wasPending && !pending {
		if err := b.Set(taskExpiryKey(now.Add(q.opts.Retention), id), nil, nil); err != nil {
			return fmt.Errorf("embedded: update delivery: %w", err)
		}
	}
	if err := q.commit(b, pebble.NoSync, "update delivery"); err != nil {
		return err
	}
	q.mu.Lock()
	if pending {
		q.pending[id] = struct{}{}
	} else {
		delete(q.pending, id)
	}
	q.mu.Unlock()
	return nil
}

// PendingDeliveries returns the finished tasks that have a pending delivery,
// from an in-memory set rebuilt at Open (one read per task).
func (q *Queue) PendingDeliveries(ctx context.Context) ([]*async.Task, error) {
	if err := q.begin("pending deliveries"); err != nil {
		return nil, err
	}
	defer q.end()
	q.mu.Lock()
	ids := make([]string, 0, len(q.pending))
	for id := range q.pending {
		ids = append(ids, id)
	}
	q.mu.Unlock()
	slices.Sort(ids)
	var out []*async.Task
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := q.readTask(id)
		if err != nil {
			return nil, err
		}
		if t != nil && t.HasPendingDeliveries() {
			out = append(out, t)
		}
	}
	return out, nil
}
