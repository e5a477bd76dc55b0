package embedded

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
)

const (
	// sweepInterval is how often Run deletes expired tasks and keys.
	sweepInterval = time.Minute
	// maxReapWait bounds the reaper's sleep, so a clock that jumps (or a
	// lease taken while the timer was being re-armed) is noticed.
	maxReapWait = time.Minute
	// upkeepBackoff is the pause after a failed reap.
	upkeepBackoff = time.Second
	// sweepBatch is how many due expiry keys one sweep step reads.
	sweepBatch = 256
)

// Run does the background upkeep until ctx ends (returning ctx.Err()) or
// the queue is closed (returning nil): it requeues tasks whose lease
// expired, waking at the earliest expiry rather than polling, and once a
// minute deletes the finished tasks and idempotency keys whose time is up,
// found through the expiry index rather than by scanning. Run it once.
func (q *Queue) Run(ctx context.Context) error {
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	q.logSweep()
	for {
		wait := time.Duration(-1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-q.done:
			return nil
		case <-sweep.C:
			q.logSweep()
		case <-q.wake:
		case <-timer.C:
			if _, err := q.reapExpired(); err != nil {
				if errors.Is(err, async.ErrUnavailable) && q.isClosed() {
					return nil
				}
				q.log.Error("embedded: reaping expired leases failed", "err", err)
				wait = upkeepBackoff
			}
		}
		if wait < 0 {
			wait = q.untilNextExpiry()
		}
		timer.Reset(wait)
	}
}

// Upkeep runs one pass of Run's work now and returns when it is done: it
// requeues the tasks whose lease expired (signalling Ready when it did)
// and deletes the finished tasks and idempotency keys whose time is up.
// Run does the same on its own schedule; Upkeep is for callers that drive
// the clock themselves (tests with a fake clock). It is safe to call
// beside Run and from several goroutines. async.ErrUnavailable once the
// queue is closed.
func (q *Queue) Upkeep(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := q.reapExpired(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := q.sweep()
	return err
}

func (q *Queue) isClosed() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

func (q *Queue) logSweep() {
	if _, err := q.sweep(); err != nil && !q.isClosed() {
		q.log.Error("embedded: deleting expired tasks failed", "err", err)
	}
}

// untilNextExpiry is how long the reaper may sleep.
func (q *Queue) untilNextExpiry() time.Duration {
	q.mu.Lock()
	next := q.idx.nextExpiry()
	q.mu.Unlock()
	if next.IsZero() {
		return maxReapWait
	}
	return min(max(next.Sub(q.now()), 0), maxReapWait)
}

// reapExpired requeues every task whose lease expired (Recoveries+1,
// Attempts unchanged, ReadyAt unchanged) and returns how many. Completions
// carrying the old token then get async.ErrLeaseLost. Two reapers seeing
// the same expired lease requeue it once: each re-checks the token under
// the task's lock. Written with pebble.NoSync: if the write is lost in a
// crash, the record still says running and Open requeues it.
func (q *Queue) reapExpired() (int, error) {
	if err := q.begin("reap"); err != nil {
		return 0, err
	}
	defer q.end()
	now := q.now()
	q.mu.Lock()
	refs := q.idx.expired(now)
	q.mu.Unlock()
	n := 0
	for _, r := range refs {
		ok, err := q.reap(r, now)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	if n > 0 {
		q.signal()
		q.log.Info("embedded: requeued tasks whose lease expired", "tasks", n)
	}
	return n, nil
}

func (q *Queue) reap(r leaseRef, now time.Time) (bool, error) {
	e := r.e
	lk := q.stripe(e.id())
	lk.Lock()
	defer lk.Unlock()
	q.mu.Lock()
	live := q.idx.entries.has(e) && e.running() && e.token == r.token && e.run.exp <= now.UnixNano()
	q.mu.Unlock()
	if !live {
		return false, nil
	}
	t, err := q.readRecord(e.id())
	if err != nil {
		return false, err
	}
	if t == nil {
		q.mu.Lock()
		q.idx.remove(e)
		q.mu.Unlock()
		return false, nil
	}
	t.Status = async.StatusQueued
	t.Recoveries++
	t.LeaseExpiresAt = time.Time{}
	t.UpdatedAt = now
	b := q.db.NewBatch()
	defer b.Close()
	if err := putRecord(b, t); err != nil {
		return false, fmt.Errorf("embedded: reap: %w", err)
	}
	if err := q.commit(b, pebble.NoSync, "reap"); err != nil {
		return false, err
	}
	q.mu.Lock()
	q.idx.requeue(e, e.readyAt())
	q.mu.Unlock()
	return true, nil
}

// sweep deletes what the expiry index says is due: finished tasks (record,
// listing key) and idempotency keys. It returns how many tasks and keys it
// deleted. Every due expiry key is consumed; a task whose time moved on
// (its UpdatedAt changed after the key was written) gets a new key.
// Deletions use pebble.NoSync: one lost in a crash is redone.
func (q *Queue) sweep() (int, error) {
	if err := q.begin("sweep"); err != nil {
		return 0, err
	}
	defer q.end()
	now := q.now()
	deleted := 0
	for {
		keys, err := q.dueExpiries(now)
		if err != nil || len(keys) == 0 {
			return deleted, err
		}
		for _, k := range keys {
			var n int
			kind, rest, ok := parseExpiryKey(k)
			switch {
			case ok && kind == kindTask:
				n, err = q.expireTask(k, string(rest), now)
			case ok && kind == kindIdem:
				n, err = q.expireIdem(k, rest, now)
			default:
				q.log.Error("embedded: deleting malformed expiry key", "key", fmt.Sprintf("%q", k))
				err = q.deleteKeys(k)
			}
			deleted += n
			if err != nil {
				return deleted, err
			}
		}
	}
}

// dueExpiries returns up to sweepBatch expiry keys due at now.
func (q *Queue) dueExpiries(now time.Time) ([][]byte, error) {
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixExpiry}, UpperBound: expiryUpper(now)})
	if err != nil {
		return nil, fmt.Errorf("embedded: sweep: %w: %w", async.ErrUnavailable, err)
	}
	var keys [][]byte
	for ok := it.First(); ok && len(keys) < sweepBatch; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("embedded: sweep: %w: %w", async.ErrUnavailable, err)
	}
	return keys, nil
}

