package async

import (
	"context"
	"errors"
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
	// ErrUnavailable: the store cannot take writes now (closed, full, I/O
	// error). Retrying later can help.
	ErrUnavailable = errors.New("store unavailable")
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
// tokens, Lease is fair across tenants, and no method scans every task on
// the hot path (Enqueue, Lease, Complete, Retry, Release, Get).
type Queue interface {
	// Enqueue stores t durably (fsynced, possibly together with concurrent
	// calls) before it returns. t.ID, Tenant, Function, CreatedAt and
	// ReadyAt must be set; Status is set to queued. When t has an
	// IdempotencyKey already used by the tenant within the idempotency
	// window, nothing is stored and the existing task is returned with
	// created == false. ErrQuotaExceeded when the tenant already has
	// maxQueued unfinished tasks (maxQueued <= 0: no limit).
	Enqueue(ctx context.Context, t *Task, maxQueued int) (got *Task, created bool, err error)

	// Lease takes the next ready task (ReadyAt <= now) from a lane that
	// allow accepts, visiting tenants round-robin and a tenant's lanes
	// round-robin, so one tenant's backlog never delays another's. The task
	// becomes running with a new fencing token (Task.Lease) and a lease that
	// expires after ttl; an expired lease puts the task back in the queue
	// without spending an attempt. When no task can be leased, Lease returns
	// nil and the earliest future ReadyAt of any queued task (zero if none).
	Lease(ctx context.Context, allow func(wire.Lane) bool, ttl time.Duration) (t *Task, next time.Time, err error)
	// Ready is signalled (never blocking the sender, coalesced) whenever a
	// task may have become leasable: enqueued, released, retried or
	// recovered. Delayed tasks are not signalled when their time comes:
	// callers wait for the time Lease returned.
	Ready() <-chan struct{}
	// Complete records the final outcome of a leased task, with its pending
	// deliveries, durably. ErrLeaseLost when token is not the current lease.
	Complete(ctx context.Context, id string, token uint64, c Completion) error
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
	// (d.Index). Once no delivery of a finished task is pending, the task
	// expires after the store's retention.
	UpdateDelivery(ctx context.Context, id string, d Delivery) error
	// PendingDeliveries returns the finished tasks that still have pending
	// deliveries; called once at start-up to resume them.
	PendingDeliveries(ctx context.Context) ([]*Task, error)

	// Close flushes and closes the store.
	Close() error
}
