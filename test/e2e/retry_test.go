package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// modeBackend answers by the payload's "mode" field: flaky (500 twice, then
// echo), reject (400), down (503), slowdown (503 + Retry-After: 2 once, then
// echo); anything else is echoed.
func modeBackend(c *call, n int) reply {
	var p struct {
		Mode string `json:"mode"`
	}
	_ = json.Unmarshal(c.Body, &p)
	switch {
	case p.Mode == "flaky" && n <= 2:
		return reply{Status: http.StatusInternalServerError, Body: []byte("try again")}
	case p.Mode == "reject":
		return reply{Status: http.StatusBadRequest, Body: []byte("bad input")}
	case p.Mode == "down":
		return reply{Status: http.StatusServiceUnavailable, Body: []byte("down")}
	case p.Mode == "slowdown" && n == 1:
		return reply{Status: http.StatusServiceUnavailable, Header: map[string]string{"Retry-After": "2"}}
	}
	return echo(c)
}

func TestRetries(t *testing.T) {
	t.Parallel()
	be := newBackend(t, modeBackend)
	rc := ferrytest.NewReceiver(t)
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
  - name: work
    tenant: acme
    backend: { http: { url: %q, timeout: 5s } }
    retry: { max_attempts: 3, initial_interval: 50ms, max_interval: 5s }
    destinations:
      on_failure: [ %s ]
`, be.URL(), rc.YAML()))
	f.key = "acme-key"

	// Submit all four first so that they run side by side.
	ids := map[string]string{}
	for _, mode := range []string{"flaky", "reject", "down", "slowdown"} {
		ids[mode] = f.submitOK(t, "work", `{"mode": "`+mode+`"}`, nil)
	}

	t.Run("FlakyThenSucceeds", func(t *testing.T) {
		id := ids["flaky"]
		v := f.waitFinal(t, id)
		if v.Status != "succeeded" || v.Attempts != 3 {
			t.Fatalf("task %+v, want succeeded after 3 attempts", v)
		}
		calls := be.callsFor(id)
		if len(calls) != 3 {
			t.Fatalf("backend saw %d calls, want 3", len(calls))
		}
		for i, c := range calls {
			if c.Attempt != strconv.Itoa(i+1) {
				t.Errorf("call %d: Ferry-Attempt %q, want %d", i+1, c.Attempt, i+1)
			}
			if c.ID != id {
				t.Errorf("call %d: ce-id %q, want %s (the same on every retry)", i+1, c.ID, id)
			}
		}
		if len(rc.Deliveries(id)) != 0 {
			t.Errorf("a succeeded task went to on_failure")
		}
	})

	t.Run("PermanentFailure", func(t *testing.T) {
		id := ids["reject"]
		v := f.waitFinal(t, id)
		if v.Status != "failed" || v.Attempts != 1 {
			t.Fatalf("task %+v, want failed after 1 attempt", v)
		}
		if v.Error == nil || v.Error.Code != "rejected" || v.Error.HTTPStatus != 400 || v.Error.Message == "" {
			t.Errorf("error %+v, want code rejected, http_status 400 and a message", v.Error)
		}
		if n := len(be.callsFor(id)); n != 1 {
			t.Errorf("backend saw %d calls, want 1 (a 400 is not retried)", n)
		}
	})

	t.Run("RetriesExhausted", func(t *testing.T) {
		id := ids["down"]
		v := f.waitFinal(t, id)
		if v.Status != "failed" || v.Attempts != 3 {
			t.Fatalf("task %+v, want failed after 3 attempts", v)
		}
		if v.Error == nil || v.Error.Code != "retries_exhausted" {
			t.Errorf("error %+v, want code retries_exhausted", v.Error)
		}
		if n := len(be.callsFor(id)); n != 3 {
			t.Errorf("backend saw %d calls, want 3", n)
		}
		f.waitDelivered(t, id)
		hooks := rc.Deliveries(id)
		if len(hooks) != 1 {
			t.Fatalf("on_failure webhook received %d times, want 1", len(hooks))
		}
		b := hooks[0].Body
		if b["type"] != "ferry.task.failed" || b["status"] != "failed" || b["attempts"] != 3.0 {
			t.Errorf("webhook body %s: want type ferry.task.failed, status failed, attempts 3", hooks[0].Raw)
		}
		if e, _ := b["error"].(map[string]any); e == nil || e["code"] != "retries_exhausted" {
			t.Errorf("webhook error %v, want code retries_exhausted", b["error"])
		}
	})

	t.Run("RetryAfter", func(t *testing.T) {
		id := ids["slowdown"]
		v := f.waitFinal(t, id)
		if v.Status != "succeeded" || v.Attempts != 2 {
			t.Fatalf("task %+v, want succeeded after 2 attempts", v)
		}
		calls := be.callsFor(id)
		if len(calls) != 2 {
			t.Fatalf("backend saw %d calls, want 2", len(calls))
		}
		if gap := calls[1].Start.Sub(calls[0].Start); gap < 2*time.Second {
			t.Errorf("second attempt started %s after the first, want >= 2s (Retry-After: 2)", gap)
		} else {
			t.Logf("Retry-After: 2 honoured: second attempt %s after the first", gap.Round(time.Millisecond))
		}
	})
}

func TestLoopGuard(t *testing.T) {
	t.Parallel()
	be := newBackend(t, nil)
	rc := ferrytest.NewReceiver(t)
	rc.RefuseFirst(1) // the outcome is redelivered, with the same webhook-id
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
loop_guard: { max_hops: 16 }
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
  - name: relay
    tenant: acme
    backend: { http: { url: %q } }
    retry: { max_attempts: 3, initial_interval: 50ms }
    destinations:
      on_failure: [ %s ]
`, be.URL(), rc.YAML()))
	f.key = "acme-key"

	looped := f.submitOK(t, "relay", `{"hop": "last"}`, map[string]string{"Ferry-Hops": "16"})
	ok := f.submitOK(t, "relay", `{"hop": "15"}`, map[string]string{"Ferry-Hops": "15"})

	v := f.waitFinal(t, looped)
	if v.Status != "failed" || v.Attempts != 0 || v.Error == nil || v.Error.Code != "loop_detected" {
		t.Fatalf("task with 16 hops: %+v (error %+v), want failed, loop_detected, 0 attempts", v, v.Error)
	}
	dv := f.waitDelivered(t, looped)
	hooks := rc.Deliveries(looped)
	if len(hooks) != 2 || !hooks[0].Refused || hooks[1].Refused {
		t.Fatalf("on_failure webhook received %d times, want 2 (the first refused, then redelivered)", len(hooks))
	}
	if hooks[0].WebhookID != hooks[1].WebhookID || string(hooks[0].Raw) != string(hooks[1].Raw) {
		t.Errorf("redelivery changed webhook-id (%s, %s) or body", hooks[0].WebhookID, hooks[1].WebhookID)
	}
	if dv.Deliveries[0].Attempts != 2 {
		t.Errorf("delivery attempts = %d, want 2", dv.Deliveries[0].Attempts)
	}
	b := hooks[1].Body
	if b["type"] != "ferry.task.failed" || b["hops"] != 17.0 || b["attempts"] != 0.0 {
		t.Errorf("webhook body %s: want type ferry.task.failed, hops 17, attempts 0", hooks[1].Raw)
	}
	if e, _ := b["error"].(map[string]any); e == nil || e["code"] != "loop_detected" {
		t.Errorf("webhook error %v, want code loop_detected", b["error"])
	}
	if hooks[1].Hops != "17" {
		t.Errorf("webhook Ferry-Hops header %q, want 17", hooks[1].Hops)
	}

	v = f.waitFinal(t, ok)
	if v.Status != "succeeded" || v.Attempts != 1 {
		t.Fatalf("task with 15 hops: %+v, want succeeded after 1 attempt", v)
	}
	calls := be.callsFor(ok)
	if len(calls) != 1 || calls[0].Hops != "16" {
		t.Fatalf("backend calls for the 15-hop task: %d (hops %v), want 1 with Ferry-Hops 16", len(calls), hopsOf(calls))
	}
	if n := len(be.callsFor(looped)); n != 0 {
		t.Errorf("backend saw the looping task %d times, want 0", n)
	}
	if len(rc.Deliveries(ok)) != 0 {
		t.Errorf("the succeeded task went to on_failure")
	}
}

func hopsOf(calls []call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.Hops
	}
	return out
}
