package async

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferrydev/ferry/wire"
)

// Queue errors. Callers check them with errors.Is.
var (
	// ErrNotFound: no such task for this tenant (another tenant's task is
	// reported the same way).
	ErrNotFound = errors.New("task not found")
	// ErrConflict: the task is not in a state that allows the operation
	// (cancelling a running or finished task).
	ErrConflict = errors.New("task state conflict")
	// ErrLeaseLost: the completion carries a fencing token that is no longer
	// current (the lease expired and the task was leased again, or it
	// finished). The caller must drop its result.
	ErrLeaseLost = errors.New("lease lost")
	// ErrQuotaExceeded: the tenant already has max_queued unfinished tasks.
	// Retrying later can help.
	ErrQuotaExceeded = errors.New("tenant queue quota exceeded")
	// ErrBadCursor: the list cursor is malformed or from another query.
	ErrBadCursor = errors.New("bad cursor")
	// ErrDamaged: a stored task record cannot be decoded (disk damage).
	// Stores answer reads of such a task with DamagedTask.
	ErrDamaged = errors.New("damaged task record")
	// ErrUnavailable: the store cannot take writes now (closed, full, I/O
	// error). Retrying later can help.
	ErrUnavailable = errors.New("store unavailable")
	// ErrFull: the store is out of space (a Redis at maxmemory); it wraps
	// ErrUnavailable. Nothing was stored; retrying once space is freed
	// can help.
	ErrFull = fmt.Errorf("store full: %w", ErrUnavailable)
)

// Completion is the final result of a leased task.
type Completion struct {
	// Status is StatusSucceeded or StatusFailed.
	Status     Status
	Output     []byte
	OutputType string
	// StatusCode is the backend's HTTP status, when it speaks HTTP.
	StatusCode int
	// Error is set when Status is StatusFailed.
	Error *TaskError
	// Attempted reports whether this lease invoked the backend, and so
	// counts as an attempt (a task refused by the loop guard is not).
	Attempted bool
	// Deliveries are the outcome deliveries to record, all pending, in the
	// same write as the status.
	Deliveries []Delivery
}

// ApplyTo records c on a leased task t finished at now: its final status,
// output and error, one more attempt when c.Attempted, and its deliveries
// (numbered in order). Every store applies a completion with it, so a task
// reads the same whichever store finished it.
func (c Completion) ApplyTo(t *Task, now time.Time) {
	t.Status = c.Status
	if c.Attempted {
		t.Attempts++
	}
	t.Output = append([]byte(nil), c.Output...)
	t.OutputType = c.OutputType
	t.StatusCode = c.StatusCode
	t.Error = nil
	if c.Status == StatusFailed {
		t.Error, t.LastError = c.Error, c.Error
	}
	t.FinishedAt, t.UpdatedAt = now, now
	t.LeaseExpiresAt = time.Time{}
	t.Deliveries = append([]Delivery(nil), c.Deliveries...)
	for i := range t.Deliveries {
		t.Deliveries[i].Index = i
	}
}

// LeaseRequest is what a Lease may take: data, not a callback, so that a
// store can evaluate it where the tasks are (a Redis script takes it as
// arguments) without calling back into the dispatcher under its own lock.
type LeaseRequest struct {
	// TTL is how long the lease lasts; it must be positive.
	TTL time.Duration
	// BlockedTenants and BlockedLanes may not run now: they are at their
	// concurrency limit or out of rate tokens. Lease skips their tasks.
	// They name the few that are held back (usually none), not the many
	// that may run.
	BlockedTenants []string
	BlockedLanes   []wire.Lane
	// Room, when set, bounds how many tasks of a lane one LeaseMany may
	// take (-1: no bound): the slots the caller has free for it. Stores
	// that count limits themselves (the Redis store) may ignore it.
	Room func(wire.Lane) int
}

// Blocks reports whether req holds lane back. It scans the lists, which
// are short; stores that test many lanes against a long list index it
// first.
func (req *LeaseRequest) Blocks(lane wire.Lane) bool {
	for _, t := range req.BlockedTenants {
		if t == lane.Tenant {
			return true
		}
	}
	for _, l := range req.BlockedLanes {
		if l == lane {
			return true
		}
	}
	return false
}

// Upkeeper is implemented by stores that need background work while the
// service runs (expiring leases, sweeping finished tasks past retention);
// the server runs it beside the dispatcher when the store has it.
type Upkeeper interface {
	// Run does the upkeep until ctx ends.
	Run(ctx context.Context) error
}

// BatchLeaser is implemented by stores that lease several tasks in one
// call (the Redis store: one round trip fills n free workers).
type BatchLeaser interface {
	// LeaseMany is Lease for up to n tasks.
	LeaseMany(ctx context.Context, req LeaseRequest, n int) ([]*Task, time.Time, error)
}

// Extender is implemented by stores whose leases a long attempt renews
// (a heartbeat) instead of taking one as long as the longest attempt: a
// killed node's tasks then come back after a short lease, not after the
// function's timeout.
type Extender interface {
	// Extend renews the lease for ttl more. ErrLeaseLost when it expired
	// and the task was taken over.
	Extend(ctx context.Context, id string, token uint64, ttl time.Duration) error
}

