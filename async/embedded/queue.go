package embedded

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// Defaults for Options.
const (
	RetentionDefault      = 24 * time.Hour
	IdempotencyTTLDefault = 24 * time.Hour
)

// Options configures Open. The zero value is valid.
type Options struct {
	// Retention is how long a finished task is kept after FinishedAt, or
	// after its last delivery settled when that is later. Tasks with pending
	// deliveries never expire. Defaults to RetentionDefault (24h).
	Retention time.Duration
	// IdempotencyTTL is how long an idempotency key maps to its task.
	// Defaults to IdempotencyTTLDefault (24h).
	IdempotencyTTL time.Duration
	// Now is the clock. Defaults to time.Now; tests inject a fake clock.
	Now func() time.Time
	// Logger receives recoveries, upkeep errors and Pebble's own messages.
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Reserve is the free space kept on the data directory's filesystem
	// (see Reserve); the zero value is the default reserve.
	Reserve Reserve
	// StrictWAL refuses to open a store whose write-ahead log hides
	// writes behind a damaged record (see checkWAL); otherwise they are
	// reported at ERROR and the store opens with what could be replayed.
	StrictWAL bool
	// OnFatal is called, once, with an error the store cannot recover
	// from (Pebble's fatal errors, a failed WAL write or sync): Pebble's
	// state is then undefined, and OnFatal must not return. Defaults to
	// logging err at ERROR and exiting with status 1.
	OnFatal func(err error)
}

