package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is an httptest server whose handler the test sets; it records
// every request.
type fakeAPI struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, query string
	header              http.Header
	body                []byte
}

func newFake(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		n := len(f.reqs)
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// newTestClient returns a client of f whose sleeps are recorded, not slept.
func newTestClient(t *testing.T, url string, opts ...Option) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := New(url, "secret-key", opts...)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var slept []time.Duration
	c.cfg.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		slept = append(slept, d)
		return ctx.Err()
	}
	return c, &slept
}

func writeJSON(w http.ResponseWriter, status int, v string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, msg))
}

const queuedTask = `{"id":"t1","function":"echo","status":"queued","attempts":0,"hops":0,"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","future_field":1}`

func TestNewChecksItsArguments(t *testing.T) {
	tests := []struct {
		name string
		url  string
		opts []Option
		want string // "" for success
	}{
		{"OK", "http://127.0.0.1:8080/", nil, ""},
		{"HTTPS", "https://ferry.example", nil, ""},
		{"NoScheme", "127.0.0.1:8080", nil, "must be http:// or https://"},
		{"FTP", "ftp://host", nil, "must be http:// or https://"},
		{"NoHost", "http://", nil, "must be http:// or https://"},
		{"NilHTTPClient", "http://h", []Option{WithHTTPClient(nil)}, "WithHTTPClient"},
		{"NegativeRetries", "http://h", []Option{WithSubmitRetries(-1, time.Second)}, "negative"},
		{"ZeroRetryWait", "http://h", []Option{WithSubmitRetries(1, 0)}, "maxWait"},
		{"PollMaxBelowMin", "http://h", []Option{WithPollInterval(time.Second, time.Millisecond)}, "max cannot be shorter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.url, "k", tc.opts...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestErrorAnswers(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		want       Error
		temporary  bool
	}{
		{"NotFound", 404, `{"error":{"code":"task_not_found","message":"task \"x\" not found"}}`, "",
			Error{Status: 404, Code: "task_not_found", Message: `task "x" not found`}, false},
		{"RateLimited", 429, `{"error":{"code":"rate_limited","message":"slow down"}}`, "3",
			Error{Status: 429, Code: "rate_limited", Message: "slow down", RetryAfter: 3 * time.Second}, true},
		{"ProxyPage", 502, "<html>bad gateway</html>", "",
			Error{Status: 502, Code: "http_502", Message: "<html>bad gateway</html>"}, true},
		{"EmptyBody", 503, "", "",
			Error{Status: 503, Code: "http_503", Message: "Service Unavailable"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			c, _ := newTestClient(t, f.URL)
			_, err := c.Get(context.Background(), "x")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Get: %v (%T), want a *client.Error", err, err)
			}
			if *e != tc.want {
				t.Errorf("error = %+v, want %+v", *e, tc.want)
			}
			if e.Temporary() != tc.temporary {
				t.Errorf("Temporary() = %v, want %v", e.Temporary(), tc.temporary)
			}
			if strings.Contains(err.Error(), "secret-key") {
				t.Errorf("the error shows the API key: %v", err)
			}
			if got := IsNotFound(err); got != (tc.status == 404) {
				t.Errorf("IsNotFound = %v", got)
			}
		})
	}
}

func TestSubmitSendsTheRequest(t *testing.T) {
	tests := []struct {
		name        string
		payload     string
		opts        SubmitOptions
		wantType    string
		wantKey     string
		wantDelay   string
		wantPayload string
	}{
		{"JSON", `{"a":1}`, SubmitOptions{}, "application/json", "", "", `{"a":1}`},
		{"Bytes", "plain text", SubmitOptions{}, "application/octet-stream", "", "", "plain text"},
		{"Everything", "x", SubmitOptions{IdempotencyKey: "k1", Delay: 90 * time.Second, ContentType: "text/plain"},
			"text/plain", "k1", "1m30s", "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				w.Header().Set("Location", "/v1/tasks/t1")
				writeJSON(w, 202, queuedTask)
			})
			c, _ := newTestClient(t, f.URL+"/")
			task, err := c.Submit(context.Background(), "my fn", []byte(tc.payload), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if task.ID != "t1" || task.Status != StatusQueued || task.Function != "echo" {
				t.Errorf("task = %+v", task)
			}
			if !strings.Contains(string(task.Raw()), `"future_field":1`) {
				t.Errorf("Raw() = %s, want the answer as sent", task.Raw())
			}
			r := f.requests()[0]
			checks := []struct{ what, got, want string }{
				{"method", r.method, "POST"},
				{"path", r.path, "/v1/functions/my fn/tasks"},
				{"Authorization", r.header.Get("Authorization"), "Bearer secret-key"},
				{"Content-Type", r.header.Get("Content-Type"), tc.wantType},
				{"Idempotency-Key", r.header.Get("Idempotency-Key"), tc.wantKey},
				{"Ferry-Delay", r.header.Get("Ferry-Delay"), tc.wantDelay},
				{"body", string(r.body), tc.wantPayload},
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("%s = %q, want %q", ch.what, ch.got, ch.want)
				}
			}
		})
	}
}

