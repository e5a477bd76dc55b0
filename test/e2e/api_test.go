package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

var traceParentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$`)

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	be := newBackend(t, nil)
	rc := ferrytest.NewReceiver(t)
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
  - name: echo
    tenant: acme
    backend: { http: { url: %q, timeout: 10s } }
    destinations:
      on_success: [ %s ]
`, be.URL(), rc.YAML()))
	f.key = "acme-key"

	payload := `{"order": 42, "items": ["a", "b"], "note": "héllo"}`
	r := f.submit(t, "echo", payload, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("submit: status %d, want 202: %s", r.status, r.body)
	}
	sub := r.task(t)
	if sub.ID == "" || sub.Status != "queued" {
		t.Fatalf("submit answer %s: want an id and status queued", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/v1/tasks/"+sub.ID {
		t.Fatalf("Location %q, want /v1/tasks/%s", loc, sub.ID)
	}
	id := sub.ID

	v := f.waitFinal(t, id)
	if v.Status != "succeeded" || v.Attempts != 1 || v.Function != "echo" {
		t.Fatalf("task = %+v, want succeeded after 1 attempt of echo", v)
	}
	if !sameJSON(v.Output, []byte(payload)) {
		t.Errorf("output = %s, want the submitted JSON object %s", v.Output, payload)
	}
	if v.CreatedAt.IsZero() || v.UpdatedAt.Before(v.CreatedAt) {
		t.Errorf("created_at %v, updated_at %v: want set and ordered", v.CreatedAt, v.UpdatedAt)
	}

	calls := be.callsFor(id)
	if len(calls) != 1 {
		t.Fatalf("backend saw task %s %d times, want 1", id, len(calls))
	}
	c := calls[0]
	h := c.Header
	if got := h.Get("ce-specversion"); got != "1.0" {
		t.Errorf("ce-specversion = %q, want 1.0", got)
	}
	if c.ID != id {
		t.Errorf("ce-id = %q, want the task id %s", c.ID, id)
	}
	for _, name := range []string{"ce-source", "ce-type"} {
		if h.Get(name) == "" {
			t.Errorf("%s is missing", name)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, h.Get("ce-time")); err != nil {
		t.Errorf("ce-time %q is not RFC 3339: %v", h.Get("ce-time"), err)
	}
	if c.Hops != "1" || c.Attempt != "1" {
		t.Errorf("Ferry-Hops %q, Ferry-Attempt %q; want 1 and 1", c.Hops, c.Attempt)
	}
	if !traceParentRE.MatchString(c.TraceParent) {
		t.Errorf("traceparent %q is not a valid W3C traceparent", c.TraceParent)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("backend Content-Type = %q, want the submitted application/json", ct)
	}
	if string(c.Body) != payload {
		t.Errorf("backend body = %q, want %q", c.Body, payload)
	}

	// The success webhook: one delivery, validly signed (the receiver
	// refuses and reports others), with the pinned fields.
	f.waitDelivered(t, id)
	hooks := rc.Deliveries(id)
	if len(hooks) != 1 {
		t.Fatalf("webhook received %d deliveries for %s, want 1", len(hooks), id)
	}
	wh := hooks[0]
	want := map[string]any{
		"type": "ferry.task.succeeded", "id": id, "tenant": "acme", "function": "echo",
		"status": "succeeded", "attempts": 1.0, "hops": 1.0, "source": h.Get("ce-source"),
	}
	for k, w := range want {
		if wh.Body[k] != w {
			t.Errorf("webhook %s = %#v, want %#v", k, wh.Body[k], w)
		}
	}
	out, _ := json.Marshal(wh.Body["output"])
	if !sameJSON(out, []byte(payload)) {
		t.Errorf("webhook output = %s, want %s", out, payload)
	}
	if ts, _ := wh.Body["time"].(string); ts == "" {
		t.Errorf("webhook time is missing")
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("webhook time %q: %v", ts, err)
	}
	if wh.WebhookID == "" {
		t.Errorf("webhook-id is empty")
	}

	// A traceparent sent on submit reaches the backend in the same trace.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	id2 := f.submitOK(t, "echo", `{"traced": true}`, map[string]string{
		"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01",
	})
	if v := f.waitFinal(t, id2); v.Status != "succeeded" {
		t.Fatalf("traced task: %+v, want succeeded", v)
	}
	calls = be.callsFor(id2)
	if len(calls) != 1 {
		t.Fatalf("backend saw the traced task %d times, want 1", len(calls))
	}
	m := traceParentRE.FindStringSubmatch(calls[0].TraceParent)
	if m == nil || m[1] != traceID {
		t.Errorf("backend traceparent %q, want trace id %s", calls[0].TraceParent, traceID)
	}
	if tp0 := traceParentRE.FindStringSubmatch(c.TraceParent); tp0 != nil && tp0[1] == traceID {
		t.Errorf("the untraced task got the other task's trace id")
	}

	// The operational endpoints take no key.
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n", "/metrics": "ferry_api_submissions_total"} {
		r := f.mustDo(t, http.MethodGet, path, nil, map[string]string{"Authorization": ""})
		if r.status != http.StatusOK || !strings.Contains(string(r.body), want) {
			t.Errorf("GET %s: status %d, body %.200q; want 200 with %q", path, r.status, r.body, want)
		}
	}
}

