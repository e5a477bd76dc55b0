package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// Defaults of Options.
const (
	DefaultPrefix         = "ferry"
	DefaultRetention      = 24 * time.Hour
	DefaultIdempotencyTTL = 24 * time.Hour
	DefaultClaimTTL       = 30 * time.Second
)

// Limit is the flow control the store enforces for a tenant or a
// function, cluster-wide, when it leases: max_concurrency counted with
// the leases, and a rate (GCRA) shared by every node.
type Limit struct {
	MaxConcurrency int
	Rate           float64
	Burst          int
}

// Options configure a Queue.
type Options struct {
	// Prefix starts every key (default "ferry"): two deployments with
	// different prefixes share one Redis without seeing each other.
	Prefix string
	// Retention keeps finished tasks (default 24h); IdempotencyTTL is the
	// idempotency window (default 24h).
	Retention      time.Duration
	IdempotencyTTL time.Duration
	// ClaimTTL is how long a node's claim on a finished task's pending
	// deliveries lasts without renewal (default 30s): a killed node's
	// deliveries are taken over by another node after it.
	ClaimTTL time.Duration
	// Tenants and Functions are the limits Lease enforces, and the
	// tenants the upkeep visits. Every node of a service must have the
	// same.
	Tenants   map[string]Limit
	Functions map[wire.Lane]Limit
	Logger    *slog.Logger
	// Clock is the node's clock (default time.Now): it stamps what the
	// node decides (a retry's time, a replay) and turns Redis's times into
	// the node's. Scripts never use it: they take Redis's TIME.
	Clock func() time.Time
	// Skew shifts Redis's clock in every script, for tests that move time
	// (nil in production).
	Skew func() time.Duration
}

// Queue is an async.Queue on Redis: every node of a service opens one on
// the same Redis and prefix. State changes are Lua scripts, each touching
// one tenant's keys (one hash slot); see the package doc for the layout.
type Queue struct {
	rdb  redis.UniversalClient
	keys keys
	opts Options
	log  *slog.Logger

	ready chan struct{}
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu      sync.Mutex
	leased  map[string]*async.Task     // tasks this queue leased, by id
	claimed map[string]map[string]bool // tenant → ids whose deliveries this node holds
	tenants map[string]bool            // every tenant seen: the upkeep visits them
	lanes   map[string][]string        // tenant → configured functions, sorted
	stats   []async.LaneStats
	closed  bool

	hints    *hinter
	down     atomic.Bool // Redis did not answer the latest upkeep ping
	picked   pick        // Lease's current choice of tenants
	finishes *batcher[finishItem, finishResult]
	enqueues *batcher[enqueueItem, []any]
	gen      atomic.Uint64 // bumped when a tenant may have become ready: picks older than it are stale
}

