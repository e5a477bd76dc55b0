package async

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/ferrydev/ferry/wire"
)

// taskView is the API's JSON form of a task.
type taskView struct {
	ID       string `json:"id"`
	Function string `json:"function"`
	Status   Status `json:"status"`
	Attempts int    `json:"attempts"`
	Replays  int    `json:"replays,omitempty"`
	Hops     int    `json:"hops"`
	// ScheduledAt is when a queued task runs next (delay or retry).
	ScheduledAt *time.Time      `json:"scheduled_at,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	Output      json.RawMessage `json:"output,omitempty"`
	Error       *TaskError      `json:"error,omitempty"`
	LastError   *TaskError      `json:"last_error,omitempty"`
	Deliveries  []Delivery      `json:"deliveries,omitempty"`
	// The payload, only for GET /v1/tasks/{id}?payload=true: as JSON when
	// it is JSON, else in base64.
	ContentType   string          `json:"content_type,omitempty"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadBase64 *string         `json:"payload_base64,omitempty"`
}

// withPayload adds t's payload to the view.
func (v *taskView) withPayload(t *Task) {
	v.ContentType = t.ContentType
	ct, _, _ := strings.Cut(t.ContentType, ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	if (ct == "" || ct == "application/json" || strings.HasSuffix(ct, "+json")) && json.Valid(t.Payload) {
		v.Payload = json.RawMessage(t.Payload)
		return
	}
	b64 := base64.StdEncoding.EncodeToString(t.Payload)
	v.PayloadBase64 = &b64
}

func viewOf(t *Task) taskView {
	v := taskView{
		ID: t.ID, Function: t.Function, Status: t.Status, Attempts: t.Attempts, Replays: t.Replays, Hops: t.Hops,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		Error: t.Error, LastError: t.LastError, Deliveries: t.Deliveries,
	}
	if t.Status == StatusQueued {
		at := t.ReadyAt
		v.ScheduledAt = &at
	}
	if !t.FinishedAt.IsZero() {
		at := t.FinishedAt
		v.FinishedAt = &at
	}
	if t.Status == StatusSucceeded {
		v.Output = wire.OutputJSON(t.Output)
		if v.Output == nil {
			v.Output = json.RawMessage("null")
		}
	}
	return v
}

// WriteMethodNotAllowed answers 405 method_not_allowed to r, with an Allow
// header listing methods.
func WriteMethodNotAllowed(w http.ResponseWriter, r *http.Request, methods ...string) {
	w.Header().Set("Allow", strings.Join(methods, ", "))
	WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
}

// WriteError writes the pinned error body {"error": {"code", "message"}}.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, struct {
		Error body `json:"error"`
	}{body{code, msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}