func TestIdempotencyDelayCancelList(t *testing.T) {
	t.Parallel()
	be := newBackend(t, nil)
	fnYAML := func(name string) string {
		return fmt.Sprintf("  - { name: %s, tenant: acme, backend: { http: { url: %q } } }\n", name, be.URL())
	}
	f := startFerry(t, `
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
`+fnYAML("idem")+fnYAML("later")+fnYAML("listed"))
	f.key = "acme-key"

	t.Run("Idempotency", func(t *testing.T) {
		hdr := map[string]string{"Idempotency-Key": "order-7"}
		id1 := f.submitOK(t, "idem", `{"n": 1}`, hdr)
		id2 := replayID(t, f, hdr)
		if id1 != id2 {
			t.Fatalf("same Idempotency-Key gave ids %s and %s, want one task", id1, id2)
		}
		if v := f.waitFinal(t, id1); v.Status != "succeeded" {
			t.Fatalf("task %+v, want succeeded", v)
		}
		// Replayed after the task finished: still the same task.
		if id3 := replayID(t, f, hdr); id3 != id1 {
			t.Fatalf("replay after completion gave id %s, want %s", id3, id1)
		}
		// The same key for another function is a conflict, not a task
		// (the unfiltered list in List counts what was stored).
		r := f.submit(t, "later", `{"n": 1}`, hdr)
		if r.status != http.StatusConflict {
			t.Errorf("same Idempotency-Key on another function: status %d, want 409: %s", r.status, r.body)
		} else if _, err := errBody(r); err != nil {
			t.Error(err)
		}
		if n := len(be.callsFor(id1)); n != 1 {
			t.Errorf("backend called %d times, want 1", n)
		}
		if ids := listIDs(t, f, "function=idem", 100); len(ids) != 1 {
			t.Errorf("function idem has %d tasks, want 1: %v", len(ids), ids)
		}
	})

	t.Run("Delay", func(t *testing.T) {
		before := time.Now()
		id := f.submitOK(t, "later", `{"delayed": true}`, map[string]string{"Ferry-Delay": "1s"})
		if v := f.waitFinal(t, id); v.Status != "succeeded" {
			t.Fatalf("task %+v, want succeeded", v)
		}
		calls := be.callsFor(id)
		if len(calls) != 1 {
			t.Fatalf("backend saw the delayed task %d times, want 1", len(calls))
		}
		if d := calls[0].Start.Sub(before); d < time.Second {
			t.Errorf("the delayed task ran %s after submission, want >= 1s", d)
		}
	})

	var cancelled string
	t.Run("Cancel", func(t *testing.T) {
		cancelled = f.submitOK(t, "later", `{"never": true}`, map[string]string{"Ferry-Delay": "1h"})
		r := f.mustDo(t, http.MethodDelete, "/v1/tasks/"+cancelled, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("DELETE queued task: status %d, want 200: %s", r.status, r.body)
		}
		if v := r.task(t); v.Status != "cancelled" || v.ID != cancelled {
			t.Fatalf("DELETE answer %s, want the task with status cancelled", r.body)
		}
		r = f.mustDo(t, http.MethodDelete, "/v1/tasks/"+cancelled, nil, nil)
		if r.status != http.StatusConflict {
			t.Fatalf("second DELETE: status %d, want 409: %s", r.status, r.body)
		}
		if _, err := errBody(r); err != nil {
			t.Errorf("second DELETE: %v", err)
		}
		if v := f.get(t, cancelled); v.Status != "cancelled" {
			t.Fatalf("GET after cancel: status %s, want cancelled", v.Status)
		}
	})

	t.Run("List", func(t *testing.T) {
		want := map[string]bool{}
		for i := range 5 {
			want[f.submitOK(t, "listed", fmt.Sprintf(`{"i": %d}`, i), nil)] = false
		}
		for id := range want {
			if v := f.waitFinal(t, id); v.Status != "succeeded" {
				t.Fatalf("task %+v, want succeeded", v)
			}
		}
		ids := listIDs(t, f, "function=listed", 2)
		for _, id := range ids {
			seen, ok := want[id]
			if !ok {
				t.Errorf("list of function listed returned a foreign task %s", id)
			}
			if seen {
				t.Errorf("list returned task %s twice", id)
			}
			want[id] = true
		}
		for id, seen := range want {
			if !seen {
				t.Errorf("list never returned task %s", id)
			}
		}
		if got := listIDs(t, f, "function=listed&status=succeeded", 2); len(got) != 5 {
			t.Errorf("status=succeeded&function=listed: %d tasks, want 5", len(got))
		}
		if got := listIDs(t, f, "function=listed&status=queued", 2); len(got) != 0 {
			t.Errorf("status=queued&function=listed: %v, want none", got)
		}
		if got := listIDs(t, f, "status=cancelled", 100); len(got) != 1 || got[0] != cancelled {
			t.Errorf("status=cancelled: %v, want only %s", got, cancelled)
		}
		if got := listIDs(t, f, "", 100); len(got) != 5+1+2 {
			t.Errorf("unfiltered list: %d tasks, want 8 (5 listed, 1 idem, 2 later)", len(got))
		}
	})

	// The cancelled task never reached the backend.
	if n := len(be.callsFor(cancelled)); n != 0 {
		t.Errorf("backend saw the cancelled task %d times, want 0", n)
	}
}