func (q *Queue) deleteKeys(keys ...[]byte) error {
	b := q.db.NewBatch()
	defer b.Close()
	for _, k := range keys {
		if err := b.Delete(k, nil); err != nil {
			return fmt.Errorf("embedded: sweep: %w", err)
		}
	}
	return q.commit(b, pebble.NoSync, "sweep")
}

// expireTask handles one due task expiry key. A finished task without
// pending deliveries expires at UpdatedAt + Retention: UpdatedAt is the
// finish time or the time the last delivery changed, whichever is later.
func (q *Queue) expireTask(xkey []byte, id string, now time.Time) (int, error) {
	lk := q.stripe(id)
	lk.Lock()
	defer lk.Unlock()
	t, err := q.readRecord(id)
	if errors.Is(err, async.ErrDamaged) {
		// Kept, so that its tenant sees it damaged; the key is dropped so
		// that the sweep does not trip on it every minute.
		q.log.Error("embedded: sweep: keeping a damaged task record", "task", id, "err", err)
		return 0, q.deleteKeys(xkey)
	}
	if err != nil {
		return 0, err
	}
	if t == nil || !t.Status.Final() || t.HasPendingDeliveries() {
		// Gone, or not expiring now: deliveries settling write a new key.
		return 0, q.deleteKeys(xkey)
	}
	if due := t.UpdatedAt.Add(q.opts.Retention); due.After(now) {
		b := q.db.NewBatch()
		defer b.Close()
		if err := errors.Join(b.Delete(xkey, nil), b.Set(taskExpiryKey(due, id), nil, nil)); err != nil {
			return 0, fmt.Errorf("embedded: sweep: %w", err)
		}
		return 0, q.commit(b, pebble.NoSync, "sweep")
	}
	if err := q.deleteKeys(xkey, taskKey(id), payloadKey(id), listKey(t.Tenant, t.CreatedAt, id)); err != nil {
		return 0, err
	}
	q.mu.Lock()
	delete(q.pending, id)
	q.mu.Unlock()
	return 1, nil
}

// expireIdem handles one due idempotency expiry key. The key is deleted
// unless it was claimed again since (then only the expiry key goes). The
// write happens under idemMu so it cannot overtake a new claim's write.
func (q *Queue) expireIdem(xkey, rest []byte, now time.Time) (int, error) {
	tenant, key, ok := parseTenant(rest)
	if !ok {
		return 0, q.deleteKeys(xkey)
	}
	k := idemMapKey{tenant, string(key)}
	q.idemMu.Lock()
	defer q.idemMu.Unlock()
	e := q.idem[k]
	if e != nil && (e.done != nil || now.Before(e.expires)) {
		return 0, q.deleteKeys(xkey)
	}
	if err := q.deleteKeys(xkey, idemKey(tenant, string(key))); err != nil {
		return 0, err
	}
	if e == nil { // already gone from memory (an older expiry key of a reused key)
		return 0, nil
	}
	delete(q.idem, k)
	return 1, nil
}
