package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/async"
)

// Cancel cancels a queued task in one script (see async.Queue).
func (q *Queue) Cancel(ctx context.Context, tenant, id string) (*async.Task, error) {
	if err := q.begin("cancel"); err != nil {
		return nil, err
	}
	res, err := q.tenantRun(ctx, scriptCancel, tenant, id, q.opts.Retention.Milliseconds())
	if err != nil {
		return nil, unavailable("cancel "+id, err)
	}
	if str(res[0]) == "missing" {
		return nil, fmt.Errorf("redis store: cancel %s: %w", id, async.ErrNotFound)
	}
	t, _, err := decode(res[1 : 1+numFields])
	if err != nil {
		return nil, err
	}
	if str(res[0]) == "conflict" {
		return t, fmt.Errorf("redis store: cancel %s: task is %s: %w", id, t.Status, async.ErrConflict)
	}
	if err := q.hints.now(ctx, tenant, res[1+numFields], res[2+numFields], false); err != nil {
		q.log.Warn("redis store: ready hint not updated; the upkeep will", "task", id, "error", err)
	}
	return t, nil
}

// casTries bounds the compare-and-set rounds of a record change racing
// other changes of the same task (deliveries of one outcome updated at
// once).
const casTries = 20

// Replay queues a failed task again with a fresh retry budget (see
// async.Queue), as a compare-and-set of its record.
func (q *Queue) Replay(ctx context.Context, tenant, id string) (*async.Task, error) {
	for range casTries {
		t, v, err := q.get(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		switch {
		case t.Status != async.StatusFailed:
			return t, fmt.Errorf("redis store: replay %s: only a failed task can be replayed; this one is %s: %w", id, t.Status, async.ErrConflict)
		case t.HasPendingDeliveries():
			return t, fmt.Errorf("redis store: replay %s: its outcome deliveries are still in progress: %w", id, async.ErrConflict)
		}
		now := q.now()
		t.Status, t.Attempts, t.Error = async.StatusQueued, 0, nil
		t.Output, t.OutputType, t.StatusCode, t.Deliveries = nil, "", 0, nil
		t.Replays++
		t.ReplayedAt, t.ReadyAt = now, now
		res, err := q.setRecord(ctx, t, v, "replay", 0)
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if str(res[0]) == "conflict" {
			return t, fmt.Errorf("redis store: replay %s: task is %s: %w", id, str(res[1]), async.ErrConflict)
		}
		if err := q.hints.now(ctx, tenant, res[2], res[3], true); err != nil {
			q.log.Warn("redis store: ready hint not updated; the upkeep will", "task", id, "error", err)
		}
		t.ReadyAt = msTime(str(res[1]))
		t.UpdatedAt, t.FinishedAt = t.ReadyAt, time.Time{}
		return t, nil
	}
	return nil, fmt.Errorf("redis store: replay %s: the task keeps changing: %w", id, async.ErrUnavailable)
}

var errStale = errors.New("record changed")

// setRecord writes t's record if it is still at version v.
func (q *Queue) setRecord(ctx context.Context, t *async.Task, v uint64, op string, pending int) ([]any, error) {
	res, err := q.tenantRun(ctx, scriptSetRec, t.Tenant, t.ID, v, async.AppendRecord(nil, t), op, pending,
		q.opts.Retention.Milliseconds(), q.opts.ClaimTTL.Milliseconds())
	if err != nil {
		return nil, unavailable(op+" "+t.ID, err)
	}
	switch str(res[0]) {
	case "missing":
		return nil, fmt.Errorf("redis store: %s %s: %w", op, t.ID, async.ErrNotFound)
	case "stale":
		return nil, errStale
	}
	return res, nil
}

// UpdateDelivery records one delivery's progress (a compare-and-set of
// the record) and renews this node's claim on the task's deliveries, or,
// when none is pending any more, lets the task expire after retention.
func (q *Queue) UpdateDelivery(ctx context.Context, tenant, id string, d async.Delivery) error {
	for range casTries {
		t, v, err := q.get(ctx, tenant, id)
		if err != nil {
			return err
		}
		if !t.Status.Final() {
			return fmt.Errorf("redis store: update delivery %s: task is %s: %w", id, t.Status, async.ErrConflict)
		}
		if d.Index < 0 || d.Index >= len(t.Deliveries) {
			return fmt.Errorf("redis store: update delivery %s: index %d out of range (task has %d deliveries)", id, d.Index, len(t.Deliveries))
		}
		t.Deliveries[d.Index] = d
		pending := 0
		if t.HasPendingDeliveries() {
			pending = 1
		}
		_, err = q.setRecord(ctx, t, v, "delivery", pending)
		if errors.Is(err, errStale) {
			continue
		}
		if err == nil {
			q.hold(tenant, id, pending == 1)
		}
		return err
	}
	return fmt.Errorf("redis store: update delivery %s: the task keeps changing: %w", id, async.ErrUnavailable)
}

// hold notes (or forgets) this node's claim on a task's deliveries; the
// upkeep renews the claims held.
func (q *Queue) hold(tenant, id string, held bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.claimed[tenant]
	if held {
		if m == nil {
			m = map[string]bool{}
			q.claimed[tenant] = m
		}
		m[id] = true
		return
	}
	delete(m, id)
}

// held lists the ids of the tenant's tasks whose deliveries this node
// holds.
func (q *Queue) held(tenant string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := make([]string, 0, len(q.claimed[tenant]))
	for id := range q.claimed[tenant] {
		ids = append(ids, id)
	}
	return ids
}

// claimBatch bounds the tasks one claim call takes per tenant.
const claimBatch = 200

// PendingDeliveries returns the finished tasks with pending deliveries
// that this node holds or could claim because no live node holds them:
// at start-up, those a previous run left (a graceful Close gives its
// claims back; a killed node's lapse after ClaimTTL), and later those of a
// node that died. The Outbox calls it again periodically on a shared
// store and skips the tasks it already has.
func (q *Queue) PendingDeliveries(ctx context.Context) ([]*async.Task, error) {
	if err := q.begin("pending deliveries"); err != nil {
		return nil, err
	}
	var out []*async.Task
	for _, tenant := range q.knownTenants() {
		ids, err := q.claim(ctx, tenant, q.held(tenant))
		if err != nil {
			return out, err
		}
		ids = append(ids, q.held(tenant)...)
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			t, err := q.Get(ctx, tenant, id)
			if errors.Is(err, async.ErrNotFound) {
				continue
			}
			if err != nil {
				return out, err
			}
			if t.HasPendingDeliveries() {
				q.hold(tenant, id, true)
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// claim renews the claims in renew and claims up to claimBatch unclaimed
// tasks of the tenant.
func (q *Queue) claim(ctx context.Context, tenant string, renew []string) ([]string, error) {
	args := []any{q.opts.ClaimTTL.Milliseconds(), claimBatch}
	for _, id := range renew {
		args = append(args, id)
	}
	res, err := q.tenantRun(ctx, scriptClaim, tenant, args...)
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("claim deliveries", err)
	}
	ids := make([]string, 0, len(res))
	for _, v := range res {
		ids = append(ids, str(v))
	}
	return ids, nil
}

func (q *Queue) knownTenants() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, 0, len(q.tenants))
	for t := range q.tenants {
		out = append(out, t)
	}
	return out
}

// List limits, as the embedded store's.
const (
	ListLimitDefault = 100
	ListLimitMax     = 1000
	listScanBudget   = 10000
	listChunk        = 200
)

// List returns one page of the tenant's tasks, newest first, walking the
// tenant's listing index backwards from the cursor (see async.Queue). A
// page may be short with a cursor to continue when filters skipped many
// tasks.
func (q *Queue) List(ctx context.Context, opts async.ListOptions) ([]*async.Task, string, error) {
	if opts.Tenant == "" {
		return nil, "", errors.New("redis store: list: tenant is required")
	}
	if opts.Status != "" {
		if _, err := async.ParseStatus(string(opts.Status)); err != nil {
			return nil, "", fmt.Errorf("redis store: list: %w", err)
		}
	}
	if err := q.begin("list"); err != nil {
		return nil, "", err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = ListLimitDefault
	}
	limit = min(limit, ListLimitMax)
	upper := "+"
	if opts.Cursor != "" {
		m, err := decodeCursor(opts)
		if err != nil {
			return nil, "", err
		}
		upper = "(" + m
	}
	var tasks []*async.Task
	var last string
	scanned := 0
	for {
		members, err := q.rdb.ZRevRangeByLex(ctx, q.keys.all(opts.Tenant), &redis.ZRangeBy{Max: upper, Min: "-", Count: listChunk}).Result()
		if err != nil {
			return nil, "", unavailable("list", err)
		}
		if len(members) == 0 {
			return tasks, "", nil
		}
		pipe := q.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(members))
		for i, m := range members {
			cmds[i] = pipe.HMGet(ctx, q.keys.task(opts.Tenant, listID(m)), "r", "p", "s", "l", "e", "y", "c", "u", "n", "x", "v")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, "", unavailable("list", err)
		}
		for i, m := range members {
			scanned++
			t, _, err := decode(cmds[i].Val())
			if err != nil {
				return nil, "", err
			}
			if t != nil && (opts.Function == "" || t.Function == opts.Function) && (opts.Status == "" || t.Status == opts.Status) {
				if len(tasks) == limit {
					return tasks, encodeCursor(opts, last), nil
				}
				tasks = append(tasks, t)
				last = m
			}
			if scanned >= listScanBudget {
				return tasks, encodeCursor(opts, m), nil
			}
		}
		upper = "(" + members[len(members)-1]
	}
}

// A cursor names the listing member to continue after and the query it
// belongs to.
func encodeCursor(opts async.ListOptions, member string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(opts.Tenant + "\x00" + opts.Function + "\x00" + string(opts.Status) + "\x00" + member))
}

func decodeCursor(opts async.ListOptions) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(opts.Cursor)
	parts := strings.SplitN(string(b), "\x00", 4)
	if err != nil || len(parts) != 4 || parts[3] == "" {
		return "", fmt.Errorf("redis store: list: %w", async.ErrBadCursor)
	}
	if parts[0] != opts.Tenant || parts[1] != opts.Function || parts[2] != string(opts.Status) {
		return "", fmt.Errorf("redis store: list: cursor of another query: %w", async.ErrBadCursor)
	}
	return parts[3], nil
}
