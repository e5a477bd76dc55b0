package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBatchSubmit: a batch submitted in one request runs every task once,
// with the payload each item gave, and answers in the order given.
func TestBatchSubmit(t *testing.T) {
	t.Parallel()
	be := newBackend(t, nil)
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
  - name: echo
    tenant: acme
    backend: { http: { url: %q, timeout: 10s } }
`, be.URL()))
	f.key = "acme-key"

	const n = 300
	items := make([]string, 0, n+2)
	for i := range n {
		items = append(items, fmt.Sprintf(`{"payload": {"n": %d}, "idempotency_key": "k%d"}`, i, i))
	}
	raw := []byte{0, 1, 2, 0xff}
	items = append(items,
		`{"payload_base64": "`+base64.StdEncoding.EncodeToString(raw)+`"}`,
		`{"payload": {"n": 0}, "idempotency_key": "k0"}`) // a duplicate of the first
	r := f.mustDo(t, http.MethodPost, "/v1/functions/echo/tasks/batch",
		[]byte(`{"tasks": [`+strings.Join(items, ",")+`]}`), map[string]string{"Content-Type": "application/json"})
	if r.status != http.StatusAccepted {
		t.Fatalf("batch: status %d, want 202: %.300s", r.status, r.body)
	}
	var ans struct {
		Tasks []taskView `json:"tasks"`
	}
	if err := json.Unmarshal(r.body, &ans); err != nil || len(ans.Tasks) != n+2 {
		t.Fatalf("batch answer: %d tasks (%v), want %d", len(ans.Tasks), err, n+2)
	}
	if ans.Tasks[n+1].ID != ans.Tasks[0].ID {
		t.Errorf("the repeated idempotency key gave task %s, want %s", ans.Tasks[n+1].ID, ans.Tasks[0].ID)
	}
	for i, v := range ans.Tasks[:n+1] {
		if v.ID == "" || v.Status != "queued" {
			t.Fatalf("answer %d: %+v, want a queued task", i, v)
		}
		if fin := f.waitFinal(t, v.ID); fin.Status != "succeeded" {
			t.Fatalf("task %d: %+v (error %+v), want succeeded", i, fin, fin.Error)
		}
		calls := be.callsFor(v.ID)
		if len(calls) != 1 {
			t.Fatalf("task %d ran %d times, want once", i, len(calls))
		}
		want := fmt.Sprintf(`{"n": %d}`, i)
		if i == n {
			want = string(raw)
		}
		if string(calls[0].Body) != want {
			t.Errorf("task %d: backend got %q, want %q", i, calls[0].Body, want)
		}
	}
	t.Logf("N=%d tasks in one batch, each run once", n+1)
}
