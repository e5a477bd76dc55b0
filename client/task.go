package client

import (
	"encoding/json"
	"time"
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
)

// Final reports whether a task in this status is finished: succeeded,
// failed or cancelled.
func (s Status) Final() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled
}

// Task is a task as the API shows it (GET /v1/tasks/{id}).
type Task struct {
	ID       string `json:"id"`
	Function string `json:"function"`
	Status   Status `json:"status"`
	// Attempts counts the attempts with a recorded result.
	Attempts int `json:"attempts"`
	// Replays counts the times the failed task was queued again.
	Replays int `json:"replays,omitempty"`
	// Hops is the hop count the task arrived with.
	Hops int `json:"hops"`
	// ScheduledAt is when a queued task runs next (delay or retry).
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// Output is the backend's response of a succeeded task: its JSON when
	// the body was JSON, else a JSON string.
	Output json.RawMessage `json:"output,omitempty"`
	// Error is why a failed task failed.
	Error *TaskError `json:"error,omitempty"`
	// LastError is the error of the latest failed attempt.
	LastError *TaskError `json:"last_error,omitempty"`
	// Deliveries records the deliveries of the outcome to destinations.
	Deliveries []Delivery `json:"deliveries,omitempty"`

	raw json.RawMessage
}

// UnmarshalJSON decodes the API's task JSON and keeps it for Raw.
func (t *Task) UnmarshalJSON(b []byte) error {
	type plain Task
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*t = Task(p)
	t.raw = append(json.RawMessage(nil), b...)
	return nil
}

// Raw is the task's JSON exactly as the API sent it, fields this package
// does not know included; nil for a Task that was not decoded from the API.
func (t *Task) Raw() json.RawMessage { return t.raw }

// TaskError describes why a task, or its last attempt, failed.
type TaskError struct {
	// Code is a short cause such as "http_503", "timeout", "exit_status"
	// or "loop_detected".
	Code    string `json:"code"`
	Message string `json:"message"`
	// HTTPStatus is the backend's HTTP status of the attempt, if any.
	HTTPStatus int `json:"http_status,omitempty"`
}

// Error implements error.
func (e *TaskError) Error() string { return e.Code + ": " + e.Message }

// Delivery is the state of one outcome delivery to one destination.
type Delivery struct {
	Index int `json:"index"`
	// Destination names it, e.g. "on_success[0]".
	Destination string `json:"destination"`
	// Kind is the sink kind, e.g. "webhook".
	Kind string `json:"kind"`
	// State is "pending", "delivered" or "failed".
	State          string    `json:"state"`
	Attempts       int       `json:"attempts"`
	LastError      string    `json:"last_error,omitempty"`
	FirstAttemptAt time.Time `json:"first_attempt_at,omitzero"`
	NextAttemptAt  time.Time `json:"next_attempt_at,omitzero"`
}

// Page is one page of a task listing.
type Page struct {
	// Tasks are newest first.
	Tasks []*Task `json:"tasks"`
	// NextCursor fetches the next page; "" on the last page.
	NextCursor string `json:"next_cursor"`
}
