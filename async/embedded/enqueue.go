package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	res, err := q.EnqueueBatch(ctx, []*async.Task{t}, maxQueued)
	if err != nil {
		return nil, false, err
	}
	return res[0].Task, res[0].Created, res[0].Err
}

// EnqueueBatch stores the tenant's tasks as Enqueue does, all of them in
// one synced Pebble batch (one WAL write and fsync for the request), and
// returns one result per task in order. A task whose idempotency key is
// live returns the existing task; a key used twice in the batch makes the
// second a duplicate of the first. The quota is checked task by task, so
// the tasks past it fail alone. A failed write fails the whole batch
// (nothing is stored).
func (q *Queue) EnqueueBatch(ctx context.Context, ts []*async.Task, maxQueued int) ([]async.EnqueueResult, error) {
	for _, t := range ts {
		if err := validateNew(t); err != nil {
			return nil, err
		}
		if t.Tenant != ts[0].Tenant {
			return nil, fmt.Errorf("embedded: enqueue: a batch holds tasks of tenants %q and %q", ts[0].Tenant, t.Tenant)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.begin("enqueue"); err != nil {
		return nil, err
	}
	defer q.end()
	size := 0
	for _, t := range ts {
		size += len(t.Payload) + recordOverhead
	}
	if err := q.admit(size); err != nil {
		return nil, err
	}

	b := newBatchEnqueue(ts)
	if err := b.claimKeys(ctx, q); err != nil {
		b.settle(q, err)
		return nil, err
	}
	err := q.insert(b, maxQueued)
	b.settle(q, err)
	if err != nil {
		return nil, err
	}
	return b.res, nil
}

// recordOverhead is roughly what a task adds to the store beside its
// payload (record, listing key, WAL framing), for the free-space guard.
const recordOverhead = 256

// batchEnqueue is one EnqueueBatch in progress.
type batchEnqueue struct {
	ts      []*async.Task
	res     []async.EnqueueResult
	claims  []*idemEntry // the claim of each task's key (nil: none or not claimed)
	dupOf   map[int]int  // task → the earlier task of the batch with its key
	expires time.Time    // idempotency keys claimed now expire then
}

func newBatchEnqueue(ts []*async.Task) *batchEnqueue {
	return &batchEnqueue{ts: ts, res: make([]async.EnqueueResult, len(ts)), claims: make([]*idemEntry, len(ts))}
}

// claimKeys claims the tasks' idempotency keys, or takes the live task of
// a key already used (its result is then set).
func (b *batchEnqueue) claimKeys(ctx context.Context, q *Queue) error {
	b.expires = q.now().Add(q.opts.IdempotencyTTL)
	var seen map[string]int
	for i, t := range b.ts {
		if t.IdempotencyKey == "" {
			continue
		}
		if j, ok := seen[t.IdempotencyKey]; ok {
			if b.dupOf == nil {
				b.dupOf = map[int]int{}
			}
			b.dupOf[i] = j
			continue
		}
		existing, claim, err := q.claimKey(ctx, idemMapKey{t.Tenant, t.IdempotencyKey})
		if err != nil {
			return err
		}
		if existing != nil {
			b.res[i] = async.EnqueueResult{Task: existing}
			continue
		}
		if seen == nil {
			seen = map[string]int{}
		}
		seen[t.IdempotencyKey] = i
		b.claims[i] = claim
	}
	return nil
}

// todo reports whether task i is still to be stored.
func (b *batchEnqueue) todo(i int) bool {
	_, dup := b.dupOf[i]
	return b.res[i].Task == nil && b.res[i].Err == nil && !dup
}

// settle ends the claims: a stored task's key names it, any other claim is
// dropped; duplicates inside the batch take their first's result.
func (b *batchEnqueue) settle(q *Queue, err error) {
	q.idemMu.Lock()
	for i, claim := range b.claims {
		if claim == nil {
			continue
		}
		k := idemMapKey{b.ts[i].Tenant, b.ts[i].IdempotencyKey}
		if err == nil && b.res[i].Created {
			claim.id, claim.expires = b.res[i].Task.ID, b.expires
		} else if q.idem[k] == claim {
			delete(q.idem, k)
		}
		close(claim.done)
		claim.done = nil
	}
	q.idemMu.Unlock()
	for i, j := range b.dupOf {
		b.res[i] = async.EnqueueResult{Err: b.res[j].Err}
		if b.res[j].Task != nil {
			b.res[i].Task = b.res[j].Task.Clone()
		}
	}
}

// insert stores the batch's new tasks (and their idempotency keys) in one
// synced batch, then indexes them. Tasks past the tenant's quota, or whose
// id is in use, fail alone.
func (q *Queue) insert(b *batchEnqueue, maxQueued int) error {
	now := q.now()
	recs := make([]*async.Task, len(b.ts))
	var locks []int
	for i, t := range b.ts {
		if !b.todo(i) {
			continue
		}
		rec := t.Clone()
		rec.Status = async.StatusQueued
		rec.UpdatedAt = now
		rec.LeaseExpiresAt = time.Time{}
		rec.FinishedAt = time.Time{}
		recs[i] = rec
		locks = append(locks, q.stripeIndex(rec.ID))
	}
	// Stripes in order, each once: no deadlock with another batch.
	slices.Sort(locks)
	locks = slices.Compact(locks)
	for _, s := range locks {
		q.stripes[s].Lock()
	}
	defer func() {
		for _, s := range locks {
			q.stripes[s].Unlock()
		}
	}()

	tenant := b.ts[0].Tenant
	q.mu.Lock()
	ts := q.idx.tenant(tenant)
	reserved := 0
	for i, rec := range recs {
		if rec == nil {
			continue
		}
		dup := q.idx.entries.get(rec.ID) != nil
		switch {
		case dup:
			b.res[i].Err, recs[i] = conflict(rec.ID), nil
		case maxQueued > 0 && ts.unfinished+ts.reserved >= maxQueued:
			b.res[i].Err, recs[i] = fmt.Errorf("embedded: enqueue: tenant %q has %d unfinished tasks: %w", tenant, maxQueued, async.ErrQuotaExceeded), nil
		default:
			ts.reserved++
			reserved++
		}
	}
	if reserved == 0 {
		q.idx.gcTenant(ts)
	}
	q.mu.Unlock()
	if reserved == 0 {
		return nil
	}

	err := q.writeNew(b, recs)

	q.mu.Lock()
	defer q.mu.Unlock()
	ts.reserved -= reserved
	if err != nil {
		q.idx.gcTenant(ts)
		return err
	}
	added := false
	for i, rec := range recs {
		if rec == nil {
			continue
		}
		q.idx.add(rec.ID, rec.Lane(), rec.ReadyAt, rec.Lease)
		b.res[i] = async.EnqueueResult{Task: rec, Created: true} // rec is the caller's: nothing else holds it
		added = true
	}
	if added {
		q.signal()
	}
	return nil
}

func conflict(id string) error {
	return fmt.Errorf("embedded: enqueue: task id %q already exists: %w", id, async.ErrConflict)
}

// writeNew commits new task records, their listing keys and idempotency
// keys, fsynced. A record whose id is already stored (a finished task) is
// left out with async.ErrConflict.
func (q *Queue) writeNew(b *batchEnqueue, recs []*async.Task) error {
	wb := q.db.NewBatch()
	defer wb.Close()
	n := 0
	for i, rec := range recs {
		if rec == nil {
			continue
		}
		fresh := rec.FreshID
		rec.FreshID = false
		if !fresh {
			old, err := q.readRecord(rec.ID)
			if err != nil {
				return err
			}
			if old != nil {
				b.res[i].Err, recs[i] = conflict(rec.ID), nil
				continue
			}
		}
		err := putNew(wb, rec)
		if err == nil {
			err = wb.Set(listKey(rec.Tenant, rec.CreatedAt, rec.ID), []byte(rec.Function), nil)
		}
		if err == nil && b.claims[i] != nil {
			err = errors.Join(
				setJSON(wb, idemKey(rec.Tenant, rec.IdempotencyKey), idemRecord{ID: rec.ID, ExpiresAt: b.expires}),
				wb.Set(idemExpiryKey(b.expires, rec.Tenant, rec.IdempotencyKey), nil, nil),
			)
		}
		if err != nil {
			return fmt.Errorf("embedded: enqueue: %w", err)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	return q.commit(wb, pebble.Sync, "enqueue")
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
