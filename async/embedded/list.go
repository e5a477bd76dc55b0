package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
)

// List limits.
const (
	ListLimitDefault = 100
	ListLimitMax     = 1000
	// listScanBudget bounds the index entries one List call visits, so a
	// selective filter over a large history cannot turn one call into a
	// full scan: the page may then hold fewer than Limit tasks, with a
	// cursor to continue.
	listScanBudget = 10000
)

// List returns one page of the tenant's tasks, newest first (by CreatedAt),
// from the tenant's listing index, and the cursor of the next page ("" at
// the end). Limit 0 means ListLimitDefault; larger than ListLimitMax is
// capped. A page may be short (even empty) with a non-empty cursor when the
// filters skipped many tasks. async.ErrBadCursor for a malformed cursor or
// one from a query with another tenant or other filters.
func (q *Queue) List(ctx context.Context, opts async.ListOptions) ([]*async.Task, string, error) {
	if opts.Tenant == "" {
		return nil, "", errors.New("embedded: list: tenant is required")
	}
	if opts.Status != "" {
		if _, err := async.ParseStatus(string(opts.Status)); err != nil {
			return nil, "", fmt.Errorf("embedded: list: %w", err)
		}
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = ListLimitDefault
	}
	limit = min(limit, ListLimitMax)
	prefix := listPrefix(opts.Tenant)
	upper := prefixEnd(prefix)
	if opts.Cursor != "" {
		suffix, err := decodeCursor(opts)
		if err != nil {
			return nil, "", err
		}
		upper = append(prefix[:len(prefix):len(prefix)], suffix...)
	}
	if err := q.begin("list"); err != nil {
		return nil, "", err
	}
	defer q.end()

	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, "", fmt.Errorf("embedded: list: %w: %w", async.ErrUnavailable, err)
	}
	defer it.Close()
	// match reports whether the entry under the iterator passes the
	// filters, returning its task.
	match := func() (*async.Task, error) {
		key := it.Key()
		if len(key) <= len(prefix)+8 || (opts.Function != "" && string(it.Value()) != opts.Function) {
			return nil, nil
		}
		id := string(key[len(prefix)+8:])
		t, err := q.readTask(id)
		if errors.Is(err, async.ErrDamaged) {
			// One damaged record is reported, not a failed page.
			_, l, _ := parseListing(key, it.Value())
			if _, known := q.damaged.get(id); !known {
				q.log.Error("embedded: a task record is damaged", "task", id, "err", err)
				q.damaged.put(id, l)
			}
			t, err = async.DamagedTask(id, opts.Tenant, l.function, l.created, err), nil
		}
		if err != nil || t == nil || (opts.Status != "" && t.Status != opts.Status) {
			return nil, err
		}
		return t, nil
	}
	var tasks []*async.Task
	var lastSuffix []byte // listing key suffix of the last task in tasks
	scanned := 0
	for ok := it.Last(); ok; ok = it.Prev() {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		scanned++
		t, err := match()
		if err != nil {
			return nil, "", err
		}
		if t != nil && len(tasks) == limit {
			// A further match exists: continue after the last task returned.
			return tasks, encodeCursor(opts, lastSuffix), nil
		}
		if t != nil {
			tasks = append(tasks, t)
			lastSuffix = append(lastSuffix[:0], it.Key()[len(prefix):]...)
		}
		if scanned >= listScanBudget {
			// Out of budget: continue after the entry scanned last.
			return tasks, encodeCursor(opts, append([]byte(nil), it.Key()[len(prefix):]...)), nil
		}
	}
	if err := it.Error(); err != nil {
		return nil, "", fmt.Errorf("embedded: list: %w: %w", async.ErrUnavailable, err)
	}
	return tasks, "", nil
}
