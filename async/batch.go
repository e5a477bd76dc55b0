package async

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/wire"
)

// Batch submit limits.
const (
	// MaxBatch is the most tasks one batch submit carries.
	MaxBatch = 1000
	// MinBatchBody is the least request body a batch submit may have,
	// whatever max_payload is; the limit is max(MinBatchBody, 4 ×
	// max_payload).
	MinBatchBody = 32 << 20
)

// batchItem is one task of a batch submit.
type batchItem struct {
	Payload        json.RawMessage `json:"payload"`
	PayloadBase64  *string         `json:"payload_base64"`
	IdempotencyKey string          `json:"idempotency_key"`
	Delay          string          `json:"delay"`
}

// batchAnswer is one task's part of the answer: the task, or an error.
type batchAnswer struct {
	*taskView
	Error *errorBody `json:"error,omitempty"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// submitBatch stores up to MaxBatch tasks of one function with one durable
// write: POST /v1/functions/{fn}/tasks/batch. Ferry-Hops applies to every
// task; each task starts its own trace, linked to the request's span. A malformed request (body,
// an item, too many items) is refused whole, before anything is stored;
// after that each task has its own answer (the task, or its error: rate,
// quota, idempotency conflict), in the order given.
func (a *API) submitBatch(w http.ResponseWriter, r *http.Request, tenant string) {
	fn := r.PathValue("fn")
	if !a.cfg.Functions(tenant, fn) {
		a.reject(w, tenant, http.StatusNotFound, "function_not_found", fmt.Sprintf("function %q not found", fn))
		return
	}
	hops, err := wire.ParseHops(r.Header.Get(wire.HeaderHops))
	if err != nil {
		a.reject(w, tenant, http.StatusBadRequest, "bad_hops", err.Error())
		return
	}
	items, status, code, msg := a.readBatch(w, r)
	if status != 0 {
		a.reject(w, tenant, status, code, msg)
		return
	}
	ctx, span, _ := a.startSpan(r, "ferry.submit_batch")
	defer span.End()
	spanLane(span, tenant, fn, attrBatchCount.Int(len(items)))
	link := trace.WithLinks(trace.LinkFromContext(ctx))

	now := a.cfg.Now().UTC()
	answers := make([]batchAnswer, len(items))
	tasks := make([]*Task, 0, len(items))
	at := make([]int, 0, len(items)) // tasks[k] answers answers[at[k]]
	for i, it := range items {
		if wait := a.cfg.Admit(tenant, fn); wait > 0 {
			answers[i].Error = &errorBody{"rate_limited", (&RateLimitError{Tenant: tenant, Function: fn, Wait: wait}).Error()}
			a.submits.WithLabelValues(tenant, "rate_limited").Inc()
			continue
		}
		id, err := uuid.NewV7()
		if err != nil {
			a.reject(w, tenant, http.StatusServiceUnavailable, "unavailable", "cannot make a task id: "+err.Error())
			return
		}
		// Each task starts a trace of its own, linked to the request's:
		// one trace holding a whole batch of one function would look like
		// a loop to the loop guard's trace count.
		traceParent := a.newTrace(ctx, link, tenant, fn, id.String())
		tasks = append(tasks, &Task{
			ID: id.String(), FreshID: true, Tenant: tenant, Function: fn,
			Payload: it.payload, ContentType: it.contentType, IdempotencyKey: it.IdempotencyKey,
			Hops: hops, TraceParent: traceParent,
			CreatedAt: now, UpdatedAt: now, ReadyAt: now.Add(it.delay),
		})
		at = append(at, i)
	}
	if len(tasks) > 0 {
		res, err := a.cfg.Store.EnqueueBatch(r.Context(), tasks, a.cfg.MaxQueued(tenant))
		if err != nil {
			a.refuse(w, tenant, a.enqueueError(tenant, fn, err))
			return
		}
		for k, rs := range res {
			i := at[k]
			if rs.Err == nil && !rs.Created && rs.Task.Function != fn {
				rs.Err = &IdempotencyConflictError{Key: tasks[k].IdempotencyKey, Function: rs.Task.Function}
			}
			if rs.Err != nil {
				rf := a.enqueueError(tenant, fn, rs.Err)
				answers[i].Error = &errorBody{rf.code, rf.msg}
				a.submits.WithLabelValues(tenant, rf.code).Inc()
				continue
			}
			v := viewOf(rs.Task)
			answers[i].taskView = &v
			result := "accepted"
			if !rs.Created {
				result = "duplicate"
			}
			a.submits.WithLabelValues(tenant, result).Inc()
		}
	}
	writeJSON(w, http.StatusAccepted, struct {
		Tasks []batchAnswer `json:"tasks"`
	}{answers})
}

// newTrace starts a task's own trace, linked to the request's span, with
// its ferry.submit span, and returns its traceparent.
func (a *API) newTrace(ctx context.Context, link trace.SpanStartOption, tenant, fn, id string) string {
	if c, ok := a.cfg.Tracer.(childTracer); ok {
		return c.ChildTraceParent("")
	}
	_, ts := a.cfg.Tracer.Start(ctx, "ferry.submit", trace.WithNewRoot(), link, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attrTenant.String(tenant), attrFunction.String(fn), attrTaskID.String(id)))
	defer ts.End()
	carrier := propagation.MapCarrier{}
	a.prop.Inject(trace.ContextWithSpan(context.Background(), ts), carrier)
	return carrier[wire.HeaderTraceParent]
}

// parsedItem is a batch item checked and decoded.
type parsedItem struct {
	batchItem
	payload     []byte
	contentType string
	delay       time.Duration
}

// readBatch reads and checks the whole request; a non-zero status refuses
// it with code and message.
func (a *API) readBatch(w http.ResponseWriter, r *http.Request) ([]parsedItem, int, string, string) {
	limit := max(MinBatchBody, 4*a.cfg.MaxPayload)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, "payload_too_large",
				fmt.Sprintf("the batch is over the limit of %d bytes; send it in smaller batches", limit)
		}
		return nil, http.StatusBadRequest, "bad_body", "cannot read the request body: " + err.Error()
	}
	var req struct {
		Tasks []batchItem `json:"tasks"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, http.StatusBadRequest, "bad_body", `the body must be {"tasks": [{"payload": <JSON>} | {"payload_base64": "..."}, ...]}: ` + err.Error()
	}
	if dec.More() {
		return nil, http.StatusBadRequest, "bad_body", "the body holds more than one JSON value"
	}
	switch {
	case len(req.Tasks) == 0:
		return nil, http.StatusBadRequest, "bad_body", `"tasks" is missing or empty: send 1 to 1000 tasks`
	case len(req.Tasks) > MaxBatch:
		return nil, http.StatusBadRequest, "batch_too_large",
			fmt.Sprintf("%d tasks in one batch; at most %d", len(req.Tasks), MaxBatch)
	}
	items := make([]parsedItem, len(req.Tasks))
	for i, it := range req.Tasks {
		p, status, code, msg := a.parseItem(it)
		if status != 0 {
			return nil, status, code, "tasks[" + strconv.Itoa(i) + "]: " + msg
		}
		items[i] = p
	}
	return items, 0, "", ""
}

