package client

import (
	"bytes"
	"context"
	"encoding/json"
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

func TestSubmitBatchChunksAndItemErrors(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Tasks []struct {
				Payload json.RawMessage `json:"payload"`
				Key     string          `json:"idempotency_key"`
				Delay   string          `json:"delay"`
			} `json:"tasks"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			apiError(w, 400, "bad_body", err.Error())
			return
		}
		answers := make([]string, len(req.Tasks))
		for i, it := range req.Tasks {
			if string(it.Payload) == `"refuse"` {
				answers[i] = `{"error":{"code":"rate_limited","message":"slow down"}}`
				continue
			}
			id := string(it.Payload)
			if id == "" {
				id = `"bytes"`
			}
			answers[i] = fmt.Sprintf(`{"id":%s,"function":"echo","status":"queued"}`, id)
		}
		writeJSON(w, 202, `{"tasks":[`+strings.Join(answers, ",")+`]}`)
	})
	c, _ := newTestClient(t, f.URL)
	items := make([]BatchItem, 2500)
	for i := range items {
		items[i] = BatchItem{Payload: json.RawMessage(fmt.Sprintf(`"id-%d"`, i))}
	}
	items[1234].Payload = json.RawMessage(`"refuse"`)
	items[7] = BatchItem{Data: []byte{0xff, 0}, IdempotencyKey: "k7", Delay: time.Minute}

	res, err := c.SubmitBatch(context.Background(), "echo", items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(items) {
		t.Fatalf("%d results, want %d", len(res), len(items))
	}
	var sizes []int
	for _, r := range f.requests() {
		var req struct{ Tasks []json.RawMessage }
		_ = json.Unmarshal(r.body, &req)
		sizes = append(sizes, len(req.Tasks))
		if r.path != "/v1/functions/echo/tasks/batch" {
			t.Errorf("path %q", r.path)
		}
	}
	if fmt.Sprint(sizes) != "[1000 1000 500]" {
		t.Errorf("request sizes %v, want [1000 1000 500]", sizes)
	}
	if res[1234].Err == nil || res[1234].Err.Code != "rate_limited" || res[1234].Task != nil {
		t.Errorf("result 1234 = %+v, want the item's error", res[1234])
	}
	if !res[1234].Err.Temporary() {
		t.Errorf("a rate-limited item is not Temporary")
	}
	if res[2499].Task == nil || res[2499].Task.ID != "id-2499" {
		t.Errorf("result 2499 = %+v, want task id-2499", res[2499])
	}
	first := string(f.requests()[0].body)
	if !strings.Contains(first, `{"payload_base64":"/wA=","idempotency_key":"k7","delay":"1m0s"}`) {
		t.Errorf("item 7 not sent as payload_base64 with its key and delay: %.300s", first)
	}
}

func TestSubmitBatchStopsAtARefusedRequest(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 2 {
			apiError(w, 400, "bad_body", "tasks[3]: bad")
			return
		}
		answers := strings.TrimSuffix(strings.Repeat(`{"id":"x","status":"queued"},`, MaxBatch), ",")
		writeJSON(w, 202, `{"tasks":[`+answers+`]}`)
	})
	c, _ := newTestClient(t, f.URL)
	items := make([]BatchItem, 2*MaxBatch+1)
	for i := range items {
		items[i] = BatchItem{Payload: json.RawMessage(`1`)}
	}
	res, err := c.SubmitBatch(context.Background(), "echo", items)
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 {
		t.Fatalf("SubmitBatch: %v, want the 400", err)
	}
	if len(res) != MaxBatch {
		t.Errorf("%d results, want the first request's %d", len(res), MaxBatch)
	}
	if !strings.Contains(err.Error(), "items 1000 to 1999") {
		t.Errorf("error %q does not name the items", err)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (none after the refused one)", n)
	}
}

func TestBatchItemJSON(t *testing.T) {
	tests := []struct {
		line string
		want BatchItem
		err  string
	}{
		{`{"payload":{"a":1}}`, BatchItem{Payload: json.RawMessage(`{"a":1}`)}, ""},
		{`{"payload_base64":"aGk=","idempotency_key":"k","delay":"30s"}`, BatchItem{Data: []byte("hi"), IdempotencyKey: "k", Delay: 30 * time.Second}, ""},
		{`{"payload_base64":""}`, BatchItem{Data: []byte{}}, ""},
		{`{"payload":1,"payload_base64":"aGk="}`, BatchItem{}, "not both"},
		{`{"idempotency_key":"k"}`, BatchItem{}, "needs"},
		{`{"payload_base64":"!!"}`, BatchItem{}, "base64"},
		{`{"payload":1,"delay":"soon"}`, BatchItem{}, `"delay" "soon"`},
		{`{"payload":1,"delay":"-1s"}`, BatchItem{}, "negative"},
		{`{"payload":1,"extra":2}`, BatchItem{}, "unknown field"},
		{`[1]`, BatchItem{}, "batch item is"},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			var got BatchItem
			err := json.Unmarshal([]byte(tc.line), &got)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Unmarshal: %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%q %q %q %v", got.Payload, got.Data, got.IdempotencyKey, got.Delay) !=
				fmt.Sprintf("%q %q %q %v", tc.want.Payload, tc.want.Data, tc.want.IdempotencyKey, tc.want.Delay) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			again, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var round BatchItem
			if err := json.Unmarshal(again, &round); err != nil {
				t.Fatalf("round trip of %s: %v", again, err)
			}
		})
	}
}

func TestListAllReadsEveryPage(t *testing.T) {
	pages := map[string]string{
		"":   `{"tasks":[{"id":"a"},{"id":"b"}],"next_cursor":"c1"}`,
		"c1": `{"tasks":[{"id":"c"}],"next_cursor":"c2"}`,
		"c2": `{"tasks":[{"id":"d"}],"next_cursor":""}`,
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, 200, pages[r.URL.Query().Get("cursor")])
	})
	c, _ := newTestClient(t, f.URL)
	var ids []string
	for task, err := range c.ListAll(context.Background(), ListOptions{Function: "echo", Status: StatusFailed, Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	if strings.Join(ids, ",") != "a,b,c,d" {
		t.Errorf("ids %v, want a,b,c,d", ids)
	}
	if q := f.requests()[0].query; q != "function=echo&limit=2&status=failed" {
		t.Errorf("query %q", q)
	}

	// Breaking out stops the reading.
	before := len(f.requests())
	for range c.ListAll(context.Background(), ListOptions{}) {
		break
	}
	if n := len(f.requests()) - before; n != 1 {
		t.Errorf("%d requests after a break on the first task, want 1", n)
	}
}

func TestWait(t *testing.T) {
	answers := []func(w http.ResponseWriter){
		func(w http.ResponseWriter) { writeJSON(w, 200, `{"id":"t1","status":"queued"}`) },
		func(w http.ResponseWriter) { writeJSON(w, 200, `{"id":"t1","status":"running"}`) },
		func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "3")
			apiError(w, 503, "unavailable", "later")
		},
		func(w http.ResponseWriter) { writeJSON(w, 200, `{"id":"t1","status":"running"}`) },
		func(w http.ResponseWriter) { writeJSON(w, 200, `{"id":"t1","status":"running"}`) },
		func(w http.ResponseWriter) {
			writeJSON(w, 200, `{"id":"t1","status":"failed","error":{"code":"boom","message":"no"}}`)
		},
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { answers[n-1](w) })
	c, slept := newTestClient(t, f.URL, WithPollInterval(100*time.Millisecond, 300*time.Millisecond))
	task, err := c.Wait(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != StatusFailed || task.Error == nil || task.Error.Code != "boom" {
		t.Errorf("task = %+v, want failed with boom", task)
	}
	want := "[100ms 200ms 3s 300ms 300ms]"
	if got := fmt.Sprint(*slept); got != want {
		t.Errorf("slept %s, want %s", got, want)
	}

	t.Run("NotFoundEnds", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { apiError(w, 404, "task_not_found", "no") })
		c, _ := newTestClient(t, f.URL)
		if _, err := c.Wait(context.Background(), "t1"); !IsNotFound(err) {
			t.Errorf("Wait: %v, want the 404", err)
		}
	})
	t.Run("ContextEnds", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			writeJSON(w, 200, `{"id":"t1","status":"queued"}`)
		})
		c, err := New(f.URL, "k", WithPollInterval(time.Millisecond, time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.Wait(ctx, "t1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait: %v, want the deadline", err)
		}
	})
}

func TestCancelReplayPaths(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 3 {
			apiError(w, 409, "conflict", "task is running")
			return
		}
		writeJSON(w, 200, `{"id":"a/b","status":"cancelled"}`)
	})
	c, _ := newTestClient(t, f.URL)
	ctx := context.Background()
	if _, err := c.Cancel(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Replay(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, "a/b"); !IsConflict(err) {
		t.Errorf("Cancel: %v, want the 409", err)
	}
	reqs := f.requests()
	if reqs[0].method != "DELETE" || reqs[1].method != "POST" || reqs[1].path != "/v1/tasks/a/b/replay" {
		t.Errorf("requests %s %s, %s %s", reqs[0].method, reqs[0].path, reqs[1].method, reqs[1].path)
	}
}
