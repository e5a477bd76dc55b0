package async_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
	"github.com/ferrydev/ferry/wire"
)

// newAPI serves the API over a real embedded queue with tenants "a" (key
// key-a, function f, max_queued 3) and "b" (key key-b, function g).
func newAPI(t testing.TB) (*httptest.Server, *embedded.Queue) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	fns := map[string]string{"a": "f", "b": "g"}
	api := async.NewAPI(async.APIConfig{
		Store:      q,
		Auth:       async.NewAuth(map[string][]string{"a": {"key-a"}, "b": {"key-b"}}, "key-admin"),
		Functions:  func(tenant, fn string) bool { return fns[tenant] == fn },
		MaxQueued:  func(tenant string) int { return map[string]int{"a": 3}[tenant] },
		MaxPayload: 1024,
		Logger:     quiet,
	})
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, q
}

type apiReply struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t testing.TB, srv *httptest.Server, method, path, key, body string, hdr map[string]string) apiReply {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := apiReply{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
	}
	return r
}

func errCode(r apiReply) string {
	e, _ := r.body["error"].(map[string]any)
	if msg, _ := e["message"].(string); msg == "" {
		return "<no message>"
	}
	code, _ := e["code"].(string)
	return code
}

func TestAPIRequests(t *testing.T) {
	srv, _ := newAPI(t)
	ok := call(t, srv, "POST", "/v1/functions/f/tasks", "key-a", `{"x":1}`, map[string]string{"Content-Type": "application/json"})
	if ok.status != http.StatusAccepted || ok.body["status"] != "queued" || ok.header.Get("Location") != "/v1/tasks/"+ok.body["id"].(string) {
		t.Fatalf("submit = %d %v %v", ok.status, ok.body, ok.header)
	}
	id := ok.body["id"].(string)

	tests := []struct {
		name, method, path, key, body string
		hdr                           map[string]string
		status                        int
		code                          string
	}{
		{"MissingKey", "POST", "/v1/functions/f/tasks", "", "x", nil, 401, "unauthorized"},
		{"UnknownKey", "GET", "/v1/tasks/" + id, "nope", "", nil, 401, "unauthorized"},
		{"UnknownFunction", "POST", "/v1/functions/zz/tasks", "key-a", "x", nil, 404, "function_not_found"},
		{"OtherTenantsFunction", "POST", "/v1/functions/g/tasks", "key-a", "x", nil, 404, "function_not_found"},
		{"OtherTenantsTask", "GET", "/v1/tasks/" + id, "key-b", "", nil, 404, "task_not_found"},
		{"OtherTenantsCancel", "DELETE", "/v1/tasks/" + id, "key-b", "", nil, 404, "task_not_found"},
		{"TooLarge", "POST", "/v1/functions/f/tasks", "key-a", strings.Repeat("x", 1025), nil, 413, "payload_too_large"},
		{"BadDelay", "POST", "/v1/functions/f/tasks", "key-a", "x", map[string]string{"Ferry-Delay": "soon"}, 400, "bad_delay"},
		{"NegativeDelay", "POST", "/v1/functions/f/tasks", "key-a", "x", map[string]string{"Ferry-Delay": "-5s"}, 400, "bad_delay"},
		{"BadHops", "POST", "/v1/functions/f/tasks", "key-a", "x", map[string]string{"Ferry-Hops": "x"}, 400, "bad_hops"},
		{"LongIdempotencyKey", "POST", "/v1/functions/f/tasks", "key-a", "x", map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 400, "bad_idempotency_key"},
		{"BadCursor", "GET", "/v1/tasks?cursor=!!", "key-a", "", nil, 400, "bad_cursor"},
		{"BadStatus", "GET", "/v1/tasks?status=done", "key-a", "", nil, 400, "bad_status"},
		{"BadLimit", "GET", "/v1/tasks?limit=5000", "key-a", "", nil, 400, "bad_limit"},
		{"WrongMethod", "PUT", "/v1/tasks/" + id, "key-a", "", nil, 405, "method_not_allowed"},
		{"UnknownEndpoint", "GET", "/v1/nothing", "key-a", "", nil, 404, "not_found"},
		{"BadPayloadParam", "GET", "/v1/tasks/" + id + "?payload=maybe", "key-a", "", nil, 400, "bad_payload"},
		{"AdminWithoutTenant", "GET", "/v1/tasks/" + id, "key-admin", "", nil, 400, "tenant_required"},
		{"AdminUnknownTenant", "GET", "/v1/tasks/" + id, "key-admin", "", map[string]string{"Ferry-Tenant": "zz"}, 400, "unknown_tenant"},
		{"AdminForOtherTenant", "GET", "/v1/tasks/" + id, "key-admin", "", map[string]string{"Ferry-Tenant": "b"}, 404, "task_not_found"},
		{"TenantHeaderIgnoredForTenantKey", "GET", "/v1/tasks/" + id, "key-b", "", map[string]string{"Ferry-Tenant": "a"}, 404, "task_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, tt.method, tt.path, tt.key, tt.body, tt.hdr)
			if r.status != tt.status || errCode(r) != tt.code {
				t.Fatalf("got %d %s (%v), want %d %s", r.status, errCode(r), r.body, tt.status, tt.code)
			}
			if r.status == http.StatusMethodNotAllowed && r.header.Get("Allow") != "GET, DELETE" {
				t.Errorf("Allow = %q, want the RFC 9110 list %q", r.header.Get("Allow"), "GET, DELETE")
			}
		})
	}

	t.Run("AdminActsForTheNamedTenant", func(t *testing.T) {
		r := call(t, srv, "GET", "/v1/tasks/"+id, "key-admin", "", map[string]string{"Ferry-Tenant": "a"})
		if r.status != 200 || r.body["id"] != id {
			t.Fatalf("admin get for tenant a = %d %v", r.status, r.body)
		}
	})
	t.Run("NothingStoredByRejectedSubmits", func(t *testing.T) {
		r := call(t, srv, "GET", "/v1/tasks", "key-a", "", nil)
		if tasks := r.body["tasks"].([]any); len(tasks) != 1 {
			t.Fatalf("tenant a has %d tasks, want only the accepted one", len(tasks))
		}
	})
	t.Run("PayloadOnRequest", func(t *testing.T) {
		r := call(t, srv, "GET", "/v1/tasks/"+id+"?payload=true", "key-a", "", nil)
		if p, _ := r.body["payload"].(map[string]any); r.status != 200 || p["x"] != 1.0 || r.body["content_type"] != "application/json" {
			t.Fatalf("get with payload = %d %v", r.status, r.body)
		}
		if r := call(t, srv, "GET", "/v1/tasks/"+id, "key-a", "", nil); r.body["payload"] != nil {
			t.Fatalf("get without ?payload shows the payload: %v", r.body)
		}
		bin := call(t, srv, "POST", "/v1/functions/f/tasks", "key-a", "\xff\x00", map[string]string{"Content-Type": "application/octet-stream"})
		r = call(t, srv, "GET", "/v1/tasks/"+bin.body["id"].(string)+"?payload=1", "key-a", "", nil)
		if r.body["payload_base64"] != "/wA=" || r.body["payload"] != nil {
			t.Fatalf("binary payload = %v", r.body)
		}
		if r := call(t, srv, "DELETE", "/v1/tasks/"+bin.body["id"].(string), "key-a", "", nil); r.status != 200 {
			t.Fatalf("cancel = %d", r.status)
		}
	})
	t.Run("QuotaGives429WithRetryAfter", func(t *testing.T) {
		for range 2 {
			if r := call(t, srv, "POST", "/v1/functions/f/tasks", "key-a", "x", nil); r.status != 202 {
				t.Fatalf("submit under quota = %d", r.status)
			}
		}
		r := call(t, srv, "POST", "/v1/functions/f/tasks", "key-a", "x", nil)
		if r.status != 429 || errCode(r) != "quota_exceeded" || r.header.Get("Retry-After") == "" {
			t.Fatalf("over quota = %d %s Retry-After %q", r.status, errCode(r), r.header.Get("Retry-After"))
		}
	})
	t.Run("CancelThenConflict", func(t *testing.T) {
		r := call(t, srv, "DELETE", "/v1/tasks/"+id, "key-a", "", nil)
		if r.status != 200 || r.body["status"] != "cancelled" {
			t.Fatalf("cancel = %d %v", r.status, r.body)
		}
		if r := call(t, srv, "DELETE", "/v1/tasks/"+id, "key-a", "", nil); r.status != 409 || errCode(r) != "conflict" {
			t.Fatalf("second cancel = %d %s", r.status, errCode(r))
		}
	})
}