func (o Options) withDefaults() Options {
	if o.Retention <= 0 {
		o.Retention = RetentionDefault
	}
	if o.IdempotencyTTL <= 0 {
		o.IdempotencyTTL = IdempotencyTTLDefault
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnFatal == nil {
		log := o.Logger
		o.OnFatal = func(err error) {
			log.Error("the task store failed and Ferry cannot go on: exiting", "err", err)
			os.Exit(1)
		}
	}
	return o
}

// Queue is the embedded, single-node implementation of async.Queue, stored
// in Pebble. All methods are safe for concurrent use. Open it with Open, run
// Run in the background, and Close it when done.
type Queue struct {
	db    *pebble.DB
	opts  Options
	log   *slog.Logger
	ready chan struct{} // Ready(): capacity 1, coalesced
	wake  chan struct{} // tells Run that the earliest lease expiry moved earlier
	done  chan struct{} // closed by Close

	// closeMu is held shared by every operation and exclusively by Close,
	// so Pebble is never used after it is closed.
	closeMu sync.RWMutex
	closed  bool

	space   space
	damaged damagedSet
	fatal   sync.Once // OnFatal is called once; other callers wait in it

	// stripes serialise the read-modify-write of one task record (its
	// commit included), so writes of one task reach Pebble in the order
	// they were decided. Lock order: stripe, then mu; stripe, then idemMu.
	stripes [256]sync.Mutex
	seed    maphash.Seed

	mu      sync.Mutex
	idx     *index
	pending map[string]struct{} // finished tasks with pending deliveries

	idemMu sync.Mutex
	idem   map[idemMapKey]*idemEntry
}

var _ async.Queue = (*Queue)(nil)

// Pebble's sizing for a task store: a task is written three or four times
// within seconds (enqueue, lease, outcome, deliveries) and read by id
// between, so a memtable that holds the recent ones serves those reads
// and absorbs the rewrites before they are flushed and compacted; bloom
// filters let a read by id skip the levels without the key.
const (
	memTableSize = 32 << 20
	// blockCacheSize is small because records are: the recent ones are
	// in the memtable, and Open's scan of every record (which goes through
	// the cache) would otherwise leave a larger cache full, resident.
	blockCacheSize  = 32 << 20
	bloomBitsPerKey = 10
)

func pebbleOptions(opts Options) *pebble.Options {
	po := &pebble.Options{
		Logger: pebbleLogger{opts.Logger, opts.OnFatal}, Cache: pebble.NewCache(blockCacheSize), MemTableSize: memTableSize,
	}
	log := opts.Logger
	// Background work (flushes, compactions) retries by itself: its
	// errors are reported, not fatal; a slow disk is worth a warning.
	po.EventListener = &pebble.EventListener{
		BackgroundError: func(err error) { log.Error("embedded: pebble background error (it retries)", "err", err) },
		DiskSlow: func(info pebble.DiskSlowInfo) {
			log.Warn("embedded: the disk is slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration.String())
		},
	}
	po.Levels = make([]pebble.LevelOptions, 7)
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
	}
	return po.EnsureDefaults()
}

// Open opens (creating if needed) the queue stored in the directory path.
// Pebble locks the directory, so one process owns it: every task found
// running belongs to a dead process and is queued again at once
// (Recoveries+1, Attempts unchanged). Open scans all tasks once to rebuild
// the in-memory scheduling index.
func Open(path string, opts Options) (*Queue, error) {
	opts = opts.withDefaults()
	if err := checkDir(path); err != nil {
		return nil, err
	}
	if err := checkWAL(path, opts.Logger, opts.StrictWAL); err != nil {
		return nil, err
	}
	db, err := openPebble(path, opts)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		db:      db,
		space:   space{path: path, reserve: opts.Reserve, now: time.Now},
		opts:    opts,
		log:     opts.Logger,
		ready:   make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		seed:    maphash.MakeSeed(),
		idx:     newIndex(),
		pending: map[string]struct{}{},
		idem:    map[idemMapKey]*idemEntry{},
	}
	if err := q.load(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return q, nil
}

// load rebuilds the in-memory state from one scan of the tasks and one of
// the idempotency keys, and requeues the tasks a dead process had leased.
func (q *Queue) load() error {
	now := q.now()
	// loaded is what scheduling needs of an unfinished task: only that is
	// kept while the scan goes on, not the decoded record.
	type loaded struct {
		created, ready int64
		id             string
		lane           wire.Lane
		token          uint64
	}
	var unfinished []loaded
	recovery := q.db.NewBatch()
	defer recovery.Close()
	recovered := 0
	unmarked, err := q.checkFormat()
	if err != nil {
		return err
	}
	mig := &migration{q: q}
	defer mig.close()
	lanes := map[wire.Lane]wire.Lane{}
	var damaged map[string]struct{} // ids of undecodable records

	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTask}, UpperBound: []byte{prefixTask + 1}})
	if err != nil {
		return fmt.Errorf("embedded: open: scan tasks: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		t, legacy, err := decodeStored(it.Value())
		if errors.Is(err, async.ErrRecordVersion) {
			return errors.Join(fmt.Errorf("embedded: open: task %s: %w: the directory was written by another version of Ferry", it.Key()[1:], err), it.Close())
		}
		if err != nil {
			id := string(it.Key()[1:])
			q.log.Error("embedded: a task record cannot be decoded: the task is reported as damaged and never run", "task", id, "err", err)
			if damaged == nil {
				damaged = map[string]struct{}{}
			}
			damaged[id] = struct{}{}
			continue
		}
		if legacy {
			if err := mig.add(t); err != nil {
				return errors.Join(err, it.Close())
			}
		}
		switch {
		case t.Status.Final():
			if t.HasPendingDeliveries() {
				q.pending[t.ID] = struct{}{}
			}
		case t.Status == async.StatusRunning:
			t.Status = async.StatusQueued
			t.Recoveries++
			t.LeaseExpiresAt = time.Time{}
			t.UpdatedAt = now
			if err := putRecord(recovery, t); err != nil {
				return errors.Join(fmt.Errorf("embedded: open: %w", err), it.Close())
			}
			recovered++
			fallthrough
		default:
			ln, ok := lanes[t.Lane()] // one copy of each lane's names
			if !ok {
				ln = t.Lane()
				lanes[ln] = ln
			}
			unfinished = append(unfinished, loaded{t.CreatedAt.UnixNano(), t.ReadyAt.UnixNano(), t.ID, ln, t.Lease})
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("embedded: open: scan tasks: %w", err)
	}
	if len(damaged) > 0 {
		if err := q.findDamaged(damaged); err != nil {
			return err
		}
	}
	if err := mig.finish(unmarked); err != nil {
		return err
	}
	if recovered > 0 {
		if err := recovery.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("embedded: open: requeue running tasks: %w", err)
		}
		q.log.Info("embedded: requeued tasks leased by a previous process", "tasks", recovered)
	}
	// Enqueue order breaks ReadyAt ties; creation order is the best proxy.
	slices.SortFunc(unfinished, func(a, b loaded) int {
		if c := cmp.Compare(a.created, b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for _, u := range unfinished {
		q.idx.add(u.id, u.lane, time.Unix(0, u.ready), u.token)
	}
	if len(unfinished) > 0 {
		q.signal()
	}
	if err := q.loadIdem(now); err != nil {
		return err
	}
	if len(unfinished) >= bigLoad {
		// The scan decoded every record once: hand that garbage back to the
		// OS now rather than keep it resident until the scavenger does.
		unfinished = nil
		debug.FreeOSMemory()
	}
	return nil
}

// bigLoad is the number of unfinished tasks from which Open returns the
// memory its scan used to the OS at once.
const bigLoad = 100_000

// Close stops accepting calls (they return async.ErrUnavailable), waits for
// the calls in flight, flushes (unless below the reserve) and closes
// Pebble, and stops Run. It is idempotent.
func (q *Queue) Close() error {
	q.closeMu.Lock()
	defer q.closeMu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	close(q.done)
	if q.space.check() {
		// Below the reserve a flush (a new table of up to the memtable's
		// size) may not fit, and Pebble would retry it for ever: the WAL
		// holds everything, so the next Open replays it instead.
		return q.db.Close()
	}
	return errors.Join(q.db.Flush(), q.db.Close())
}

// Ready is signalled, without blocking and coalesced (capacity 1), when a
// task is enqueued, released, retried to a time already due, or recovered.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Stats counts the unfinished tasks of each lane, from memory, sorted by lane.
func (q *Queue) Stats() []async.LaneStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.idx.stats()
}

// Get returns the tenant's task, or async.ErrNotFound (also for another
// tenant's task). One Pebble read.
func (q *Queue) Get(ctx context.Context, tenant, id string) (*async.Task, error) {
	if err := q.begin("get"); err != nil {
		return nil, err
	}
	defer q.end()
	t, err := q.ownTask(tenant, id)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("embedded: get %s: %w", id, async.ErrNotFound)
	}
	return t, nil
}

// begin admits one call unless the queue is closed; end must follow.
func (q *Queue) begin(op string) error {
	q.closeMu.RLock()
	if q.closed {
		q.closeMu.RUnlock()
		return fmt.Errorf("embedded: %s: queue closed: %w", op, async.ErrUnavailable)
	}
	return nil
}

func (q *Queue) end() { q.closeMu.RUnlock() }

func (q *Queue) now() time.Time { return q.opts.Now() }

// stripe returns the lock serialising writes of task id.
func (q *Queue) stripe(id string) *sync.Mutex {
	return &q.stripes[q.stripeIndex(id)]
}

// stripeIndex is the index of id's stripe.
func (q *Queue) stripeIndex(id string) int {
	return int(maphash.String(q.seed, id) % uint64(len(q.stripes)))
}

// signal wakes a Ready waiter without blocking.
func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// signalWake tells Run to re-arm its reaper timer.
func (q *Queue) signalWake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// setJSON adds key = JSON(v) to b.
func setJSON(b *pebble.Batch, key []byte, v any) error {
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Set(key, val, nil)
}

// commit applies b. A failed commit is the end of the store: Pebble's WAL
// errors are sticky (the commit pipeline is left broken, and a write
// error inside it panics), so it goes to OnFatal rather than back to a
// caller that would retry against a wedged store.
func (q *Queue) commit(b *pebble.Batch, opts *pebble.WriteOptions, op string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			q.die(fmt.Errorf("embedded: %s: pebble panicked: %v", op, r))
		}
	}()
	if err := b.Commit(opts); err != nil {
		if errors.Is(err, pebble.ErrClosed) {
			return fmt.Errorf("embedded: %s: %w: %w", op, async.ErrUnavailable, err)
		}
		q.die(fmt.Errorf("embedded: %s: write to %s failed: %w", op, q.space.path, err))
	}
	return nil
}

// die hands a fatal store error to OnFatal (once; it does not return).
func (q *Queue) die(err error) {
	q.fatal.Do(func() { q.opts.OnFatal(err) })
	select {} // OnFatal ends the process; never go on with a broken store
}

// pebbleLogger sends Pebble's messages to slog, and its fatal errors to
// OnFatal (Pebble expects Fatalf not to return).
type pebbleLogger struct {
	l     *slog.Logger
	fatal func(error)
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	if !strings.HasPrefix(err.Error(), "pebble") {
		err = fmt.Errorf("pebble: %w", err)
	}
	p.fatal(err)
	select {}
}
