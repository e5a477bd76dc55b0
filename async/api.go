package async

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ferrydev/ferry/wire"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// API request limits.
const (
	// MaxDelay bounds Ferry-Delay.
	MaxDelay = 30 * 24 * time.Hour
	// MaxIdempotencyKey bounds the length of an Idempotency-Key.
	MaxIdempotencyKey = 255
)

// TaskStore is what the API needs of the Queue.
type TaskStore interface {
	Enqueue(ctx context.Context, t *Task, maxQueued int) (*Task, bool, error)
	EnqueueBatch(ctx context.Context, ts []*Task, maxQueued int) ([]EnqueueResult, error)
	Get(ctx context.Context, tenant, id string) (*Task, error)
	Cancel(ctx context.Context, tenant, id string) (*Task, error)
	Replay(ctx context.Context, tenant, id string) (*Task, error)
	List(ctx context.Context, opts ListOptions) ([]*Task, string, error)
}

// APIConfig configures the API.
type APIConfig struct {
	Store TaskStore
	Auth  *Auth
	// Functions reports whether the tenant has the function.
	Functions func(tenant, function string) bool
	// MaxQueued returns a tenant's max_queued (<= 0: unlimited).
	MaxQueued func(tenant string) int
	// Admit takes a submission of the tenant's function against their
	// rates: it returns 0 when admitted, else how long until it would be
	// (the answer is then 429 with Retry-After). Nil admits everything.
	Admit func(tenant, function string) time.Duration
	// MaxPayload bounds a task's body in bytes. Defaults to 256 KiB.
	MaxPayload int64
	// Tracer starts a span per submission; the task carries its
	// traceparent. Defaults to a no-op tracer (incoming traceparents are
	// still kept).
	Tracer trace.Tracer
	// Registerer receives the API's metrics (nil: not registered).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// API serves HTTP API v1: submit, get, cancel and list tasks.
type API struct {
	cfg     APIConfig
	sub     *Submitter
	submits *prometheus.CounterVec
	prop    propagation.TraceContext
}

// NewAPI returns the API handler set; mount it with Register.
func NewAPI(cfg APIConfig) *API {
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 256 << 10
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("ferry")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxQueued == nil {
		cfg.MaxQueued = func(string) int { return 0 }
	}
	if cfg.Admit == nil {
		cfg.Admit = func(string, string) time.Duration { return 0 }
	}
	sub := NewSubmitter(SubmitterConfig{Store: cfg.Store, MaxQueued: cfg.MaxQueued, Admit: cfg.Admit, Now: cfg.Now})
	a := &API{cfg: cfg, sub: sub, submits: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_api_submissions_total",
		Help: "Task submissions by tenant and result (accepted, duplicate, rejected code).",
	}, []string{"tenant", "result"})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(a.submits)
	}
	return a
}

// Register mounts the API's routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("/v1/functions/{fn}/tasks", a.authed(a.submit, http.MethodPost))
	mux.HandleFunc("/v1/functions/{fn}/tasks/batch", a.authed(a.submitBatch, http.MethodPost))
	mux.HandleFunc("/v1/tasks/{id}", a.authed(a.task, http.MethodGet, http.MethodDelete))
	mux.HandleFunc("/v1/tasks/{id}/replay", a.authed(a.replay, http.MethodPost))
	mux.HandleFunc("/v1/tasks", a.authed(a.list, http.MethodGet))
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

type tenantHandler func(w http.ResponseWriter, r *http.Request, tenant string)

// authed checks the method, then the bearer key.
func (a *API) authed(h tenantHandler, methods ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		allowed := false
		for _, m := range methods {
			allowed = allowed || r.Method == m
		}
		if !allowed {
			WriteMethodNotAllowed(w, r, methods...)
			return
		}
		id := a.cfg.Auth.Identify(r)
		tenant := id.Tenant
		switch {
		case !id.Known():
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or unknown API key: send Authorization: Bearer <api-key>")
			return
		case id.Admin:
			tenant = r.Header.Get(TenantHeader)
			if tenant == "" {
				WriteError(w, http.StatusBadRequest, "tenant_required", "an admin key acts for one tenant here: name it with the "+TenantHeader+" header")
				return
			}
			if !a.cfg.Auth.HasTenant(tenant) {
				WriteError(w, http.StatusBadRequest, "unknown_tenant", fmt.Sprintf("the %s header names no configured tenant: %q", TenantHeader, tenant))
				return
			}
		}
		h(w, r, tenant)
	}
}

