// Package webhook delivers outcomes as signed HTTP webhooks, per Standard
// Webhooks (https://www.standardwebhooks.com): the Outcome JSON is POSTed
// with webhook-id, webhook-timestamp and webhook-signature headers. Sign
// and Verify are exported for receivers and tests.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydev/ferry/internal/redact"
	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/wire"
)

// UserAgent is sent with every delivery.
const UserAgent = "Ferry-Webhook/1"

const (
	errorExcerpt = 256      // bytes of a failed response kept in the error
	drainLimit   = 64 << 10 // bytes read from a response before closing it
)

// Config configures a webhook sink.
type Config struct {
	// URL receives the POSTs; an absolute http or https URL. Required.
	URL string
	// Secret signs every delivery: "whsec_" followed by a base64 key.
	// Required.
	Secret string
	// Timeout bounds one delivery attempt. Defaults to 0: no bound of the
	// Sink's own, the caller's context bounds the attempt (Ferry's
	// dispatcher applies each destination's timeout, once).
	Timeout time.Duration
	// Client replaces the default client. It is copied and its
	// CheckRedirect replaced so that redirects are never followed.
	Client *http.Client
}

// Sink delivers outcomes to one webhook URL. Deliver makes exactly one
// attempt; the caller retries. It is safe for concurrent use.
type Sink struct {
	url     string
	secret  string
	timeout time.Duration
	client  *http.Client
}

var _ sinks.Sink = (*Sink)(nil)

// StatusError is a delivery the receiver answered with a non-2xx status
// (a 3xx included: redirects are not followed).
type StatusError struct {
	// StatusCode is the receiver's HTTP status.
	StatusCode int
	// Body is an excerpt of the response body.
	Body string
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := "webhook: receiver answered " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	if e.Body != "" {
		msg += ": " + strconv.Quote(e.Body)
	}
	return msg
}

// New validates cfg and returns a webhook sink.
func New(cfg Config) (*Sink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("webhook: URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook: URL %q: want an absolute http or https URL", cfg.URL)
	}
	if _, err := decodeSecret(cfg.Secret); err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("webhook: Timeout %s is negative", cfg.Timeout)
	}
	s := &Sink{url: u.String(), secret: cfg.Secret, timeout: cfg.Timeout}
	if cfg.Client != nil {
		c := *cfg.Client
		s.client = &c
	} else {
		s.client = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   10 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}}
	}
	s.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s, nil
}

// Deliver POSTs o once, signed with a fresh timestamp and the webhook-id
// "msg_" + o.ID (the same on every retry, so receivers can drop
// duplicates). It returns nil on a 2xx answer, a *StatusError on any other
// status, and the transport error otherwise.
func (s *Sink) Deliver(ctx context.Context, o *wire.Outcome) error {
	if o == nil {
		return errors.New("webhook: nil outcome")
	}
	body, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("webhook: encoding outcome %s: %w", o.ID, err)
	}
	msgID := "msg_" + o.ID
	ts := time.Now()
	sig, err := Sign(s.secret, msgID, ts, body)
	if err != nil {
		return err
	}

	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderID, msgID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	req.Header.Set(wire.HeaderHops, strconv.Itoa(o.Hops))
	if o.TraceParent != "" && !strings.ContainsAny(o.TraceParent, "\r\n\x00") {
		req.Header.Set(wire.HeaderTraceParent, o.TraceParent)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		// The URL may carry a token: the error is kept with the task.
		return fmt.Errorf("webhook: delivering %s: %w", msgID, redact.HTTPError(err))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, errorExcerpt))
	return &StatusError{
		StatusCode: resp.StatusCode,
		Body:       strings.ToValidUTF8(strings.TrimSpace(string(excerpt)), "\uFFFD"),
	}
}
