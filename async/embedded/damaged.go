package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
)

// damagedSet remembers the tasks whose record cannot be decoded, with what
// the listing index still says of them (tenant, function, creation time),
// so that a read of one answers async.DamagedTask to its tenant (and
// async.ErrNotFound to any other) instead of failing.
type damagedSet struct {
	mu  sync.Mutex
	ids map[string]listing
}

// listing is a task's listing index entry.
type listing struct {
	tenant, function string
	created          time.Time
}

func (d *damagedSet) get(id string) (listing, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.ids[id]
	return l, ok
}

func (d *damagedSet) put(id string, l listing) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil {
		d.ids = map[string]listing{}
	}
	d.ids[id] = l
}

// parseListing reads a listing key (l <tenant> <created> <id>) and its
// value (the function).
func parseListing(key, value []byte) (id string, l listing, ok bool) {
	if len(key) < 1 || key[0] != prefixList {
		return "", listing{}, false
	}
	tenant, rest, ok := parseTenant(key[1:])
	if !ok || len(rest) <= 8 {
		return "", listing{}, false
	}
	created := time.Unix(0, int64(binary.BigEndian.Uint64(rest)^(1<<63))).UTC()
	return string(rest[8:]), listing{tenant, string(value), created}, true
}

// findDamaged looks up the listing entries of the undecodable records
// load found (one scan of the listing index, only when there are some).
func (q *Queue) findDamaged(ids map[string]struct{}) error {
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixList}, UpperBound: []byte{prefixList + 1}})
	if err != nil {
		return fmt.Errorf("embedded: open: scan the listing index: %w", err)
	}
	for ok := it.First(); ok && len(ids) > 0; ok = it.Next() {
		id, l, ok := parseListing(it.Key(), it.Value())
		if _, damaged := ids[id]; ok && damaged {
			q.damaged.put(id, l)
			delete(ids, id)
		}
	}
	for id := range ids {
		q.log.Error("embedded: a damaged task record has no listing entry: no tenant can see it", "task", id)
	}
	return errors.Join(it.Error(), it.Close())
}

// ownTask reads the tenant's task id: nil when there is none or it is
// another tenant's; async.DamagedTask when its record is damaged.
func (q *Queue) ownTask(tenant, id string) (*async.Task, error) {
	t, err := q.readTask(id)
	if errors.Is(err, async.ErrDamaged) {
		l, ok := q.damaged.get(id)
		if !ok {
			q.log.Error("embedded: a task record is damaged", "task", id, "err", err)
			if l, ok = q.lookupListing(tenant, id); ok {
				q.damaged.put(id, l)
			}
		}
		if !ok || l.tenant != tenant {
			return nil, nil
		}
		return async.DamagedTask(id, l.tenant, l.function, l.created, err), nil
	}
	if err != nil || t == nil || t.Tenant != tenant {
		return nil, err
	}
	return t, nil
}

// lookupListing finds the tenant's listing entry of id by scanning the
// tenant's index: only for a damaged record found after Open, so rare.
func (q *Queue) lookupListing(tenant, id string) (listing, bool) {
	prefix := listPrefix(tenant)
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return listing{}, false
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if got, l, ok := parseListing(it.Key(), it.Value()); ok && got == id {
			return l, true
		}
	}
	return listing{}, false
}