func (a *API) submit(w http.ResponseWriter, r *http.Request, tenant string) {
	fn := r.PathValue("fn")
	if !a.cfg.Functions(tenant, fn) {
		a.reject(w, tenant, http.StatusNotFound, "function_not_found", fmt.Sprintf("function %q not found", fn))
		return
	}
	if r.ContentLength > a.cfg.MaxPayload {
		a.reject(w, tenant, http.StatusRequestEntityTooLarge, "payload_too_large",
			fmt.Sprintf("payload of %d bytes is over the limit of %d bytes", r.ContentLength, a.cfg.MaxPayload))
		return
	}
	delay, err := parseDelay("Ferry-Delay", r.Header.Get("Ferry-Delay"))
	if err != nil {
		a.reject(w, tenant, http.StatusBadRequest, "bad_delay", err.Error())
		return
	}
	hops, err := wire.ParseHops(r.Header.Get(wire.HeaderHops))
	if err != nil {
		a.reject(w, tenant, http.StatusBadRequest, "bad_hops", err.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > MaxIdempotencyKey {
		a.reject(w, tenant, http.StatusBadRequest, "bad_idempotency_key",
			fmt.Sprintf("Idempotency-Key is longer than %d bytes", MaxIdempotencyKey))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxPayload))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.reject(w, tenant, http.StatusRequestEntityTooLarge, "payload_too_large",
				fmt.Sprintf("payload is over the limit of %d bytes", a.cfg.MaxPayload))
			return
		}
		a.reject(w, tenant, http.StatusBadRequest, "bad_body", "cannot read the request body: "+err.Error())
		return
	}

	_, span, traceParent := a.startSpan(r, "ferry.submit")
	defer span.End()
	spanLane(span, tenant, fn)

	got, created, err := a.sub.Submit(r.Context(), Submission{
		Tenant: tenant, Function: fn, Payload: body, ContentType: r.Header.Get("Content-Type"),
		IdempotencyKey: key, Delay: delay, Hops: hops, TraceParent: traceParent,
	})
	var limited *RateLimitError
	switch {
	case errors.As(err, &limited):
		spanRefused(span, "rate_limited")
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(limited.Wait.Seconds()))))
		a.reject(w, tenant, http.StatusTooManyRequests, "rate_limited", limited.Error())
		return
	case err != nil:
		rf := a.enqueueError(tenant, fn, err)
		spanRefused(span, rf.code)
		a.refuse(w, tenant, rf)
		return
	}
	spanSubmitted(span, got, created)
	result := "accepted"
	if !created {
		result = "duplicate"
		w.Header().Set("Idempotent-Replayed", "true")
	}
	a.submits.WithLabelValues(tenant, result).Inc()
	w.Header().Set("Location", "/v1/tasks/"+got.ID)
	writeJSON(w, http.StatusAccepted, viewOf(got))
}

// startSpan starts the submission's span from the request's trace context
// and returns the traceparent its tasks carry.
func (a *API) startSpan(r *http.Request, name string) (context.Context, trace.Span, string) {
	if c, ok := a.cfg.Tracer.(childTracer); ok {
		// A tracer that records nothing: only the traceparent is made.
		return r.Context(), noSpan, c.ChildTraceParent(r.Header.Get(wire.HeaderTraceParent))
	}
	ctx, span := a.cfg.Tracer.Start(a.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header)), name,
		trace.WithSpanKind(trace.SpanKindServer))
	carrier := propagation.MapCarrier{}
	a.prop.Inject(ctx, carrier)
	traceParent := carrier[wire.HeaderTraceParent]
	if traceParent == "" { // no tracer: keep a valid incoming traceparent as is
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			a.prop.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
			traceParent = carrier[wire.HeaderTraceParent]
		}
	}
	return ctx, span, traceParent
}

// childTracer is a tracer that records nothing and makes a child
// traceparent without a span (dispatcher.PropagationTracer).
type childTracer interface {
	ChildTraceParent(parent string) string
}

var noSpan = trace.SpanFromContext(context.Background())

// refusal is how the API answers a task the store refused.
type refusal struct {
	status     int
	code, msg  string
	retryAfter string // seconds; "" when retrying later cannot help
}

// enqueueError maps an Enqueue error to its refusal.
func (a *API) enqueueError(tenant, fn string, err error) refusal {
	var idem *IdempotencyConflictError
	switch {
	case errors.As(err, &idem):
		return refusal{http.StatusConflict, "idempotency_conflict", idem.Error(), ""}
	case errors.Is(err, errTaskID):
		return refusal{http.StatusServiceUnavailable, "unavailable", err.Error(), ""}
	case errors.Is(err, ErrQuotaExceeded):
		return refusal{http.StatusTooManyRequests, "quota_exceeded",
			fmt.Sprintf("tenant %q has reached max_queued (%d unfinished tasks); retry later", tenant, a.cfg.MaxQueued(tenant)), "1"}
	case errors.Is(err, ErrConflict):
		return refusal{http.StatusConflict, "conflict", err.Error(), ""}
	case errors.Is(err, ErrFull):
		a.cfg.Logger.Error("enqueue refused: the task store is full", "tenant", tenant, "function", fn, "error", err)
		return refusal{http.StatusInsufficientStorage, "store_full", "the task store is full; retry later", "5"}
	default:
		a.cfg.Logger.Error("enqueue failed", "tenant", tenant, "function", fn, "error", err)
		return refusal{http.StatusServiceUnavailable, "unavailable", "the task store cannot take tasks now; retry later", "1"}
	}
}

