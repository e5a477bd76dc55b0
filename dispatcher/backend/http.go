// Package backend holds the execution backends a function can be bound to:
// HTTP (a function URL spoken to in CloudEvents binary mode) and Exec (a
// local process fed the payload on stdin, killed with its whole process
// group on timeout). Both implement dispatcher.Backend and classify their
// failures with dispatcher.Permanent and dispatcher.Retryable.
package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	cebinding "github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/redact"
	"github.com/ferrydev/ferry/wire"
)

// Defaults and limits shared by the backends.
const (
	// DefaultTimeout bounds one attempt when a config leaves Timeout zero.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxConns is HTTPConfig.MaxConns when left zero.
	DefaultMaxConns = 64
	// MaxOutput is the largest output (response body or stdout) a backend
	// accepts; a larger one fails permanently with code "output_too_large".
	MaxOutput = 1 << 20
	// DefaultContentType is the content type of a payload that has none.
	DefaultContentType = "application/octet-stream"
	// HeaderAttempt carries the 1-based attempt number to the function.
	HeaderAttempt = "Ferry-Attempt"
	// DefaultEventType is the ce-type of an invocation without a Type.
	DefaultEventType = "dev.ferry.invocation"

	errorExcerpt = 512      // bytes of a failed response kept in the error
	drainLimit   = 64 << 10 // bytes read from a response before closing it
)

// HTTPConfig configures an HTTP backend.
type HTTPConfig struct {
	// URL is the function URL (http or https); required.
	URL string
	// Timeout bounds one attempt, including reading the response.
	// Defaults to DefaultTimeout (30s).
	Timeout time.Duration
	// Headers are added to every request. They override message headers
	// of the same name and may not use reserved names (ce-*, content-type,
	// content-length, ferry-*, traceparent, host, hop-by-hop headers).
	Headers map[string]string
	// MaxConns is the number of idle keep-alive connections kept to the
	// function's host (Transport.MaxIdleConnsPerHost). Defaults to
	// DefaultMaxConns (64). Ignored when Client is set.
	MaxConns int
	// Client replaces the dedicated client. It is copied and its
	// CheckRedirect replaced so that redirects are never followed.
	Client *http.Client
}

// HTTP invokes a function over HTTP: one POST per attempt, the event in
// CloudEvents 1.0 binary mode. It is safe for concurrent use.
type HTTP struct {
	url     string
	timeout time.Duration
	headers http.Header
	client  *http.Client
}

// NewHTTP validates cfg and returns an HTTP backend with its own transport
// (keep-alive, no redirects followed).
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("http backend: URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("http backend: URL %q: want an absolute http or https URL", cfg.URL)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("http backend: Timeout %s is negative", cfg.Timeout)
	}
	if cfg.MaxConns < 0 {
		return nil, fmt.Errorf("http backend: MaxConns %d is negative", cfg.MaxConns)
	}
	headers := make(http.Header, len(cfg.Headers))
	for k, v := range cfg.Headers {
		if reservedHeader(k) {
			return nil, fmt.Errorf("http backend: Headers: %q is reserved", k)
		}
		if !validHeader(k, v) {
			return nil, fmt.Errorf("http backend: Headers: %q: invalid name or value", k)
		}
		headers.Set(k, v)
	}
	h := &HTTP{url: u.String(), timeout: cfg.Timeout, headers: headers}
	if h.timeout == 0 {
		h.timeout = DefaultTimeout
	}
	if cfg.Client != nil {
		c := *cfg.Client
		h.client = &c
	} else {
		maxConns := cfg.MaxConns
		if maxConns == 0 {
			maxConns = DefaultMaxConns
		}
		h.client = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   10 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          maxConns,
			MaxIdleConnsPerHost:   maxConns,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}}
	}
	h.client.CheckRedirect = noRedirects
	return h, nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Invoke sends inv to the function and classifies the answer: 2xx is a
// Result; 408, 429 and 5xx, timeouts and connection errors are retryable
// (Retry-After honoured); other statuses are permanent. A ctx cancelled by
// the caller is returned wrapped, unclassified.
func (h *HTTP) Invoke(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
	actx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()

	req, err := h.newRequest(actx, inv)
	if err != nil {
		return nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		// The URL may carry a token: the error is kept with the task.
		return nil, h.transportError(ctx, actx, "request", redact.HTTPError(err))
	}
	defer closeBody(resp.Body)

	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		out, err := io.ReadAll(io.LimitReader(resp.Body, MaxOutput+1))
		if err != nil {
			return nil, withStatus(h.transportError(ctx, actx, "reading response", err), code)
		}
		if len(out) > MaxOutput {
			return nil, withStatus(dispatcher.Permanent("output_too_large",
				fmt.Errorf("response body exceeds %d bytes", MaxOutput)), code)
		}
		return &dispatcher.Result{Output: out, ContentType: resp.Header.Get("Content-Type"), StatusCode: code}, nil
	}

	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, errorExcerpt))
	cause := fmt.Errorf("function answered %s%s", resp.Status, excerptSuffix(excerpt))
	status := "http_" + strconv.Itoa(code)
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		ra := dispatcher.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, withStatus(dispatcher.Retryable(status, cause, ra), code)
	}
	return nil, withStatus(dispatcher.Permanent(status, cause), code)
}

