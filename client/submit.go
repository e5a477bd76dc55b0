package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// MaxBatch is the most items one batch request carries; SubmitBatch splits
// longer lists into requests of MaxBatch items.
const MaxBatch = 1000

// SubmitOptions are the optional parts of a submission.
type SubmitOptions struct {
	// IdempotencyKey makes the submission idempotent for 24 h: the same key
	// again gives the same task, and no second one. It also lets Submit
	// retry answers whose outcome is unknown (see Submit).
	IdempotencyKey string
	// Delay runs the task no sooner than Delay from now (at most 720 h).
	Delay time.Duration
	// ContentType is the payload's media type, kept with the task and sent
	// to the backend. Defaults to application/json when the payload is
	// valid JSON, else application/octet-stream.
	ContentType string
}

// Submit queues one task of the function fn with payload as its body and
// returns it as stored (status queued, or the earlier task of the same
// IdempotencyKey). It returns after Ferry stored the task durably.
//
// Retries (see WithSubmitRetries): an answer that refused the task before
// storing it, 429 (rate limit, queue quota) or 507 (store full), is sent
// again after its Retry-After. An answer that leaves it unknown whether the
// task was stored, a 503 or a network error, is sent again only when
// IdempotencyKey is set: Ferry then gives the first task back rather than
// storing a second one; without a key such an error is returned, and
// resubmitting it may run the task twice. A Retry-After longer than the
// configured maximum wait is not waited for: the *Error is returned.
func (c *Client) Submit(ctx context.Context, fn string, payload []byte, opts SubmitOptions) (*Task, error) {
	if opts.Delay < 0 {
		return nil, fmt.Errorf("ferry: submit: Delay %s is negative", opts.Delay)
	}
	h := http.Header{}
	ct := opts.ContentType
	if ct == "" {
		ct = "application/octet-stream"
		if json.Valid(payload) {
			ct = "application/json"
		}
	}
	h.Set("Content-Type", ct)
	if opts.IdempotencyKey != "" {
		h.Set("Idempotency-Key", opts.IdempotencyKey)
	}
	if opts.Delay > 0 {
		h.Set("Ferry-Delay", opts.Delay.String())
	}
	if payload == nil {
		payload = []byte{}
	}
	req := request{method: http.MethodPost, path: "/v1/functions/" + url.PathEscape(fn) + "/tasks", body: payload, header: h}
	var t Task
	if err := c.withRetries(ctx, opts.IdempotencyKey != "", func() error { return c.do(ctx, req, &t) }); err != nil {
		return nil, err
	}
	return &t, nil
}

// BatchItem is one task of a batch submission. Its JSON form is the batch
// endpoint's item: {"payload": <JSON>} or {"payload_base64": "..."}, with
// optional "idempotency_key" and "delay" (a Go duration such as "30s").
type BatchItem struct {
	// Payload is a JSON payload (content type application/json).
	Payload json.RawMessage
	// Data is a payload of any bytes (content type
	// application/octet-stream). Set Payload or Data, not both.
	Data []byte
	// IdempotencyKey: see SubmitOptions.
	IdempotencyKey string
	// Delay: see SubmitOptions.
	Delay time.Duration
}

