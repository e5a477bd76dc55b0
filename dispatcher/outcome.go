package dispatcher

import (
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// Ending is how one task, message or batch ended: what its outcome record
// (NewOutcome) says. Tasks fill it from their stored record (TaskEnding);
// pollers from the message and its last attempt.
type Ending struct {
	// ID is the task id, the message id or the batch's (BatchID).
	ID     string
	Lane   wire.Lane
	Source string
	// Trigger names the trigger of a message (empty for a task).
	Trigger string
	// Hops is the hop count the event arrived with: the outcome carries
	// Hops+1.
	Hops        int
	TraceParent string
	// Attempts counts the backend attempts made.
	Attempts int
	// CreatedAt is when the task was accepted or the message produced; At
	// is when it ended.
	CreatedAt, At time.Time
	// Failed is true for a failure, with Error its final error and
	// Payload the request payload (sent with failures only).
	Failed  bool
	Error   *wire.OutcomeError
	Payload []byte
	// Output is the backend's output of a success.
	Output []byte
	// LastStatus is the backend's HTTP status of the last attempt, and
	// LastError the error of the last failed attempt, if any.
	LastStatus int
	LastError  *wire.OutcomeError
}

// NewOutcome builds the destination record of an ending: the one builder
// of outcomes, for tasks, messages and batches alike.
func NewOutcome(e Ending) *wire.Outcome {
	o := &wire.Outcome{
		Type: wire.TypeSucceeded, ID: e.ID, Tenant: e.Lane.Tenant, Function: e.Lane.Function,
		Status: string(async.StatusSucceeded), Attempts: e.Attempts,
		Source: e.Source, Hops: e.Hops + 1, Time: e.At, TraceParent: e.TraceParent,
		RequestContext: &wire.RequestContext{
			RequestID: e.ID, Condition: wire.ConditionSuccess, Attempts: e.Attempts,
			LastStatus: e.LastStatus, LastError: e.LastError, Trigger: e.Trigger, CreatedAt: e.CreatedAt,
		},
	}
	if !e.Failed {
		o.Output = wire.OutputJSON(e.Output)
		return o
	}
	o.Type, o.Status = wire.TypeFailed, string(async.StatusFailed)
	o.Error = e.Error
	if o.Error != nil {
		o.RequestContext.Condition = o.Error.Code
	}
	o.RequestPayload = wire.OutputJSON(e.Payload)
	return o
}

// TaskEnding is the ending of a finished task, as stored.
func TaskEnding(t *async.Task) Ending {
	return Ending{
		ID: t.ID, Lane: t.Lane(), Source: TaskSource(t.Lane()), Hops: t.Hops, TraceParent: t.TraceParent,
		Attempts: t.Attempts, CreatedAt: t.CreatedAt, At: t.FinishedAt,
		Failed: t.Status != async.StatusSucceeded, Error: OutcomeError(t.Error), Payload: t.Payload,
		Output: t.Output, LastStatus: t.StatusCode, LastError: OutcomeError(t.LastError),
	}
}

// OutcomeError is a task error as an outcome record carries it (nil for
// nil).
func OutcomeError(e *async.TaskError) *wire.OutcomeError {
	if e == nil {
		return nil
	}
	return &wire.OutcomeError{Code: e.Code, Message: e.Message, HTTPStatus: e.HTTPStatus}
}

// AttemptError is a failed attempt as an outcome record carries it.
func AttemptError(c Classified) *wire.OutcomeError {
	return &wire.OutcomeError{Code: c.Code, Message: c.Message, HTTPStatus: c.StatusCode}
}
