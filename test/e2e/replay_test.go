package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ferrydev/ferry/test/ferrytest"
)

func TestReplay(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	broken.Store(true)
	be := newBackend(t, func(c *call, _ int) reply {
		if broken.Load() {
			return reply{Status: http.StatusInternalServerError, Body: []byte("database down")}
		}
		return echo(c)
	})
	rc := ferrytest.NewReceiver(t)
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: acme, api_keys: [acme-key] }
  - { name: other, api_keys: [other-key] }
functions:
  - name: work
    tenant: acme
    backend: { http: { url: %q, timeout: 5s } }
    retry: { max_attempts: 2, initial_interval: 10ms, max_interval: 50ms }
    destinations:
      on_failure: [ %s ]
`, be.URL(), rc.YAML()))
	f.key = "acme-key"
	replay := func(id string, hdr map[string]string) response {
		return f.mustDo(t, http.MethodPost, "/v1/tasks/"+id+"/replay", nil, hdr)
	}
	// The failure's delivery is refused until the replay has been tried
	// while it is pending.
	rc.RefuseFirst(1 << 30)

	const payload = `{"order": 7, "lines": [1, 2]}`
	id := f.submitOK(t, "work", payload, nil)
	if v := f.waitFinal(t, id); v.Status != "failed" {
		t.Fatalf("task %+v, want failed while the backend fails", v)
	}

	t.Run("ListedAsFailed", func(t *testing.T) {
		var got *taskView
		for _, v := range listTasks(t, f, "status=failed", 100) {
			if v.ID == id {
				got = &v
			}
		}
		if got == nil {
			t.Fatalf("GET /v1/tasks?status=failed does not list task %s", id)
		}
		if got.Attempts != 2 || got.Error == nil || got.Error.Code != "retries_exhausted" {
			t.Errorf("listed task %+v (error %+v), want attempts 2 and error retries_exhausted", *got, got.Error)
		}
		if got.LastError == nil || got.LastError.Code == "" {
			t.Errorf("listed task has last_error %+v, want the last attempt's error", got.LastError)
		}
	})

	t.Run("WhileDeliveryPending", func(t *testing.T) {
		r := replay(id, nil)
		if r.status != http.StatusConflict {
			t.Fatalf("replay with the on_failure delivery pending: status %d, want 409: %s", r.status, r.body)
		}
		if _, err := errBody(r); err != nil {
			t.Error(err)
		}
	})
	rc.RefuseFirst(0)
	f.waitDelivered(t, id)

	t.Run("FailureRecord", func(t *testing.T) {
		var body map[string]any
		for _, d := range rc.Deliveries(id) {
			if !d.Refused {
				body = d.Body
			}
		}
		if body == nil {
			t.Fatalf("on_failure webhook never accepted an outcome of %s", id)
		}
		if body["type"] != "ferry.task.failed" || body["attempts"] != 2.0 {
			t.Errorf("webhook body %v: want type ferry.task.failed, attempts 2", body)
		}
		rctx, _ := body["request_context"].(map[string]any)
		want := map[string]any{"request_id": id, "condition": "retries_exhausted", "attempts": 2.0, "last_status": 500.0}
		for k, w := range want {
			if rctx[k] != w {
				t.Errorf("request_context.%s = %#v, want %#v (request_context: %v)", k, rctx[k], w, rctx)
			}
		}
		got, _ := json.Marshal(body["request_payload"])
		if !sameJSON(got, []byte(payload)) {
			t.Errorf("request_payload = %s, want the submitted %s", got, payload)
		}
	})

	broken.Store(false)

	t.Run("OtherTenant", func(t *testing.T) {
		r := replay(id, map[string]string{"Authorization": "Bearer other-key"})
		if r.status != http.StatusNotFound {
			t.Fatalf("another tenant's replay: status %d, want 404: %s", r.status, r.body)
		}
		if e, err := errBody(r); err != nil || e.Code != "task_not_found" {
			t.Errorf("another tenant's replay: error %+v (%v), want code task_not_found", e, err)
		}
		if v := f.get(t, id); v.Status != "failed" {
			t.Errorf("task is %s after another tenant's replay, want still failed", v.Status)
		}
	})

	t.Run("UnknownTask", func(t *testing.T) {
		r := replay("01a20742-e6a4-7747-8bda-488614f9a034", nil)
		if r.status != http.StatusNotFound {
			t.Fatalf("replay of an unknown task: status %d, want 404: %s", r.status, r.body)
		}
	})

	t.Run("Owner", func(t *testing.T) {
		r := replay(id, nil)
		if r.status != http.StatusOK {
			t.Fatalf("replay: status %d, want 200: %s", r.status, r.body)
		}
		if v := r.task(t); v.ID != id || v.Status != "queued" || v.Attempts != 0 || v.Error != nil {
			t.Fatalf("replay answer %s, want the task queued with attempts 0 and no error", r.body)
		}
		v := f.waitFinal(t, id)
		if v.Status != "succeeded" || v.Attempts != 1 || v.Replays != 1 {
			t.Fatalf("replayed task %+v, want succeeded after 1 attempt, replays 1", v)
		}
		if !sameJSON(v.Output, []byte(payload)) {
			t.Errorf("output %s, want the payload %s", v.Output, payload)
		}
		calls := be.callsFor(id)
		if len(calls) != 3 {
			t.Fatalf("backend saw task %s %d times, want 3 (2 failed, 1 after the replay)", id, len(calls))
		}
		if string(calls[2].Body) != payload || calls[2].Attempt != "1" {
			t.Errorf("replayed call: body %q, Ferry-Attempt %q; want the payload and attempt 1", calls[2].Body, calls[2].Attempt)
		}
		// A success is not an on_failure outcome.
		if n := len(rc.Outcomes()); n != 1 {
			t.Errorf("on_failure received %d outcomes, want only the first failure", n)
		}
	})

	t.Run("Succeeded", func(t *testing.T) {
		r := replay(id, nil)
		if r.status != http.StatusConflict {
			t.Fatalf("replay of a succeeded task: status %d, want 409: %s", r.status, r.body)
		}
		if _, err := errBody(r); err != nil {
			t.Error(err)
		}
		if v := f.get(t, id); v.Status != "succeeded" || v.Replays != 1 {
			t.Errorf("task %+v after a refused replay, want still succeeded, replays 1", v)
		}
	})
}
