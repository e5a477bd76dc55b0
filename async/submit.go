package async

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Enqueuer is what a Submitter needs of the Queue.
type Enqueuer interface {
	Enqueue(ctx context.Context, t *Task, maxQueued int) (*Task, bool, error)
}

// Submission is one task to submit: what the API reads from a request,
// and what a timer trigger makes of a tick.
type Submission struct {
	// ID is the task's id; "" makes a fresh UUIDv7 (the API's ids). A
	// given id must be unused: Enqueue answers ErrConflict otherwise.
	ID               string
	Tenant, Function string
	Payload          []byte
	// ContentType defaults to application/octet-stream.
	ContentType    string
	IdempotencyKey string
	// Delay is how long after submission the task may run.
	Delay time.Duration
	// Hops is the hop count the submission arrived with (loop guard).
	Hops        int
	TraceParent string
	// EventTime is when the event happened (the task's ce-time), when
	// not now: a timer tick's instant. Zero: the submission time.
	EventTime time.Time
}

// SubmitterConfig configures a Submitter.
type SubmitterConfig struct {
	Store Enqueuer
	// MaxQueued returns a tenant's max_queued (<= 0: unlimited). Nil:
	// unlimited.
	MaxQueued func(tenant string) int
	// Admit takes a submission of the tenant's function against their
	// rates: 0 when admitted, else how long until it would be. Nil admits
	// everything.
	Admit func(tenant, function string) time.Duration
	// Now is the node's clock. Defaults to time.Now.
	Now func() time.Time
}

// Submitter stores submissions as queued tasks, the one path every task
// takes into the queue: the tenant's and function's admission rates, the
// tenant's max_queued, idempotency keys. The API submits through it, and
// so do timer triggers.
type Submitter struct {
	cfg SubmitterConfig
}

// NewSubmitter returns a Submitter; see SubmitterConfig for the defaults.
func NewSubmitter(cfg SubmitterConfig) *Submitter {
	if cfg.MaxQueued == nil {
		cfg.MaxQueued = func(string) int { return 0 }
	}
	if cfg.Admit == nil {
		cfg.Admit = func(string, string) time.Duration { return 0 }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Submitter{cfg: cfg}
}

// MaxQueued is the tenant's max_queued (<= 0: unlimited).
func (s *Submitter) MaxQueued(tenant string) int { return s.cfg.MaxQueued(tenant) }

// Submit stores sub durably as a queued task and returns it, with
// created false when sub's idempotency key names a live task (then that
// task, nothing new). Errors: *RateLimitError (over a rate: nothing
// stored, retry after its Wait), *IdempotencyConflictError (the key names
// another function's task), ErrQuotaExceeded (the tenant is at
// max_queued), ErrConflict (sub.ID is in use), ErrUnavailable and ErrFull
// (the store cannot take it now), errTaskID (no id could be made).
func (s *Submitter) Submit(ctx context.Context, sub Submission) (*Task, bool, error) {
	// Refused first: a submission over its rate costs no id and no task.
	if wait := s.cfg.Admit(sub.Tenant, sub.Function); wait > 0 {
		return nil, false, &RateLimitError{Tenant: sub.Tenant, Function: sub.Function, Wait: wait}
	}
	now := s.cfg.Now().UTC()
	id, fresh := sub.ID, false
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", errTaskID, err)
		}
		id, fresh = u.String(), true
	}
	ct := sub.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	t := &Task{
		ID: id, FreshID: fresh, Tenant: sub.Tenant, Function: sub.Function,
		Payload: sub.Payload, ContentType: ct, IdempotencyKey: sub.IdempotencyKey,
		Hops: sub.Hops, TraceParent: sub.TraceParent,
		CreatedAt: now, UpdatedAt: now, ReadyAt: now.Add(sub.Delay),
	}
	if !sub.EventTime.IsZero() {
		t.EventTime = sub.EventTime.UTC()
	}
	got, created, err := s.cfg.Store.Enqueue(ctx, t, s.cfg.MaxQueued(sub.Tenant))
	if err == nil && !created && got.Function != sub.Function {
		err = &IdempotencyConflictError{Key: sub.IdempotencyKey, Function: got.Function}
	}
	if err != nil {
		return nil, false, err
	}
	return got, created, nil
}

// errTaskID: no task id could be made (the random source failed).
var errTaskID = errors.New("cannot make a task id")

// RateLimitError: the submission is over its tenant's or function's rate;
// nothing was stored, and it would be admitted after Wait.
type RateLimitError struct {
	Tenant, Function string
	Wait             time.Duration
}

// Error implements error.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("over the rate limit of tenant %q or function %q; retry after %s", e.Tenant, e.Function, e.Wait.Round(time.Millisecond))
}

// IdempotencyConflictError: the idempotency key names a task of another
// function.
type IdempotencyConflictError struct{ Key, Function string }

// Error implements error.
func (e *IdempotencyConflictError) Error() string {
	return fmt.Sprintf("Idempotency-Key %q was used for function %q", e.Key, e.Function)
}