// refuse answers a whole request with rf.
func (a *API) refuse(w http.ResponseWriter, tenant string, rf refusal) {
	if rf.retryAfter != "" {
		w.Header().Set("Retry-After", rf.retryAfter)
	}
	a.reject(w, tenant, rf.status, rf.code, rf.msg)
}

func (a *API) reject(w http.ResponseWriter, tenant string, status int, code, msg string) {
	a.submits.WithLabelValues(tenant, code).Inc()
	WriteError(w, status, code, msg)
}

func (a *API) task(w http.ResponseWriter, r *http.Request, tenant string) {
	id := r.PathValue("id")
	withPayload := false
	if v := r.URL.Query().Get("payload"); v != "" && r.Method == http.MethodGet {
		b, err := strconv.ParseBool(v)
		if err != nil {
			WriteError(w, http.StatusBadRequest, "bad_payload", fmt.Sprintf("payload %q must be true or false", v))
			return
		}
		withPayload = b
	}
	var (
		t   *Task
		err error
	)
	if r.Method == http.MethodDelete {
		t, err = a.cfg.Store.Cancel(r.Context(), tenant, id)
	} else {
		t, err = a.cfg.Store.Get(r.Context(), tenant, id)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		WriteError(w, http.StatusNotFound, "task_not_found", fmt.Sprintf("task %q not found", id))
	case errors.Is(err, ErrConflict):
		WriteError(w, http.StatusConflict, "conflict",
			fmt.Sprintf("task %q is %s: only queued tasks can be cancelled", id, t.Status))
	case err != nil:
		a.unavailable(w, err)
	default:
		v := viewOf(t)
		if withPayload && t.Status != StatusDamaged {
			v.withPayload(t)
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// replay queues a failed task again with a fresh retry budget.
func (a *API) replay(w http.ResponseWriter, r *http.Request, tenant string) {
	id := r.PathValue("id")
	t, err := a.cfg.Store.Replay(r.Context(), tenant, id)
	switch {
	case errors.Is(err, ErrNotFound):
		WriteError(w, http.StatusNotFound, "task_not_found", fmt.Sprintf("task %q not found", id))
	case errors.Is(err, ErrConflict):
		msg := fmt.Sprintf("task %q is %s: only failed tasks can be replayed", id, t.Status)
		if t.Status == StatusFailed {
			msg = fmt.Sprintf("task %q: its outcome deliveries are still in progress; replay it once they are done", id)
		}
		WriteError(w, http.StatusConflict, "conflict", msg)
	case err != nil:
		a.unavailable(w, err)
	default:
		a.cfg.Logger.Info("task replayed", "task", id, "tenant", tenant, "function", t.Function, "replays", t.Replays)
		writeJSON(w, http.StatusOK, viewOf(t))
	}
}

func (a *API) list(w http.ResponseWriter, r *http.Request, tenant string) {
	q := r.URL.Query()
	opts := ListOptions{Tenant: tenant, Function: q.Get("function"), Cursor: q.Get("cursor"), Limit: 100}
	if s := q.Get("status"); s != "" {
		st, err := ParseStatus(s)
		if err != nil {
			WriteError(w, http.StatusBadRequest, "bad_status", err.Error())
			return
		}
		opts.Status = st
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			WriteError(w, http.StatusBadRequest, "bad_limit", fmt.Sprintf("limit %q must be an integer from 1 to 1000", s))
			return
		}
		opts.Limit = n
	}
	tasks, next, err := a.cfg.Store.List(r.Context(), opts)
	switch {
	case errors.Is(err, ErrBadCursor):
		WriteError(w, http.StatusBadRequest, "bad_cursor", "cursor is malformed or belongs to another query; start again without it")
		return
	case err != nil:
		a.unavailable(w, err)
		return
	}
	views := make([]taskView, len(tasks))
	for i, t := range tasks {
		views[i] = viewOf(t)
	}
	writeJSON(w, http.StatusOK, struct {
		Tasks      []taskView `json:"tasks"`
		NextCursor string     `json:"next_cursor"`
	}{views, next})
}

func (a *API) unavailable(w http.ResponseWriter, err error) {
	a.cfg.Logger.Error("store error", "error", err)
	w.Header().Set("Retry-After", "1")
	WriteError(w, http.StatusServiceUnavailable, "unavailable", "the task store is unavailable; retry later")
}

// parseDelay parses a delay named name (for the message).
func parseDelay(name, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxDelay {
		return 0, fmt.Errorf("%s %q must be a duration from 0s to 720h (30 days), e.g. 30s or 5m", name, v)
	}
	return d, nil
}
