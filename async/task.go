// Package async holds Ferry's asynchronous task model: the Task record, the
// durable Queue that stores tasks, and the HTTP API v1 through which tenants
// submit, inspect, list and cancel them.
package async

import (
	"fmt"
	"time"

	"github.com/ferrydev/ferry/wire"
)

// Status is the lifecycle state of a task.
type Status string

// Task statuses. A task waiting for its next retry is StatusQueued with
// Attempts > 0.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	// StatusDamaged is a task whose stored record cannot be decoded
	// (disk damage): the store reports it (DamagedTask) rather than fail
	// the read or the list page it is on. It is never run.
	StatusDamaged Status = "damaged"
)

// Final reports whether s is a terminal status.
func (s Status) Final() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled || s == StatusDamaged
}

// ParseStatus parses a status name as used by the API.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusQueued, StatusRunning, StatusSucceeded, StatusFailed, StatusCancelled, StatusDamaged:
		return st, nil
	}
	return "", fmt.Errorf("unknown status %q (want queued, running, succeeded, failed, cancelled or damaged)", s)
}

// CodeDamaged is the error code of a damaged task.
const CodeDamaged = "damaged"

// DamagedTask is what a store returns for the tenant's task id whose
// record cannot be decoded: what the store still knows of it (function,
// creation time; zero when unknown), status damaged, and cause as its
// error.
func DamagedTask(id, tenant, function string, created time.Time, cause error) *Task {
	return &Task{
		ID: id, Tenant: tenant, Function: function, Status: StatusDamaged,
		CreatedAt: created, UpdatedAt: created,
		Error: &TaskError{Code: CodeDamaged, Message: "the task's stored record is damaged and cannot be read: " + cause.Error()},
	}
}

// TaskError describes why a task failed, or why its last attempt failed.
type TaskError struct {
	// Code is one of the Code* constants, or a backend-specific code such
	// as "http_503", "timeout" or "exit_status".
	Code string `json:"code"`
	// Message is a human-readable explanation.
	Message string `json:"message"`
	// HTTPStatus is the backend's HTTP status of the last attempt, if any.
	HTTPStatus int `json:"http_status,omitempty"`
}

// Error implements error.
func (e *TaskError) Error() string { return e.Code + ": " + e.Message }

// DeliveryState is the state of one outcome delivery to one destination.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed" // retries ran out; recorded, never dropped silently
)

// Delivery records the delivery of a task's outcome to one destination. The
// outcome is rebuilt from the task, so a restart resumes pending deliveries.
type Delivery struct {
	// Index identifies the delivery within Task.Deliveries (0-based).
	Index int `json:"index"`
	// Destination names the destination, e.g. "on_success[0]".
	Destination string `json:"destination"`
	// Kind is the sink kind, e.g. "webhook" or "log".
	Kind           string        `json:"kind"`
	State          DeliveryState `json:"state"`
	Attempts       int           `json:"attempts"`
	LastError      string        `json:"last_error,omitempty"`
	FirstAttemptAt time.Time     `json:"first_attempt_at,omitzero"`
	NextAttemptAt  time.Time     `json:"next_attempt_at,omitzero"`
}