// EnqueueResult is what EnqueueBatch did with one task: stored (Created),
// answered with the existing task of its idempotency key, or refused (Err).
type EnqueueResult struct {
	Task    *Task
	Created bool
	Err     error
}

// ListOptions selects tasks for List. Tasks are listed newest first.
type ListOptions struct {
	Tenant   string // required
	Function string // optional filter
	Status   Status // optional filter
	Limit    int    // 1..1000; 0 means 100
	Cursor   string // from a previous List; "" starts at the newest task
}

// LaneStats counts a lane's unfinished tasks.
type LaneStats struct {
	Lane    wire.Lane
	Queued  int // including delayed tasks and tasks waiting for a retry
	Running int
}

// Queue is Ferry's durable task store. The embedded implementation keeps
// tasks in Pebble on local disk; a Redis implementation for multi-node
// deployments fits the same contract: leases expire and carry fencing
// tokens, Lease takes data and is fair across tenants (the fairness
// cursor lives in the store), Complete returns what it stored, and no
// method scans every task on the hot path (Enqueue, Lease, Complete,
// Retry, Release, Get). Stores with background work also implement
// Upkeeper.
type Queue interface {
	// Enqueue stores t durably (fsynced, possibly together with concurrent
	// calls) before it returns. t.ID, Tenant, Function, CreatedAt and
	// ReadyAt must be set; Status is set to queued. When t has an
	// IdempotencyKey already used by the tenant within the idempotency
	// window, nothing is stored and the existing task is returned with
	// created == false. ErrQuotaExceeded when the tenant already has
	// maxQueued unfinished tasks (maxQueued <= 0: no limit).
	Enqueue(ctx context.Context, t *Task, maxQueued int) (got *Task, created bool, err error)
	// EnqueueBatch is Enqueue for tasks of one tenant, stored with one
	// durable write, with a result per task in order: a task past the quota
	// fails alone (ErrQuotaExceeded in its result); an idempotency key used
	// twice in the batch makes the later task a duplicate of the earlier.
	// err is for the batch as a whole, and then nothing is stored.
	EnqueueBatch(ctx context.Context, ts []*Task, maxQueued int) ([]EnqueueResult, error)

	// Lease takes the next ready task (ReadyAt <= now) of a lane that req
	// does not block, visiting tenants round-robin from a cursor the store
	// keeps and a tenant's lanes round-robin, so one tenant's backlog never
	// delays another's. The task becomes running with a new fencing token
	// (Task.Lease) and a lease that expires after req.TTL; an expired lease
	// puts the task back in the queue without spending an attempt. When no
	// task can be leased, Lease returns nil and the earliest future ReadyAt
	// of any queued task (zero if none).
	Lease(ctx context.Context, req LeaseRequest) (t *Task, next time.Time, err error)
	// Ready is signalled (never blocking the sender, coalesced) whenever a
	// task may have become leasable: enqueued, released, retried or
	// recovered. Delayed tasks are not signalled when their time comes:
	// callers wait for the time Lease returned.
	Ready() <-chan struct{}
	// Complete records the final outcome of a leased task, with its pending
	// deliveries, durably (c.ApplyTo is how the record changes) and returns
	// the task as stored. ErrLeaseLost when token is not the current lease.
	Complete(ctx context.Context, id string, token uint64, c Completion) (*Task, error)
	// Retry records a failed attempt (Attempts+1, LastError = err) and
	// queues the task again, ready at at. ErrLeaseLost as for Complete.
	Retry(ctx context.Context, id string, token uint64, at time.Time, err *TaskError) error
	// Release puts a leased task back in the queue, ready now, without
	// spending an attempt (used on shutdown). ErrLeaseLost as for Complete.
	Release(ctx context.Context, id string, token uint64) error

	// Get returns the tenant's task, or ErrNotFound.
	Get(ctx context.Context, tenant, id string) (*Task, error)
	// Cancel cancels a queued task (delayed and waiting-for-retry included)
	// and returns it; ErrConflict (with the task) when it is running or
	// finished, ErrNotFound when it does not exist for this tenant.
	Cancel(ctx context.Context, tenant, id string) (*Task, error)
	// Replay queues a failed task again, ready now, with a fresh retry
	// budget (Attempts 0, max_age counted from now) and returns it;
	// ErrConflict (with the task) when it has not failed or its outcome
	// deliveries are still in progress, ErrNotFound when it does not exist
	// for this tenant.
	Replay(ctx context.Context, tenant, id string) (*Task, error)
	// List returns one page of the tenant's tasks and the cursor of the
	// next page ("" at the end). ErrBadCursor for a malformed cursor.
	List(ctx context.Context, opts ListOptions) (tasks []*Task, next string, err error)
	// Stats counts unfinished tasks per lane, from memory.
	Stats() []LaneStats

	// UpdateDelivery records the progress of one outcome delivery
	// (d.Index) of the tenant's task. Once no delivery of a finished task is pending, the task
	// expires after the store's retention.
	UpdateDelivery(ctx context.Context, tenant, id string, d Delivery) error
	// PendingDeliveries returns the finished tasks that still have pending
	// deliveries; called once at start-up to resume them.
	PendingDeliveries(ctx context.Context) ([]*Task, error)

	// Close flushes and closes the store.
	Close() error
}