// newRequest builds the CloudEvents request for inv: binary mode for one
// event, a structured-mode batch for a poller batch.
func (h *HTTP) newRequest(ctx context.Context, inv *dispatcher.Invocation) (*http.Request, error) {
	if inv.Batch != nil {
		return h.newBatchRequest(ctx, inv)
	}
	source := inv.Source
	if source == "" {
		source = "/ferry/" + inv.Tenant + "/" + inv.Function
	}
	ev := newEvent(inv.ID, source, inv.Type, inv.Time)
	ev.SetExtension(wire.ExtensionHops, inv.OutHops())
	ct := inv.ContentType
	if ct == "" {
		ct = DefaultContentType
	}
	if err := ev.SetData(ct, inv.Payload); err != nil {
		return nil, dispatcher.Permanent("bad_event", err)
	}
	if err := ev.Validate(); err != nil {
		return nil, dispatcher.Permanent("bad_event", err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, nil)
	if err != nil {
		return nil, dispatcher.Permanent("bad_request", err)
	}
	// Message headers first, so that operator headers and Ferry's own win.
	for k, v := range inv.Headers {
		if reservedHeader(k) || !validHeader(k, v) {
			continue
		}
		req.Header.Set(k, v)
	}
	for k, v := range h.headers {
		req.Header[k] = v
	}
	if err := cehttp.WriteRequest(cebinding.WithForceBinary(ctx), cebinding.ToMessage(&ev), req); err != nil {
		return nil, dispatcher.Permanent("bad_event", err)
	}
	h.setFerryHeaders(req, inv)
	return req, nil
}

// newBatchRequest builds the application/cloudevents-batch+json request.
func (h *HTTP) newBatchRequest(ctx context.Context, inv *dispatcher.Invocation) (*http.Request, error) {
	body, err := EncodeBatch(inv)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, dispatcher.Permanent("bad_request", err)
	}
	for k, v := range h.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", BatchContentType)
	h.setFerryHeaders(req, inv)
	return req, nil
}

// setFerryHeaders sets the hop count, attempt and trace headers.
func (h *HTTP) setFerryHeaders(req *http.Request, inv *dispatcher.Invocation) {
	req.Header.Set(wire.HeaderHops, strconv.Itoa(inv.OutHops()))
	req.Header.Set(HeaderAttempt, strconv.Itoa(inv.Attempt))
	if inv.TraceParent != "" && validHeader(wire.HeaderTraceParent, inv.TraceParent) {
		req.Header.Set(wire.HeaderTraceParent, inv.TraceParent)
	}
}

// transportError classifies a failure to get or read a response. ctx is
// the caller's context, actx the attempt's.
func (h *HTTP) transportError(ctx, actx context.Context, op string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("http backend: %s: %w", op, ctx.Err())
	}
	if actx.Err() != nil || isTimeout(err) {
		return dispatcher.Retryable("timeout", fmt.Errorf("%s: no answer within %s: %w", op, h.timeout, err), 0)
	}
	return dispatcher.Retryable("connection", fmt.Errorf("%s: %w", op, err), 0)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// withStatus records the HTTP status on a *dispatcher.Error.
func withStatus(err error, code int) error {
	var e *dispatcher.Error
	if errors.As(err, &e) {
		e.StatusCode = code
	}
	return err
}

// closeBody drains a bounded amount of body, so that the connection can be
// reused, and closes it.
func closeBody(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
	_ = body.Close()
}

// excerptSuffix renders a body excerpt for an error message.
func excerptSuffix(b []byte) string {
	cut := len(b) == errorExcerpt
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if cut {
		s += "..."
	}
	return ": " + strconv.Quote(s)
}

// hopByHop are connection-level headers a message must not set.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-authenticate": true,
	"proxy-authorization": true, "proxy-connection": true, "te": true,
	"trailer": true, "transfer-encoding": true, "upgrade": true,
}

// reservedHeader reports whether name is set by Ferry and may not come from
// a message or the config.
func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	switch {
	case strings.HasPrefix(n, "ce-"), strings.HasPrefix(n, "ferry-"):
		return true
	case n == "content-type", n == "content-length", n == wire.HeaderTraceParent, n == "host":
		return true
	}
	return hopByHop[n]
}

// validHeader reports whether name is an HTTP token and value holds no
// control characters other than tab, so the transport will not refuse the
// request because of a message header.
func validHeader(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
