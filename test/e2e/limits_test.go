package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	t.Parallel()
	be := newBackend(t, func(c *call, _ int) reply {
		r := echo(c)
		r.Hold = 150 * time.Millisecond
		return r
	})
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: acme, api_keys: [acme-key], max_concurrency: 3 }
  - { name: small, api_keys: [small-key], max_queued: 3 }
functions:
  - { name: a, tenant: acme, max_concurrency: 2, backend: { http: { url: %[1]q } } }
  - { name: b, tenant: acme, max_concurrency: 2, backend: { http: { url: %[1]q } } }
  - { name: q, tenant: small, backend: { http: { url: %[1]q } } }
`, be.URL()))

	t.Run("Concurrency", func(t *testing.T) {
		f.key = "acme-key"
		var ids []string
		for i := range 6 {
			ids = append(ids, f.submitOK(t, "a", fmt.Sprintf(`{"a": %d}`, i), nil))
			ids = append(ids, f.submitOK(t, "b", fmt.Sprintf(`{"b": %d}`, i), nil))
		}
		for id, v := range waitAllFinal(t, f, ids, 30*time.Second) {
			if v.Status != "succeeded" {
				t.Fatalf("task %s: %+v, want succeeded", id, v)
			}
		}
		calls := be.all()
		of := func(fn string) func(call) bool {
			return func(c call) bool { return strings.HasSuffix(c.Header.Get("ce-source"), "/"+fn) }
		}
		pa, pb := peak(calls, of("a")), peak(calls, of("b"))
		all := peak(calls, func(call) bool { return true })
		t.Logf("peak in flight: a=%d b=%d tenant=%d", pa, pb, all)
		if pa > 2 || pb > 2 {
			t.Errorf("function peaks a=%d b=%d, want <= max_concurrency 2", pa, pb)
		}
		if all > 3 {
			t.Errorf("tenant peak %d, want <= max_concurrency 3", all)
		}
		if all < 3 {
			t.Errorf("tenant peak %d with 12 tasks queued, want the limit 3 reached", all)
		}
	})

	t.Run("QueueQuota", func(t *testing.T) {
		f.key = "small-key"
		var ids []string
		for i := range 3 {
			ids = append(ids, f.submitOK(t, "q", fmt.Sprintf(`{"q": %d}`, i), map[string]string{"Ferry-Delay": "1h"}))
		}
		r := f.submit(t, "q", `{"q": "over"}`, map[string]string{"Ferry-Delay": "1h"})
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("submit over max_queued: status %d, want 429: %s", r.status, r.body)
		}
		if r.header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
		if _, err := errBody(r); err != nil {
			t.Error(err)
		}
		if got := listIDs(t, f, "", 100); len(got) != 3 {
			t.Errorf("tenant small has %d tasks, want 3 (the refused one not stored)", len(got))
		}
		// A cancelled task no longer counts against the quota.
		if r := f.mustDo(t, http.MethodDelete, "/v1/tasks/"+ids[0], nil, nil); r.status != http.StatusOK {
			t.Fatalf("DELETE: status %d: %s", r.status, r.body)
		}
		f.submitOK(t, "q", `{"q": "after cancel"}`, map[string]string{"Ferry-Delay": "1h"})
	})
}
