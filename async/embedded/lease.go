package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// Lease takes the next ready task fairly (see async.Queue): tenants
// round-robin from a cursor that moves past the tenant served last, and a
// tenant's lanes round-robin. The choice is made in memory in
// O(tenants + lanes); the lease is then written with pebble.NoSync: losing
// it in a crash only means the task runs again, which is what recovery does
// anyway. req.TTL must be positive.
func (q *Queue) Lease(ctx context.Context, req async.LeaseRequest) (*async.Task, time.Time, error) {
	ttl := req.TTL
	if ttl <= 0 {
		return nil, time.Time{}, fmt.Errorf("embedded: lease: ttl must be positive, got %v", ttl)
	}
	allow := allowing(&req)
	if err := q.begin("lease"); err != nil {
		return nil, time.Time{}, err
	}
	defer q.end()
	for {
		if err := ctx.Err(); err != nil {
			return nil, time.Time{}, err
		}
		now := q.now()
		q.mu.Lock()
		e, next := q.idx.pick(allow, now)
		if e == nil {
			q.mu.Unlock()
			return nil, next, nil
		}
		lk := q.stripe(e.id())
		if !lk.TryLock() {
			// Lock order is stripe, then mu: wait for the stripe without
			// mu, then check that the pick still holds.
			q.mu.Unlock()
			lk.Lock()
			q.mu.Lock()
			if !q.idx.leasable(e, allow, now) {
				q.mu.Unlock()
				lk.Unlock()
				continue
			}
		}
		exp := now.Add(ttl)
		q.idx.lease(e, exp)
		first := q.idx.leases[0] == e
		q.mu.Unlock()

		// e's token stays as leased: its stripe is held.
		got, err := q.persistLeases([]*entry{e}, now, exp)
		lk.Unlock()
		if err != nil {
			return nil, time.Time{}, err
		}
		if len(got) == 1 {
			if first {
				q.signalWake()
			}
			return got[0], time.Time{}, nil
		}
		// The record had vanished: the next pick.
	}
}