// Open returns a Queue on rdb. It checks that Redis runs scripts, that
// its maxmemory-policy cannot evict Ferry's keys, and that the prefix
// holds this format version (setting it on an empty prefix); it logs what
// an acknowledged task survives given appendonly/appendfsync. The Queue
// owns rdb and closes it.
func Open(ctx context.Context, rdb redis.UniversalClient, opts Options) (*Queue, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if opts.ClaimTTL <= 0 {
		opts.ClaimTTL = DefaultClaimTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	q := &Queue{
		rdb: rdb, keys: keys{opts.Prefix}, opts: opts, log: opts.Logger,
		ready:   make(chan struct{}, 1),
		leased:  map[string]*async.Task{},
		claimed: map[string]map[string]bool{},
		tenants: map[string]bool{},
		lanes:   map[string][]string{},
	}
	for t := range opts.Tenants {
		q.tenants[t] = true
	}
	for l := range opts.Functions {
		q.tenants[l.Tenant] = true
		q.lanes[l.Tenant] = append(q.lanes[l.Tenant], l.Function)
	}
	for _, fns := range q.lanes {
		sort.Strings(fns)
	}
	if err := q.check(ctx); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	q.stop = stop
	q.hints = newHinter(q)
	q.finishes = newBatcher(q.finishBatch)
	q.enqueues = newBatcher(q.enqueueBatch)
	q.wg.Go(func() { q.hints.run(runCtx) })
	q.wg.Go(func() { q.finishes.run(runCtx) })
	q.wg.Go(func() { q.enqueues.run(runCtx) })
	q.wg.Go(func() { q.listen(runCtx) })
	q.signal() // tasks may be waiting from before this node started
	return q, nil
}

// check verifies at Open what Ferry needs of Redis.
func (q *Queue) check(ctx context.Context) error {
	if err := q.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis store: cannot reach Redis: %w: %w", async.ErrUnavailable, err)
	}
	if err := loadScripts(ctx, q.rdb); err != nil {
		return fmt.Errorf("redis store: Redis refuses Lua scripts (SCRIPT LOAD, EVALSHA), which Ferry needs for every state change: %w", err)
	}
	if err := q.rdb.Time(ctx).Err(); err != nil {
		return fmt.Errorf("redis store: Redis refuses TIME, which Ferry's scripts need: %w", err)
	}
	policy, perr := configGet(ctx, q.rdb, "maxmemory-policy")
	if perr == nil && policy != "noeviction" {
		return fmt.Errorf("redis store: Redis's maxmemory-policy is %q: it may evict Ferry's tasks and leases; set it to noeviction (CONFIG SET maxmemory-policy noeviction)", policy)
	}
	if perr != nil {
		q.log.Warn("redis store: cannot read maxmemory-policy (CONFIG GET refused); make sure it is noeviction", "error", perr)
	}
	q.logDurability(ctx)

	vk := q.keys.version()
	if err := q.rdb.SetNX(ctx, vk, FormatVersion, 0).Err(); err != nil {
		return fmt.Errorf("redis store: write %s: %w: %w", vk, async.ErrUnavailable, err)
	}
	v, err := q.rdb.Get(ctx, vk).Result()
	if err != nil {
		return fmt.Errorf("redis store: read %s: %w: %w", vk, async.ErrUnavailable, err)
	}
	if v != FormatVersion {
		return fmt.Errorf("redis store: prefix %q holds Ferry store format %q, this Ferry reads format %q; use another prefix or the matching Ferry version", q.opts.Prefix, v, FormatVersion)
	}
	return nil
}

// logDurability says what a 202 guarantees with Redis's persistence.
func (q *Queue) logDurability(ctx context.Context) {
	aof, err1 := configGet(ctx, q.rdb, "appendonly")
	fsync, err2 := configGet(ctx, q.rdb, "appendfsync")
	switch {
	case err1 != nil || err2 != nil:
		q.log.Warn("redis store: cannot read appendonly/appendfsync (CONFIG GET refused); an accepted task survives a Redis crash only with appendonly yes and appendfsync always")
	case aof != "yes":
		q.log.Warn("redis store: appendonly is off: accepted tasks since the last snapshot are lost if Redis crashes; set appendonly yes and appendfsync always", "appendonly", aof)
	case fsync == "always":
		q.log.Info("redis store: appendfsync always: an accepted task (202) survives a Redis crash", "appendonly", aof, "appendfsync", fsync)
	case fsync == "everysec":
		q.log.Warn("redis store: appendfsync everysec: up to about a second of accepted tasks may be lost if Redis crashes; set appendfsync always to keep every 202", "appendfsync", fsync)
	default:
		q.log.Warn("redis store: appendfsync "+fsync+": accepted tasks may be lost if Redis crashes; set appendfsync always", "appendfsync", fsync)
	}
}

func configGet(ctx context.Context, rdb redis.UniversalClient, name string) (string, error) {
	m, err := rdb.ConfigGet(ctx, name).Result()
	if err != nil {
		return "", err
	}
	v, ok := m[name]
	if !ok {
		return "", fmt.Errorf("CONFIG GET %s: no value", name)
	}
	return v, nil
}

// Close stops the queue's goroutines and closes the client. Calls after
// Close return async.ErrUnavailable. It is idempotent.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	claimed := q.claimed
	q.claimed = map[string]map[string]bool{}
	q.mu.Unlock()
	q.stop()
	q.wg.Wait()
	// Give the delivery claims back: the next node (or this one, started
	// again) resumes them at once instead of after ClaimTTL.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for tenant, ids := range claimed {
		held := make([]string, 0, len(ids))
		for id := range ids {
			held = append(held, id)
		}
		if err := q.renew(ctx, tenant, held, -time.Second); err != nil {
			q.log.Warn("redis store: cannot give delivery claims back; they lapse after the claim TTL", "error", err)
			break
		}
	}
	return q.rdb.Close()
}