// parseItem checks one batch item.
func (a *API) parseItem(it batchItem) (parsedItem, int, string, string) {
	p := parsedItem{batchItem: it}
	switch {
	case it.Payload != nil && it.PayloadBase64 != nil:
		return p, http.StatusBadRequest, "bad_body", `give "payload" or "payload_base64", not both`
	case it.PayloadBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*it.PayloadBase64)
		if err != nil {
			return p, http.StatusBadRequest, "bad_body", `"payload_base64" is not standard base64: ` + err.Error()
		}
		p.payload, p.contentType = b, "application/octet-stream"
	case it.Payload != nil:
		p.payload, p.contentType = []byte(it.Payload), "application/json"
	default:
		return p, http.StatusBadRequest, "bad_body", `a task needs "payload" (any JSON value) or "payload_base64"`
	}
	if int64(len(p.payload)) > a.cfg.MaxPayload {
		return p, http.StatusRequestEntityTooLarge, "payload_too_large",
			fmt.Sprintf("payload of %d bytes is over the limit of %d bytes", len(p.payload), a.cfg.MaxPayload)
	}
	if len(it.IdempotencyKey) > MaxIdempotencyKey {
		return p, http.StatusBadRequest, "bad_idempotency_key",
			fmt.Sprintf("idempotency_key is longer than %d bytes", MaxIdempotencyKey)
	}
	d, err := parseDelay("delay", it.Delay)
	if err != nil {
		return p, http.StatusBadRequest, "bad_delay", err.Error()
	}
	p.delay = d
	return p, 0, "", ""
}