// TestSubmitRetries: refusals made before storing are retried always;
// 503 and network errors only with an idempotency key; Retry-After is
// waited, and one longer than the maximum wait is not.
func TestSubmitRetries(t *testing.T) {
	type answer struct {
		status     int
		retryAfter string
	}
	tests := []struct {
		name      string
		key       string
		answers   []answer // then 202
		wantCalls int
		wantErr   int // status of the error returned; 0: success
		wantSleep []time.Duration
	}{
		{"RateLimitedThenOK", "", []answer{{429, "2"}, {429, ""}}, 3, 0, []time.Duration{2 * time.Second, time.Second}},
		{"StoreFullThenOK", "", []answer{{507, "5"}}, 2, 0, []time.Duration{5 * time.Second}},
		{"UnavailableWithoutKey", "", []answer{{503, "1"}}, 1, 503, nil},
		{"UnavailableWithKey", "k", []answer{{503, "1"}}, 2, 0, []time.Duration{time.Second}},
		{"RetriesRunOut", "k", []answer{{429, "1"}, {429, "1"}, {429, "1"}, {429, "1"}}, 4, 429,
			[]time.Duration{time.Second, time.Second, time.Second}},
		{"RetryAfterTooLong", "k", []answer{{429, "120"}}, 1, 429, nil},
		{"BadRequestNever", "k", []answer{{400, ""}}, 1, 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= len(tc.answers) {
					a := tc.answers[n-1]
					if a.retryAfter != "" {
						w.Header().Set("Retry-After", a.retryAfter)
					}
					apiError(w, a.status, "refused", "no")
					return
				}
				writeJSON(w, 202, queuedTask)
			})
			c, slept := newTestClient(t, f.URL, WithSubmitRetries(3, time.Minute))
			_, err := c.Submit(context.Background(), "echo", []byte("x"), SubmitOptions{IdempotencyKey: tc.key})
			if got := len(f.requests()); got != tc.wantCalls {
				t.Errorf("%d requests, want %d", got, tc.wantCalls)
			}
			var e *Error
			switch {
			case tc.wantErr == 0 && err != nil:
				t.Errorf("Submit: %v, want success", err)
			case tc.wantErr != 0 && (!errors.As(err, &e) || e.Status != tc.wantErr):
				t.Errorf("Submit: %v, want a %d *Error", err, tc.wantErr)
			}
			if fmt.Sprint(*slept) != fmt.Sprint(tc.wantSleep) {
				t.Errorf("slept %v, want %v", *slept, tc.wantSleep)
			}
		})
	}
}

// TestSubmitNetworkError: a connection that breaks before the answer is
// retried only with an idempotency key, and the error is wrapped, not an
// *Error.
func TestSubmitNetworkError(t *testing.T) {
	for _, key := range []string{"", "k"} {
		t.Run("Key="+key, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			})
			c, _ := newTestClient(t, f.URL, WithSubmitRetries(2, time.Minute))
			_, err := c.Submit(context.Background(), "echo", []byte("x"), SubmitOptions{IdempotencyKey: key})
			var e *Error
			if err == nil || errors.As(err, &e) {
				t.Fatalf("Submit: %v, want a network error", err)
			}
			if !strings.Contains(err.Error(), "cannot reach Ferry") {
				t.Errorf("error %q does not say what happened", err)
			}
			want := 1
			if key != "" {
				want = 3
			}
			if got := len(f.requests()); got != want {
				t.Errorf("%d requests, want %d", got, want)
			}
		})
	}
}