// FuzzSubmitHeaders feeds arbitrary submit headers and bodies to the API:
// it must answer a known status with a JSON error, never a 500 or a panic.
func FuzzSubmitHeaders(f *testing.F) {
	f.Add("30s", "3", "key-1", "payload")
	f.Add("-1s", "x", strings.Repeat("k", 300), "")
	f.Add("9999999h", "-4", "", strings.Repeat("y", 2000))
	srv, _ := newAPI(f)
	allowed := map[int]bool{202: true, 400: true, 409: true, 413: true, 429: true}
	f.Fuzz(func(t *testing.T, delay, hops, key, body string) {
		hdr := map[string]string{}
		for k, v := range map[string]string{"Ferry-Delay": delay, "Ferry-Hops": hops, "Idempotency-Key": key} {
			if v != "" && isHeaderValue(v) {
				hdr[k] = v
			}
		}
		r := call(t, srv, "POST", "/v1/functions/f/tasks", "key-a", body, hdr)
		if !allowed[r.status] {
			t.Fatalf("status %d for delay=%q hops=%q key=%q: %v", r.status, delay, hops, key, r.body)
		}
		if r.status != 202 && errCode(r) == "<no message>" {
			t.Fatalf("status %d without an error message", r.status)
		}
		if r.status == 202 {
			_ = call(t, srv, "DELETE", "/v1/tasks/"+r.body["id"].(string), "key-a", "", nil) // keep under quota
		}
	})
}

