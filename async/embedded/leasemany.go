package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

var _ async.BatchLeaser = (*Queue)(nil)

// LeaseMany is Lease for up to n tasks, picked in the same fair order, their
// leases written in one Pebble batch (one commit for all of them, NoSync as
// Lease's). It takes only tasks whose write lock is free at once; when the
// first is busy it falls back to Lease, which waits for it.
func (q *Queue) LeaseMany(ctx context.Context, req async.LeaseRequest, n int) ([]*async.Task, time.Time, error) {
	if n <= 1 {
		return q.leaseOne(ctx, req)
	}
	if req.TTL <= 0 {
		return nil, time.Time{}, fmt.Errorf("embedded: lease: ttl must be positive, got %v", req.TTL)
	}
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, err
	}
	allow := allowing(&req)
	if err := q.begin("lease"); err != nil {
		return nil, time.Time{}, err
	}
	defer q.end()

	now := q.now()
	exp := now.Add(req.TTL)
	// left counts what Room leaves of each lane seen (-1: no bound); a
	// lane is no longer picked once nothing is left.
	left := map[wire.Lane]int{}
	if req.Room != nil {
		base := allow
		allow = func(l wire.Lane) bool {
			if !base(l) {
				return false
			}
			n, ok := left[l]
			if !ok {
				n = req.Room(l)
				left[l] = n
			}
			return n != 0
		}
	}
	var (
		picked []*entry
		held   = map[int]bool{} // stripes this call holds
		next   time.Time
	)
	q.mu.Lock()
	for len(picked) < n {
		e, nx := q.idx.pick(allow, now)
		if e == nil {
			next = nx
			break
		}
		s := q.stripeIndex(e.id())
		if !held[s] {
			// Lock order is stripe, then mu: with mu held only TryLock.
			if !q.stripes[s].TryLock() {
				break
			}
			held[s] = true
		}
		q.idx.lease(e, exp)
		picked = append(picked, e)
		if n := left[e.lane.key]; n > 0 {
			left[e.lane.key] = n - 1
		}
	}
	first := len(picked) > 0 && q.idx.leases[0].run.exp == exp.UnixNano()
	q.mu.Unlock()
	defer func() {
		for s := range held {
			q.stripes[s].Unlock()
		}
	}()
	if len(picked) == 0 {
		if next.IsZero() && q.hasReady(allow, now) {
			return q.leaseOne(ctx, req) // the head's lock was busy: wait for it there
		}
		return nil, next, nil
	}

	out, err := q.persistLeases(picked, now, exp)
	if err != nil {
		return nil, time.Time{}, err
	}
	if first {
		q.signalWake()
	}
	return out, time.Time{}, nil
}

// leaseOne is Lease as a LeaseMany answer.
func (q *Queue) leaseOne(ctx context.Context, req async.LeaseRequest) ([]*async.Task, time.Time, error) {
	t, next, err := q.Lease(ctx, req)
	if t == nil {
		return nil, next, err
	}
	return []*async.Task{t}, next, err
}

// hasReady reports whether a task could be leased now (its lock aside).
func (q *Queue) hasReady(allow func(wire.Lane) bool, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, _ := q.idx.pick(allow, now)
	return e != nil
}

// persistLeases writes the leases of picked (their index entries leased,
// their stripes held) and makes the index agree with what was written:
// on an error every lease is undone; a task whose record vanished is
// dropped. It returns the leased tasks.
func (q *Queue) persistLeases(picked []*entry, now, exp time.Time) ([]*async.Task, error) {
	ts, err := q.writeLeases(picked, now, exp)
	q.mu.Lock()
	defer q.mu.Unlock()
	out := ts[:0]
	for i, e := range picked {
		switch {
		case err != nil: // undo: memory mirrors the records
			e.token--
			q.idx.requeue(e, e.readyAt())
		case ts[i] == nil: // the record vanished: forget the task
			q.idx.remove(e)
			q.log.Error("embedded: indexed task has no record; dropped from the index", "id", e.id())
		default:
			e.run.rec = ts[i].Clone()
			out = append(out, ts[i])
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// writeLeases persists the leases of picked (their tokens already taken)
// in one batch; a nil task where the record is missing.
func (q *Queue) writeLeases(picked []*entry, now, exp time.Time) ([]*async.Task, error) {
	ts := make([]*async.Task, len(picked))
	b := q.db.NewBatch()
	defer b.Close()
	for i, e := range picked {
		t, err := q.readTask(e.id())
		if err != nil {
			return ts, err
		}
		if t == nil {
			continue
		}
		t.Status = async.StatusRunning
		t.Lease = e.token
		t.LeaseExpiresAt = exp
		t.UpdatedAt = now
		if err := putRecord(b, t); err != nil {
			return ts, fmt.Errorf("embedded: lease: %w", err)
		}
		ts[i] = t
	}
	return ts, q.commit(b, pebble.NoSync, "lease")
}