type wireItem struct {
	Payload        json.RawMessage `json:"payload,omitempty"`
	PayloadBase64  *string         `json:"payload_base64,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Delay          string          `json:"delay,omitempty"`
}

// MarshalJSON writes the batch endpoint's item.
func (it BatchItem) MarshalJSON() ([]byte, error) {
	if err := it.check(); err != nil {
		return nil, err
	}
	w := wireItem{Payload: it.Payload, IdempotencyKey: it.IdempotencyKey}
	if it.Data != nil {
		s := base64.StdEncoding.EncodeToString(it.Data)
		w.PayloadBase64 = &s
	}
	if it.Delay > 0 {
		w.Delay = it.Delay.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the batch endpoint's item and checks it as the
// endpoint does: exactly one of payload and payload_base64, standard
// base64, a delay from 0s to 720h, no unknown fields.
func (it *BatchItem) UnmarshalJSON(b []byte) error {
	var w wireItem
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf(`a batch item is {"payload": <JSON>} or {"payload_base64": "..."} with optional "idempotency_key" and "delay": %w`, err)
	}
	*it = BatchItem{Payload: w.Payload, IdempotencyKey: w.IdempotencyKey}
	if w.PayloadBase64 != nil {
		data, err := base64.StdEncoding.DecodeString(*w.PayloadBase64)
		if err != nil {
			return fmt.Errorf(`"payload_base64" is not standard base64: %w`, err)
		}
		it.Data = append([]byte{}, data...)
	}
	if w.Delay != "" {
		d, err := time.ParseDuration(w.Delay)
		if err != nil {
			return fmt.Errorf(`"delay" %q is not a duration such as 30s or 5m`, w.Delay)
		}
		it.Delay = d
	}
	return it.check()
}

func (it BatchItem) check() error {
	switch {
	case it.Payload != nil && it.Data != nil:
		return errors.New(`give "payload" or "payload_base64", not both`)
	case it.Payload == nil && it.Data == nil:
		return errors.New(`a task needs "payload" (any JSON value) or "payload_base64"`)
	case it.Payload != nil && !json.Valid(it.Payload):
		return errors.New(`"payload" is not valid JSON`)
	case it.Delay < 0:
		return fmt.Errorf(`"delay" %s is negative`, it.Delay)
	}
	return nil
}

// BatchResult is one item's part of a batch answer: its task, or why it
// was refused.
type BatchResult struct {
	// Task is the stored task (nil when refused).
	Task *Task
	// Err is why the item was refused (nil when stored): its Status is 0,
	// its Code e.g. "rate_limited", "quota_exceeded" or
	// "idempotency_conflict".
	Err *Error
}

// SubmitBatch queues items as tasks of the function fn through the batch
// endpoint, MaxBatch items per request, and returns one result per item in
// the order given. Each request is retried as Submit's is; it counts as
// idempotent when every item in it has an IdempotencyKey.
//
// When a request is refused as a whole (malformed, unknown function, or
// retries exhausted), SubmitBatch stops and returns the results of the
// requests before it with the error: the items from len(results) on were
// not stored by that request and were not sent after it.
func (c *Client) SubmitBatch(ctx context.Context, fn string, items []BatchItem) ([]BatchResult, error) {
	results := make([]BatchResult, 0, len(items))
	for start := 0; start < len(items); start += MaxBatch {
		chunk := items[start:min(start+MaxBatch, len(items))]
		got, err := c.submitChunk(ctx, fn, chunk)
		if err != nil {
			if len(items) > MaxBatch {
				err = fmt.Errorf("items %d to %d: %w", start, start+len(chunk)-1, err)
			}
			return results, err
		}
		results = append(results, got...)
	}
	return results, nil
}

func (c *Client) submitChunk(ctx context.Context, fn string, chunk []BatchItem) ([]BatchResult, error) {
	idempotent := true
	for i, it := range chunk {
		if err := it.check(); err != nil {
			return nil, fmt.Errorf("ferry: submit batch: item %d: %w", i, err)
		}
		idempotent = idempotent && it.IdempotencyKey != ""
	}
	body, err := json.Marshal(struct {
		Tasks []BatchItem `json:"tasks"`
	}{chunk})
	if err != nil {
		return nil, fmt.Errorf("ferry: submit batch: %w", err)
	}
	req := request{
		method: http.MethodPost, path: "/v1/functions/" + url.PathEscape(fn) + "/tasks/batch", body: body,
		header: http.Header{"Content-Type": {"application/json"}},
	}
	var answer struct {
		Tasks []json.RawMessage `json:"tasks"`
	}
	if err := c.withRetries(ctx, idempotent, func() error { return c.do(ctx, req, &answer) }); err != nil {
		return nil, err
	}
	if len(answer.Tasks) != len(chunk) {
		return nil, fmt.Errorf("ferry: submit batch: %d answers for %d items (a retry with idempotency keys is safe)", len(answer.Tasks), len(chunk))
	}
	results := make([]BatchResult, len(chunk))
	for i, raw := range answer.Tasks {
		var probe struct {
			ID    string `json:"id"`
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("ferry: submit batch: answer %d: %w", i, err)
		}
		if probe.ID == "" {
			e := &Error{Code: "unknown", Message: "the answer has neither a task nor an error"}
			if probe.Error != nil {
				e.Code, e.Message = probe.Error.Code, probe.Error.Message
			}
			results[i].Err = e
			continue
		}
		var t Task
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("ferry: submit batch: answer %d: %w", i, err)
		}
		results[i].Task = &t
	}
	return results, nil
}

// withRetries runs send, and again while its error allows (see Submit).
func (c *Client) withRetries(ctx context.Context, idempotent bool, send func() error) error {
	for attempt := 0; ; attempt++ {
		err := send()
		if err == nil || attempt >= c.cfg.retries || ctx.Err() != nil {
			return err
		}
		wait, ok := retryWait(err, idempotent)
		if !ok || wait > c.cfg.maxRetryWait {
			return err
		}
		if serr := c.cfg.sleep(ctx, wait); serr != nil {
			return err
		}
	}
}

// retryWait says whether a submission that failed with err may be sent
// again, and after how long.
func retryWait(err error, idempotent bool) (time.Duration, bool) {
	var e *Error
	if !errors.As(err, &e) {
		// Network error or unreadable answer: the task may be stored.
		return time.Second, idempotent
	}
	wait := e.RetryAfter
	if wait <= 0 {
		wait = time.Second
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusInsufficientStorage:
		return wait, true // refused before anything was stored
	case http.StatusServiceUnavailable:
		return wait, idempotent // the store may have written it
	}
	return 0, false
}
