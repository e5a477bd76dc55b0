// Package client is a Go client of Ferry's HTTP API v1: submit tasks (one
// at a time or in batches), read, list, cancel and replay them, and wait
// for their outcomes.
//
//	c, err := client.New("http://127.0.0.1:8080", "demo-key")
//	task, err := c.Submit(ctx, "echo", []byte(`{"hello":"world"}`), client.SubmitOptions{})
//	task, err = c.Wait(ctx, task.ID)
//
// API errors are *Error values (errors.As); network errors are wrapped
// with %w. It uses net/http only.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of the options.
const (
	// DefaultSubmitRetries is how many times Submit and SubmitBatch retry
	// an answer that asks for it (see WithSubmitRetries).
	DefaultSubmitRetries = 3
	// DefaultMaxRetryWait caps the wait before one such retry, whatever
	// Retry-After says.
	DefaultMaxRetryWait = 30 * time.Second
	// DefaultPollMin and DefaultPollMax bound Wait's polling interval: it
	// starts at DefaultPollMin and doubles up to DefaultPollMax.
	DefaultPollMin = 100 * time.Millisecond
	DefaultPollMax = 2 * time.Second
)

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client calls one Ferry API as one tenant. It is safe for concurrent use.
type Client struct {
	base *url.URL
	key  string
	cfg  config
}

// Option configures a Client.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	httpClient   *http.Client
	userAgent    string
	retries      int
	maxRetryWait time.Duration
	pollMin      time.Duration
	pollMax      time.Duration
	sleep        func(ctx context.Context, d time.Duration) error
}

func defaultConfig() config {
	return config{
		httpClient:   http.DefaultClient,
		userAgent:    "ferry-go-client",
		retries:      DefaultSubmitRetries,
		maxRetryWait: DefaultMaxRetryWait,
		pollMin:      DefaultPollMin,
		pollMax:      DefaultPollMax,
		sleep:        sleepCtx,
	}
}

func (c config) validate() error {
	checks := []struct {
		bad bool
		msg string
	}{
		{c.httpClient == nil, "WithHTTPClient: the client is nil"},
		{c.retries < 0, "WithSubmitRetries: retries cannot be negative"},
		{c.maxRetryWait <= 0, "WithSubmitRetries: maxWait must be positive"},
		{c.pollMin <= 0, "WithPollInterval: min must be positive"},
		{c.pollMax < c.pollMin, "WithPollInterval: max cannot be shorter than min"},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New("client: " + ch.msg)
		}
	}
	return nil
}

// WithHTTPClient sets the HTTP client (timeouts, transport, TLS). Defaults
// to http.DefaultClient; give each request a deadline with its context.
func WithHTTPClient(h *http.Client) Option {
	return optionFunc(func(c *config) { c.httpClient = h })
}

// WithUserAgent sets the User-Agent header. Defaults to "ferry-go-client".
func WithUserAgent(ua string) Option {
	return optionFunc(func(c *config) { c.userAgent = ua })
}

// WithSubmitRetries sets how many times Submit and SubmitBatch retry an
// answer that says a later try can succeed, and the most they wait before
// one retry (Retry-After is honoured up to maxWait; without it they wait 1
// s). 0 retries turns retrying off. Defaults to DefaultSubmitRetries and
// DefaultMaxRetryWait. Which answers are retried is in Submit's doc.
func WithSubmitRetries(retries int, maxWait time.Duration) Option {
	return optionFunc(func(c *config) { c.retries, c.maxRetryWait = retries, maxWait })
}

// WithPollInterval bounds how often Wait reads the task: first after min,
// then twice as long each time, up to max. Defaults to DefaultPollMin and
// DefaultPollMax.
func WithPollInterval(minInterval, maxInterval time.Duration) Option {
	return optionFunc(func(c *config) { c.pollMin, c.pollMax = minInterval, maxInterval })
}

// New returns a client of the Ferry API at baseURL (e.g.
// "http://127.0.0.1:8080") that authenticates with apiKey (sent as
// "Authorization: Bearer <apiKey>"; none when empty). It only checks its
// arguments: nothing is sent until a method is called.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q must be http:// or https:// with a host: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be http:// or https:// with a host, e.g. http://127.0.0.1:8080", baseURL)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Client{base: u, key: apiKey, cfg: cfg}, nil
}

// request is one API call.
type request struct {
	method string
	path   string // escaped, from the API's root: "/v1/tasks/..."
	query  url.Values
	body   []byte
	header http.Header
}

// do sends req and decodes a 2xx answer's JSON into out (when not nil). A
// non-2xx answer is an *Error; a failure to reach Ferry or read its answer
// is wrapped.
func (c *Client) do(ctx context.Context, req request, out any) error {
	u := c.base.Scheme + "://" + c.base.Host + c.base.EscapedPath() + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return fmt.Errorf("ferry: %s %s: %w", req.method, req.path, err)
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", c.cfg.userAgent)
	if c.key != "" {
		hr.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.cfg.httpClient.Do(hr)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("ferry: %s %s: %w", req.method, req.path, ctxErr)
		}
		return fmt.Errorf("ferry: %s %s: cannot reach Ferry at %s (retrying may help): %w", req.method, req.path, c.base.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errorOf(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("ferry: %s %s: reading the %d answer (retrying may help): %w", req.method, req.path, resp.StatusCode, err)
	}
	return nil
}

// errorOf reads an error answer.
func errorOf(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		return e
	}
	e.Code = fmt.Sprintf("http_%d", resp.StatusCode)
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = msg
	return e
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