// Complete records the outcome of a leased task and its pending deliveries
// in one synced write and returns the task as stored (the caller's to
// keep). async.ErrLeaseLost when token is not the current lease (also when
// the task is no longer running).
func (q *Queue) Complete(ctx context.Context, id string, token uint64, c async.Completion) (*async.Task, error) {
	if c.Status != async.StatusSucceeded && c.Status != async.StatusFailed {
		return nil, fmt.Errorf("embedded: complete %s: status must be succeeded or failed, got %q", id, c.Status)
	}
	pending := false
	var done *async.Task
	err := q.withLease("complete", id, token, func(t *async.Task, b *pebble.Batch, now time.Time) error {
		c.ApplyTo(t, now)
		done = t
		pending = t.HasPendingDeliveries()
		if pending {
			return nil
		}
		return b.Set(taskExpiryKey(now.Add(q.opts.Retention), id), nil, nil)
	}, func(e *entry, _ time.Time) {
		q.idx.remove(e)
		if pending {
			q.pending[id] = struct{}{}
		}
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// allowing returns the lanes req lets run, as a test the index can make
// for every lane it visits: the lists are scanned while short and indexed
// when long.
func allowing(req *async.LeaseRequest) func(wire.Lane) bool {
	switch n := len(req.BlockedTenants) + len(req.BlockedLanes); {
	case n == 0:
		return func(wire.Lane) bool { return true }
	case n <= 8:
		return func(l wire.Lane) bool { return !req.Blocks(l) }
	}
	tenants := make(map[string]struct{}, len(req.BlockedTenants))
	for _, t := range req.BlockedTenants {
		tenants[t] = struct{}{}
	}
	lanes := make(map[wire.Lane]struct{}, len(req.BlockedLanes))
	for _, l := range req.BlockedLanes {
		lanes[l] = struct{}{}
	}
	return func(l wire.Lane) bool {
		_, t := tenants[l.Tenant]
		_, f := lanes[l]
		return !t && !f
	}
}

// Retry records a failed attempt (Attempts+1, LastError = err) and queues
// the task again, ready at at; synced. ErrLeaseLost as for Complete.
func (q *Queue) Retry(ctx context.Context, id string, token uint64, at time.Time, err *async.TaskError) error {
	return q.withLease("retry", id, token, func(t *async.Task, _ *pebble.Batch, _ time.Time) error {
		t.Attempts++
		t.LastError = err
		t.Status = async.StatusQueued
		t.ReadyAt = at
		t.LeaseExpiresAt = time.Time{}
		return nil
	}, func(e *entry, now time.Time) {
		q.idx.requeue(e, at)
		// Signalled even when it is ready later: an idle caller learns the
		// time it must wait for from its next Lease.
		q.signal()
	})
}

// Release puts a leased task back in the queue, ready now, without spending
// an attempt; synced. ErrLeaseLost as for Complete.
func (q *Queue) Release(ctx context.Context, id string, token uint64) error {
	return q.withLease("release", id, token, func(t *async.Task, _ *pebble.Batch, now time.Time) error {
		t.Status = async.StatusQueued
		t.ReadyAt = now
		t.LeaseExpiresAt = time.Time{}
		return nil
	}, func(e *entry, now time.Time) {
		q.idx.requeue(e, now)
		q.signal()
	})
}

// withLease checks that token is the current lease of task id, applies
// change to its record (and may add keys to the batch), commits the record
// with pebble.Sync, then updates the index with after (under mu).
func (q *Queue) withLease(op, id string, token uint64,
	change func(t *async.Task, b *pebble.Batch, now time.Time) error,
	after func(e *entry, now time.Time),
) error {
	if err := q.begin(op); err != nil {
		return err
	}
	defer q.end()
	lk := q.stripe(id)
	lk.Lock()
	defer lk.Unlock()

	q.mu.Lock()
	e := q.idx.entries.get(id)
	current := e != nil && e.running() && e.token == token
	var t *async.Task
	if current {
		t, e.run.rec = e.run.rec, nil
	}
	q.mu.Unlock()
	lost := fmt.Errorf("embedded: %s %s: token %d is not the current lease: %w", op, id, token, async.ErrLeaseLost)
	if !current {
		return lost
	}
	if t == nil {
		var err error
		if t, err = q.readTask(id); err != nil {
			return err
		}
	}
	if t == nil || t.Status != async.StatusRunning || t.Lease != token {
		return lost
	}
	now := q.now()
	t.UpdatedAt = now
	b := q.db.NewBatch()
	defer b.Close()
	if err := change(t, b, now); err != nil {
		return fmt.Errorf("embedded: %s %s: %w", op, id, err)
	}
	if err := putRecord(b, t); err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	if err := q.commit(b, pebble.Sync, op); err != nil {
		return err
	}
	q.mu.Lock()
	after(e, now)
	q.mu.Unlock()
	return nil
}

// Cancel cancels a queued task (synced) and returns it. A running or
// finished task is returned with async.ErrConflict; another tenant's task
// is async.ErrNotFound.
func (q *Queue) Cancel(ctx context.Context, tenant, id string) (*async.Task, error) {
	var e *entry
	return q.withOwnTask("cancel", tenant, id, func(t *async.Task, b *pebble.Batch, now time.Time) error {
		q.mu.Lock()
		e = q.idx.entries.get(id)
		queued := e != nil && !e.running() && t.Status == async.StatusQueued
		q.mu.Unlock()
		if !queued {
			return fmt.Errorf("task is %s: %w", t.Status, async.ErrConflict)
		}
		t.Status, t.FinishedAt = async.StatusCancelled, now
		return b.Set(taskExpiryKey(now.Add(q.opts.Retention), id), nil, nil)
	}, func(*async.Task) { q.idx.remove(e) })
}

// Replay queues a failed task again with a fresh retry budget (synced) and
// returns it. A task that has not failed, or whose outcome deliveries are
// still pending, is returned with async.ErrConflict; another tenant's task
// is async.ErrNotFound.
func (q *Queue) Replay(ctx context.Context, tenant, id string) (*async.Task, error) {
	return q.withOwnTask("replay", tenant, id, func(t *async.Task, _ *pebble.Batch, now time.Time) error {
		switch {
		case t.Status != async.StatusFailed:
			return fmt.Errorf("only a failed task can be replayed; this one is %s: %w", t.Status, async.ErrConflict)
		case t.HasPendingDeliveries():
			return fmt.Errorf("its outcome deliveries are still in progress: %w", async.ErrConflict)
		}
		t.Status, t.Attempts, t.Error = async.StatusQueued, 0, nil
		t.Output, t.OutputType, t.StatusCode, t.Deliveries = nil, "", 0, nil
		t.Replays++
		// The finished task's expiry key stays: the sweep skips unfinished
		// tasks.
		t.ReplayedAt, t.ReadyAt, t.FinishedAt = now, now, time.Time{}
		return nil
	}, func(t *async.Task) {
		delete(q.pending, id)
		q.idx.add(id, t.Lane(), t.ReadyAt, t.Lease)
		q.signal()
	})
}

// withOwnTask changes the tenant's task id under its stripe lock: change
// edits the task (and may add keys to b) or refuses with an error, which is
// returned with the task; the task is then written, synced, and after runs
// under q.mu. Another tenant's task is async.ErrNotFound.
func (q *Queue) withOwnTask(op, tenant, id string,
	change func(t *async.Task, b *pebble.Batch, now time.Time) error,
	after func(t *async.Task),
) (*async.Task, error) {
	if err := q.begin(op); err != nil {
		return nil, err
	}
	defer q.end()
	lk := q.stripe(id)
	lk.Lock()
	defer lk.Unlock()

	t, err := q.ownTask(tenant, id)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("embedded: %s %s: %w", op, id, async.ErrNotFound)
	}
	if t.Status == async.StatusDamaged {
		return t, fmt.Errorf("embedded: %s %s: the task is damaged: %w", op, id, async.ErrConflict)
	}
	now := q.now()
	b := q.db.NewBatch()
	defer b.Close()
	if err := change(t, b, now); err != nil {
		return t, fmt.Errorf("embedded: %s %s: %w", op, id, err)
	}
	t.UpdatedAt = now
	if err := putRecord(b, t); err != nil {
		return nil, fmt.Errorf("embedded: %s: %w", op, err)
	}
	if err := q.commit(b, pebble.Sync, op); err != nil {
		return nil, err
	}
	q.mu.Lock()
	after(t)
	q.mu.Unlock()
	return t, nil
}
