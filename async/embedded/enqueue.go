package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
)

// idemMapKey names an idempotency key of one tenant.
type idemMapKey struct{ tenant, key string }

// idemEntry is the in-memory copy of an idempotency key. While the Enqueue
// that claimed the key is in flight, done is non-nil and other Enqueues of
// the same key wait for it instead of racing it.
type idemEntry struct {
	id      string
	expires time.Time
	done    chan struct{}
}

// Enqueue stores a copy of t durably (pebble.Sync: fsynced before it
// returns; concurrent Enqueues share one WAL fsync through Pebble's group
// commit) and returns that copy with Status queued. t itself is not
// modified. See async.Queue for idempotency and quota; an ID already in use
// is async.ErrConflict.
func (q *Queue) Enqueue(ctx context.Context, t *async.Task, maxQueued int) (*async.Task, bool, error) {
	if err := validateNew(t); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if err := q.begin("enqueue"); err != nil {
		return nil, false, err
	}
	defer q.end()

	if t.IdempotencyKey == "" {
		got, err := q.insert(t, maxQueued, time.Time{})
		return got, err == nil, err
	}
	k := idemMapKey{t.Tenant, t.IdempotencyKey}
	existing, claim, err := q.claimKey(ctx, k)
	if err != nil || existing != nil {
		return existing, false, err
	}
	expires := q.now().Add(q.opts.IdempotencyTTL)
	got, err := q.insert(t, maxQueued, expires)

	q.idemMu.Lock()
	if err == nil {
		claim.id, claim.expires = got.ID, expires
	} else if q.idem[k] == claim {
		delete(q.idem, k)
	}
	done := claim.done
	claim.done = nil
	close(done)
	q.idemMu.Unlock()
	return got, err == nil, err
}

func validateNew(t *async.Task) error {
	if err := t.CheckNew(); err != nil {
		return fmt.Errorf("embedded: enqueue: %w", err)
	}
	if len(t.Tenant) > maxTenantLen {
		return fmt.Errorf("embedded: enqueue: tenant name longer than %d bytes", maxTenantLen)
	}
	return nil
}

// claimKey returns the live task of an idempotency key, or claims the key
// for the caller, who must settle the claim (see Enqueue). Check and claim
// are atomic under idemMu; a concurrent Enqueue of the same key waits for
// the claim to settle, then checks again.
func (q *Queue) claimKey(ctx context.Context, k idemMapKey) (*async.Task, *idemEntry, error) {
	for {
		q.idemMu.Lock()
		e := q.idem[k]
		switch {
		case e != nil && e.done != nil:
			ch := e.done
			q.idemMu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		case e != nil && q.now().Before(e.expires):
			id := e.id
			q.idemMu.Unlock()
			t, err := q.readTask(id)
			if err != nil {
				return nil, nil, err
			}
			if t != nil && t.Tenant == k.tenant {
				return t, nil, nil
			}
			// The task is gone (retention shorter than the key's TTL):
			// the key no longer names anything, so it is free again.
			q.idemMu.Lock()
			if q.idem[k] == e {
				delete(q.idem, k)
			}
			q.idemMu.Unlock()
			continue
		}
		claim := &idemEntry{done: make(chan struct{})}
		q.idem[k] = claim
		q.idemMu.Unlock()
		return nil, claim, nil
	}
}

// insert stores a new task (and its idempotency key when idemExpires is
// set) in one synced batch, then indexes it.
func (q *Queue) insert(t *async.Task, maxQueued int, idemExpires time.Time) (*async.Task, error) {
	now := q.now()
	rec := t.Clone()
	rec.Status = async.StatusQueued
	rec.UpdatedAt = now
	rec.LeaseExpiresAt = time.Time{}
	rec.FinishedAt = time.Time{}

	lk := q.stripe(rec.ID)
	lk.Lock()
	defer lk.Unlock()

	q.mu.Lock()
	_, dup := q.idx.entries[rec.ID]
	ts := q.idx.tenant(rec.Tenant)
	if !dup && maxQueued > 0 && ts.unfinished+ts.reserved >= maxQueued {
		q.idx.gcTenant(ts)
		q.mu.Unlock()
		return nil, fmt.Errorf("embedded: enqueue: tenant %q has %d unfinished tasks: %w", rec.Tenant, maxQueued, async.ErrQuotaExceeded)
	}
	ts.reserved++
	q.mu.Unlock()

	err := q.writeNew(rec, idemExpires, dup)

	q.mu.Lock()
	defer q.mu.Unlock()
	ts.reserved--
	if err != nil {
		q.idx.gcTenant(ts)
		return nil, err
	}
	q.idx.add(rec.ID, rec.Lane(), rec.ReadyAt, rec.Lease)
	q.signal()
	return rec.Clone(), nil
}

// writeNew commits a new task record, its listing key and its idempotency
// key, fsynced.
func (q *Queue) writeNew(rec *async.Task, idemExpires time.Time, dup bool) error {
	if !dup {
		old, err := q.readTask(rec.ID)
		if err != nil {
			return err
		}
		dup = old != nil
	}
	if dup {
		return fmt.Errorf("embedded: enqueue: task id %q already exists: %w", rec.ID, async.ErrConflict)
	}
	b := q.db.NewBatch()
	defer b.Close()
	err := setJSON(b, taskKey(rec.ID), rec)
	if err == nil {
		err = b.Set(listKey(rec.Tenant, rec.CreatedAt, rec.ID), []byte(rec.Function), nil)
	}
	if err == nil && !idemExpires.IsZero() {
		err = errors.Join(
			setJSON(b, idemKey(rec.Tenant, rec.IdempotencyKey), idemRecord{ID: rec.ID, ExpiresAt: idemExpires}),
			b.Set(idemExpiryKey(idemExpires, rec.Tenant, rec.IdempotencyKey), nil, nil),
		)
	}
	if err != nil {
		return fmt.Errorf("embedded: enqueue: %w", err)
	}
	return q.commit(b, pebble.Sync, "enqueue")
}

// loadIdem reads the live idempotency keys at Open (expired ones are left
// to the sweeper).
func (q *Queue) loadIdem(now time.Time) error {
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixIdem}, UpperBound: []byte{prefixIdem + 1}})
	if err != nil {
		return fmt.Errorf("embedded: open: scan idempotency keys: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		tenant, key, ok := parseTenant(it.Key()[1:])
		var r idemRecord
		if !ok || json.Unmarshal(it.Value(), &r) != nil {
			q.log.Error("embedded: skipping malformed idempotency key", "key", string(it.Key()))
			continue
		}
		if now.Before(r.ExpiresAt) {
			q.idem[idemMapKey{tenant, string(key)}] = &idemEntry{id: r.ID, expires: r.ExpiresAt}
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("embedded: open: scan idempotency keys: %w", err)
	}
	return nil
}