// Ready is signalled (coalesced) when a task may have become leasable on
// any node: a wake-up published through Redis, or this node's own change.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// listen turns wake-ups published by any node into Ready signals; it
// resubscribes after a lost connection.
func (q *Queue) listen(ctx context.Context) {
	for ctx.Err() == nil {
		sub := q.rdb.Subscribe(ctx, q.keys.wake())
		ch := sub.Channel()
		q.signal() // wake-ups may have been missed while unsubscribed
	recv:
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					break recv
				}
				q.gen.Add(1)
				q.signal()
			case <-ctx.Done():
				break recv
			}
		}
		_ = sub.Close()
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// begin refuses calls on a closed queue.
func (q *Queue) begin(op string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return fmt.Errorf("redis store: %s: queue closed: %w", op, async.ErrUnavailable)
	}
	return nil
}

// note remembers a tenant for the upkeep.
func (q *Queue) note(tenant string) {
	q.mu.Lock()
	q.tenants[tenant] = true
	q.mu.Unlock()
}

// skew is the clock shift the scripts apply, in ms (0 in production).
func (q *Queue) skew() int64 {
	if q.opts.Skew == nil {
		return 0
	}
	return q.opts.Skew().Milliseconds()
}

// local converts a Redis time in ms (scripts' now: nowMS) into this
// node's clock.
func (q *Queue) local(ms, nowMS int64) time.Time {
	return q.opts.Clock().Add(time.Duration(ms-nowMS) * time.Millisecond)
}

// unavailable wraps a Redis error: a retry later can help.
func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redis store: %s: %w", op, err)
	}
	if strings.Contains(err.Error(), "OOM command not allowed") {
		return fmt.Errorf("redis store: %s: Redis is at maxmemory: %w: %w", op, async.ErrFull, err)
	}
	return fmt.Errorf("redis store: %s: %w: %w", op, async.ErrUnavailable, err)
}

// msTime converts a stored ms time (0: zero time).
// delayMS is a delay in whole ms for a script, rounded up so that a task is
// never ready before its time (0 for none or a time past).
func delayMS(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func msTime(s string) time.Time {
	ms, _ := strconv.ParseInt(s, 10, 64)
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// numFields is how many hash fields the scripts return with a task (fields()
// in prelude.lua), in order.
const numFields = 11

// decode builds a task from the fields (r p s l e y c u n x v): the record
// overlaid with what the scripts keep in their own fields.
func decode(vals []any) (*async.Task, uint64, error) {
	if len(vals) < numFields {
		return nil, 0, fmt.Errorf("redis store: %d task fields, want %d", len(vals), numFields)
	}
	if vals[0] == nil {
		return nil, 0, nil
	}
	t, err := async.DecodeRecord([]byte(str(vals[0])))
	if err != nil {
		return nil, 0, fmt.Errorf("redis store: %w", err)
	}
	if p := str(vals[1]); p != "" {
		t.Payload = []byte(p)
	}
	t.Status = async.Status(str(vals[2]))
	t.Lease, _ = strconv.ParseUint(str(vals[3]), 10, 64)
	t.LeaseExpiresAt = msTime(str(vals[4]))
	t.ReadyAt = msTime(str(vals[5]))
	t.Recoveries = int(num(vals[6]))
	t.UpdatedAt = msTime(str(vals[7]))
	t.CreatedAt = msTime(str(vals[8]))
	t.FinishedAt = msTime(str(vals[9]))
	if t.Status != async.StatusRunning {
		t.LeaseExpiresAt = time.Time{}
	}
	v, _ := strconv.ParseUint(str(vals[10]), 10, 64)
	return t, v, nil
}

// Get returns the tenant's task, or async.ErrNotFound.
func (q *Queue) Get(ctx context.Context, tenant, id string) (*async.Task, error) {
	t, _, err := q.get(ctx, tenant, id)
	return t, err
}

func (q *Queue) get(ctx context.Context, tenant, id string) (*async.Task, uint64, error) {
	if err := q.begin("get"); err != nil {
		return nil, 0, err
	}
	vals, err := q.rdb.HMGet(ctx, q.keys.task(tenant, id), "r", "p", "s", "l", "e", "y", "c", "u", "n", "x", "v").Result()
	if err != nil {
		return nil, 0, unavailable("get "+id, err)
	}
	t, v, err := decode(vals)
	if err != nil {
		return nil, 0, err
	}
	if t == nil {
		return nil, 0, fmt.Errorf("redis store: get %s: %w", id, async.ErrNotFound)
	}
	return t, v, nil
}

// Stats counts unfinished tasks per lane as the upkeep last saw them (at
// most a second or so old).
func (q *Queue) Stats() []async.LaneStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]async.LaneStats(nil), q.stats...)
}