// replayID submits to idem again with hdr and returns the id answered (the
// existing task, in whatever state it is now).
func replayID(t *testing.T, f *ferryProc, hdr map[string]string) string {
	t.Helper()
	r := f.submit(t, "idem", `{"n": 1}`, hdr)
	if r.status != http.StatusAccepted {
		t.Fatalf("replayed submit: status %d, want 202: %s", r.status, r.body)
	}
	v := r.task(t)
	if loc := r.header.Get("Location"); loc != "/v1/tasks/"+v.ID {
		t.Fatalf("replayed submit: Location %q, want /v1/tasks/%s", loc, v.ID)
	}
	return v.ID
}

// listIDs pages through GET /v1/tasks?query with limit, following
// next_cursor until it is empty, and checks each page's filters.
func listIDs(t *testing.T, f *ferryProc, query string, limit int) []string {
	t.Helper()
	var ids []string
	for _, v := range listTasks(t, f, query, limit) {
		ids = append(ids, v.ID)
	}
	return ids
}

// listTasks is listIDs returning the tasks.
func listTasks(t *testing.T, f *ferryProc, query string, limit int) []taskView {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	var tasks []taskView
	cursor := ""
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatalf("list %q: more than 100 pages", query)
		}
		q.Set("limit", fmt.Sprint(limit))
		q.Set("cursor", cursor)
		r := f.mustDo(t, http.MethodGet, "/v1/tasks?"+q.Encode(), nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("list %q: status %d: %s", query, r.status, r.body)
		}
		var l struct {
			Tasks      []taskView `json:"tasks"`
			NextCursor *string    `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &l); err != nil || l.NextCursor == nil || l.Tasks == nil {
			t.Fatalf("list %q: want {tasks: [...], next_cursor: ...}, got %s (%v)", query, r.body, err)
		}
		if len(l.Tasks) > limit {
			t.Fatalf("list %q: %d tasks on a page, over limit %d", query, len(l.Tasks), limit)
		}
		for _, v := range l.Tasks {
			if fn := q.Get("function"); fn != "" && v.Function != fn {
				t.Errorf("list %q returned task %s of function %s", query, v.ID, v.Function)
			}
			if st := q.Get("status"); st != "" && v.Status != st {
				t.Errorf("list %q returned task %s with status %s", query, v.ID, v.Status)
			}
			tasks = append(tasks, v)
		}
		if *l.NextCursor == "" {
			return tasks
		}
		if strings.TrimSpace(*l.NextCursor) == cursor {
			t.Fatalf("list %q: next_cursor did not move", query)
		}
		cursor = *l.NextCursor
	}
}
