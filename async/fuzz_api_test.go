package async_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/async"
)

// FuzzAuthorization: any Authorization header names a tenant or an admin
// only when it is "Bearer <a configured key>" (scheme case-insensitive,
// the key trimmed); anything else names nobody.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{"", "Bearer key-a", "bearer key-b", "BEARER  key-admin ", "Bearer", "Bearer ", "Basic a2V5LWE=",
		"Bearer key-a\x00", "Bearerkey-a", "Bearer key-a key-b", "Token key-a"} {
		f.Add(s)
	}
	auth := async.NewAuth(map[string][]string{"a": {"key-a"}, "b": {"key-b"}}, "key-admin")
	want := map[string]async.Identity{"key-a": {Tenant: "a"}, "key-b": {Tenant: "b"}, "key-admin": {Admin: true}}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/tasks", nil)
		r.Header.Set("Authorization", h)
		got := auth.Identify(r)
		var expect async.Identity
		if scheme, key, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			expect = want[strings.TrimSpace(key)]
		}
		if got != expect {
			t.Fatalf("Identify(Authorization: %q) = %+v, want %+v", h, got, expect)
		}
	})
}

// FuzzBatchBody: any batch submit body is answered with a known status
// and a JSON body, never a 500 or a panic; a 400 stores nothing.
func FuzzBatchBody(f *testing.F) {
	for _, s := range []string{
		`{"tasks":[{"payload":{"a":1}}]}`,
		`{"tasks":[{"payload_base64":"aGk="},{"payload":"x","idempotency_key":"k","delay":"1s"}]}`,
		`{"tasks":[{"payload":1,"payload_base64":"aGk="}]}`,
		`{"tasks":[]}`, `{"tasks":[{}]}`, `{"tasks":[{"payload":null}]}`, `{"tasks":[{"payload":1,"delay":"-1s"}]}`,
		`{"tasks":[{"payload":1}]} {}`, `{"tasks":[{"payload":1,"extra":2}]}`, `[`, ``, `null`,
		`{"tasks":[{"payload_base64":"!!"}]}`, `{"tasks":[{"payload":1,"delay":"99999999h"}]}`,
	} {
		f.Add(s)
	}
	srv, _ := newAPI(f)
	allowed := map[int]bool{202: true, 400: true, 413: true, 429: true}
	f.Fuzz(func(t *testing.T, body string) {
		r := call(t, srv, "POST", "/v1/functions/f/tasks/batch", "key-a", body, map[string]string{"Content-Type": "application/json"})
		if !allowed[r.status] {
			t.Fatalf("status %d for %q: %v", r.status, body, r.body)
		}
		if r.status != 202 {
			if errCode(r) == "<no message>" {
				t.Fatalf("status %d without an error message", r.status)
			}
			return
		}
		items, _ := r.body["tasks"].([]any)
		for _, it := range items { // keep tenant a under its quota
			if m, _ := it.(map[string]any); m != nil {
				if id, _ := m["id"].(string); id != "" {
					_ = call(t, srv, "DELETE", "/v1/tasks/"+id, "key-a", "", nil)
				}
			}
		}
	})
}

// FuzzListCursor: any list query (cursor, limit, status, function) is
// answered 200 or 400, never a 500 or a panic.
func FuzzListCursor(f *testing.F) {
	srv, _ := newAPI(f)
	for i := 0; i < 3; i++ {
		call(f, srv, "POST", "/v1/functions/f/tasks", "key-a", "x", nil)
	}
	first := call(f, srv, "GET", "/v1/tasks?limit=1", "key-a", "", nil)
	next, _ := first.body["next_cursor"].(string)
	for _, s := range []string{next, "", "AAAA", "!!", "AQAAAAAAAAAAAAAAAAAAAA", strings.Repeat("A", 400)} {
		f.Add(s, "1", "")
		f.Add(s, "-1", "queued")
	}
	f.Add(next, "1000000", "running")
	f.Fuzz(func(t *testing.T, cursor, limit, status string) {
		q := url.Values{"cursor": {cursor}, "limit": {limit}, "status": {status}}
		r := call(t, srv, "GET", "/v1/tasks?"+q.Encode(), "key-a", "", nil)
		if r.status != 200 && r.status != 400 {
			t.Fatalf("status %d for cursor=%q limit=%q status=%q: %v", r.status, cursor, limit, status, r.body)
		}
		if r.status == 400 && errCode(r) == "<no message>" {
			t.Fatal("400 without an error message")
		}
	})
}