// Task is one asynchronous invocation request and its state. The Queue owns
// persisted tasks: callers get copies and change them only through Queue
// methods.
type Task struct {
	ID string `json:"id"`
	// FreshID says ID was just made as a random UUID (the API's UUIDv7s),
	// so no task can have it: Enqueue then skips the read that checks it is
	// unused. It is not stored.
	FreshID        bool   `json:"-"`
	Tenant         string `json:"tenant"`
	Function       string `json:"function"`
	Payload        []byte `json:"payload,omitempty"`
	ContentType    string `json:"content_type,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Hops is the hop count the task arrived with (Ferry-Hops); the backend
	// request and every destination message carry Hops+1.
	Hops int `json:"hops"`
	// TraceParent is the W3C traceparent the task carries to its backend.
	TraceParent string `json:"traceparent,omitempty"`

	Status Status `json:"status"`
	// Attempts counts attempts with a recorded result. An attempt cut short
	// by a crash or a shutdown is not counted.
	Attempts int `json:"attempts"`
	// Recoveries counts leases lost to a crash or expiry after which the task
	// was queued again without spending an attempt.
	Recoveries int `json:"recoveries,omitempty"`
	// Replays counts the times the failed task was queued again with a
	// fresh retry budget (POST /v1/tasks/{id}/replay); ReplayedAt is the
	// latest, from which retry.max_age then counts.
	Replays    int       `json:"replays,omitempty"`
	ReplayedAt time.Time `json:"replayed_at,omitzero"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// EventTime is when the event the task stands for happened, when that
	// is not when it was submitted: a timer tick's scheduled instant. It
	// is the invocation's ce-time (EventAt); zero for API submissions.
	EventTime time.Time `json:"event_time,omitzero"`
	// ReadyAt is when a queued task may run next (delay or retry backoff).
	ReadyAt time.Time `json:"ready_at"`
	// Lease is the fencing token of the latest lease; every lease increments
	// it, and completions carrying an older token are refused.
	Lease          uint64    `json:"lease"`
	LeaseExpiresAt time.Time `json:"lease_expires_at,omitzero"`
	FinishedAt     time.Time `json:"finished_at,omitzero"`

	Output     []byte `json:"output,omitempty"`
	OutputType string `json:"output_type,omitempty"`
	// StatusCode is the backend's HTTP status of the final attempt, when it
	// speaks HTTP.
	StatusCode int        `json:"status_code,omitempty"`
	Error      *TaskError `json:"error,omitempty"`
	// LastError is the error of the latest failed attempt, kept while the
	// task waits for a retry and after it finishes.
	LastError  *TaskError `json:"last_error,omitempty"`
	Deliveries []Delivery `json:"deliveries,omitempty"`
}

// AgeFrom is when the task's retry.max_age starts: its creation, or its
// latest replay.
func (t *Task) AgeFrom() time.Time {
	if t.ReplayedAt.After(t.CreatedAt) {
		return t.ReplayedAt
	}
	return t.CreatedAt
}

// EventAt is when the task's event happened (its ce-time): EventTime when
// set, else CreatedAt.
func (t *Task) EventAt() time.Time {
	if !t.EventTime.IsZero() {
		return t.EventTime
	}
	return t.CreatedAt
}

// Lane returns the task's lane.
func (t *Task) Lane() wire.Lane { return wire.Lane{Tenant: t.Tenant, Function: t.Function} }

// Clone returns a deep copy of t.
func (t *Task) Clone() *Task {
	c := *t
	c.Payload = append([]byte(nil), t.Payload...)
	c.Output = append([]byte(nil), t.Output...)
	if t.Error != nil {
		e := *t.Error
		c.Error = &e
	}
	if t.LastError != nil {
		e := *t.LastError
		c.LastError = &e
	}
	c.Deliveries = append([]Delivery(nil), t.Deliveries...)
	return &c
}

// HasPendingDeliveries reports whether any of t's outcome deliveries is
// still pending.
func (t *Task) HasPendingDeliveries() bool {
	for _, d := range t.Deliveries {
		if d.State == DeliveryPending {
			return true
		}
	}
	return false
}

// CheckNew reports the fields a new task must have and lacks: ID, Tenant,
// Function, CreatedAt and ReadyAt (every store checks them at Enqueue).
func (t *Task) CheckNew() error {
	var missing []string
	if t.ID == "" {
		missing = append(missing, "ID")
	}
	if t.Tenant == "" {
		missing = append(missing, "Tenant")
	}
	if t.Function == "" {
		missing = append(missing, "Function")
	}
	if t.CreatedAt.IsZero() {
		missing = append(missing, "CreatedAt")
	}
	if t.ReadyAt.IsZero() {
		missing = append(missing, "ReadyAt")
	}
	if len(missing) > 0 {
		return fmt.Errorf("task fields required but not set: %v", missing)
	}
	return nil
}