func isHeaderValue(v string) bool {
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return strings.TrimSpace(v) == v
}

// TestAPIStoreUnavailable: when the store cannot write, a submit answers 503
// with Retry-After, never 202, and reads answer 503 too (not 500).
func TestAPIStoreUnavailable(t *testing.T) {
	srv, q := newAPI(t)
	ok := call(t, srv, "POST", "/v1/functions/f/tasks", "key-a", "x", nil)
	if ok.status != http.StatusAccepted {
		t.Fatalf("submit before the store closed = %d", ok.status)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	r := call(t, srv, "POST", "/v1/functions/f/tasks", "key-a", "x", nil)
	if r.status != http.StatusServiceUnavailable || errCode(r) != "unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("submit with the store closed = %d %s Retry-After %q; want 503 unavailable with Retry-After",
			r.status, errCode(r), r.header.Get("Retry-After"))
	}
	for _, path := range []string{"/v1/tasks/" + ok.body["id"].(string), "/v1/tasks"} {
		if r := call(t, srv, "GET", path, "key-a", "", nil); r.status != http.StatusServiceUnavailable {
			t.Fatalf("GET %s with the store closed = %d, want 503", path, r.status)
		}
	}
}

func TestAPIReplay(t *testing.T) {
	srv, q := newAPI(t)
	ctx := context.Background()
	id := call(t, srv, "POST", "/v1/functions/f/tasks", "key-a", "x", nil).body["id"].(string)
	l, _, err := q.Lease(ctx, async.LeaseRequest{TTL: time.Minute})
	if err != nil || l == nil {
		t.Fatalf("lease: %v", err)
	}
	if r := call(t, srv, "POST", "/v1/tasks/"+id+"/replay", "key-a", "", nil); r.status != 409 || errCode(r) != "conflict" {
		t.Fatalf("replay of a running task: %d %v, want 409 conflict", r.status, r.body)
	}
	fail := async.Completion{Status: async.StatusFailed, Attempted: true,
		Error: &async.TaskError{Code: wire.CodeRetriesExhausted, Message: "gave up after 3 attempts", HTTPStatus: 503}}
	if _, err := q.Complete(ctx, id, l.Lease, fail); err != nil {
		t.Fatal(err)
	}
	list := call(t, srv, "GET", "/v1/tasks?status=failed", "key-a", "", nil)
	tasks, _ := list.body["tasks"].([]any)
	if len(tasks) != 1 {
		t.Fatalf("GET /v1/tasks?status=failed: %v", list.body)
	}
	if v := tasks[0].(map[string]any); v["attempts"] != 1.0 || v["error"].(map[string]any)["code"] != wire.CodeRetriesExhausted {
		t.Fatalf("failed task in the list lacks attempts or error: %v", v)
	}
	for _, tc := range []struct {
		name, key, method string
		status            int
		code              string
	}{
		{"OtherTenant", "key-b", "POST", 404, "task_not_found"},
		{"NoKey", "", "POST", 401, "unauthorized"},
		{"WrongMethod", "key-a", "GET", 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := call(t, srv, tc.method, "/v1/tasks/"+id+"/replay", tc.key, "", nil); r.status != tc.status || errCode(r) != tc.code {
				t.Fatalf("%d %v, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
	r := call(t, srv, "POST", "/v1/tasks/"+id+"/replay", "key-a", "", nil)
	if r.status != 200 || r.body["status"] != "queued" || r.body["attempts"] != 0.0 || r.body["replays"] != 1.0 {
		t.Fatalf("replay: %d %v, want 200 queued, 0 attempts, 1 replay", r.status, r.body)
	}
	if g := call(t, srv, "GET", "/v1/tasks/"+id, "key-a", "", nil); g.body["status"] != "queued" {
		t.Fatalf("after replay: %v", g.body)
	}
}

func TestAPIRateLimited(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	q, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	admitted := 0
	api := async.NewAPI(async.APIConfig{
		Store: q, Auth: async.NewAuth(map[string][]string{"a": {"key-a"}}), Logger: quiet,
		Functions: func(string, string) bool { return true },
		Admit: func(tenant, fn string) time.Duration {
			if admitted < 2 {
				admitted++
				return 0
			}
			return 1500 * time.Millisecond
		},
	})
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for i, want := range []int{202, 202, 429, 429} {
		r := call(t, srv, "POST", "/v1/functions/f/tasks", "key-a", "x", nil)
		if r.status != want {
			t.Fatalf("submit %d: %d %v, want %d", i, r.status, r.body, want)
		}
		if want == 429 && (errCode(r) != "rate_limited" || r.header.Get("Retry-After") != "2") {
			t.Fatalf("429 without rate_limited and Retry-After 2: %v %v", r.header, r.body)
		}
	}
	if st := q.Stats(); len(st) != 1 || st[0].Queued != 2 {
		t.Fatalf("queued tasks %+v, want the 2 admitted only", st)
	}
}
