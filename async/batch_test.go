package async_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

// batchOf builds a batch body of n tasks with payload {"n": i}.
func batchOf(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"payload": {"n": %d}}`, i)
	}
	return `{"tasks": [` + strings.Join(items, ",") + `]}`
}

func answers(t *testing.T, r apiReply) []map[string]any {
	t.Helper()
	raw, _ := r.body["tasks"].([]any)
	out := make([]map[string]any, len(raw))
	for i, a := range raw {
		out[i], _ = a.(map[string]any)
	}
	return out
}

func TestBatchSubmit(t *testing.T) {
	srv, q := newAPI(t)
	ctx := context.Background()
	before := time.Now()
	r := call(t, srv, "POST", "/v1/functions/f/tasks/batch", "key-a", `{"tasks": [
		{"payload": {"order": 1}},
		{"payload_base64": "AAEC/w==", "idempotency_key": "k1"},
		{"payload": "text", "idempotency_key": "k1"},
		{"payload": null, "delay": "1h"}
	]}`, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("batch = %d %v", r.status, r.body)
	}
	got := answers(t, r)
	if len(got) != 4 {
		t.Fatalf("%d answers, want 4: %v", len(got), r.body)
	}
	for i, a := range got {
		if a["status"] != "queued" || a["id"] == nil || a["error"] != nil {
			t.Fatalf("answer %d = %v, want a queued task", i, a)
		}
	}
	if got[1]["id"] != got[2]["id"] {
		t.Errorf("the key used twice gave tasks %v and %v, want one", got[1]["id"], got[2]["id"])
	}
	wantStored := []struct {
		payload, contentType string
	}{{`{"order": 1}`, "application/json"}, {"\x00\x01\x02\xff", "application/octet-stream"}, {"", ""}, {"null", "application/json"}}
	for i, w := range wantStored {
		if w.contentType == "" {
			continue
		}
		task, err := q.Get(ctx, "a", got[i]["id"].(string))
		if err != nil || string(task.Payload) != w.payload || task.ContentType != w.contentType || task.Function != "f" {
			t.Errorf("task %d stored as %+v, %v; want payload %q (%s)", i, task, err, w.payload, w.contentType)
		}
	}
	if at, err := time.Parse(time.RFC3339Nano, got[3]["scheduled_at"].(string)); err != nil || at.Before(before.Add(time.Hour)) {
		t.Errorf("delayed task scheduled at %v (%v), want an hour from now", got[3]["scheduled_at"], err)
	}

	// Tenant a has max_queued 3 and three tasks now: the next batch's tasks
	// fail alone, in place.
	r = call(t, srv, "POST", "/v1/functions/f/tasks/batch", "key-a", batchOf(2), nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("batch over quota = %d %v", r.status, r.body)
	}
	for i, a := range answers(t, r) {
		e, _ := a["error"].(map[string]any)
		if e["code"] != "quota_exceeded" || e["message"] == "" || a["id"] != nil {
			t.Errorf("answer %d over quota = %v, want error quota_exceeded", i, a)
		}
	}
}

func TestBatchSubmitRefusedWhole(t *testing.T) {
	srv, q := newAPI(t)
	tests := []struct {
		name, key, path, body string
		status                int
		code                  string
	}{
		{"NotJSON", "key-a", "", `{"tasks": [`, 400, "bad_body"},
		{"NoTasks", "key-a", "", `{"tasks": []}`, 400, "bad_body"},
		{"TasksMissing", "key-a", "", `{}`, 400, "bad_body"},
		{"UnknownField", "key-a", "", `{"tasks": [{"payload": 1, "dealy": "1s"}]}`, 400, "bad_body"},
		{"TrailingValue", "key-a", "", `{"tasks": [{"payload": 1}]} {}`, 400, "bad_body"},
		{"NoPayload", "key-a", "", `{"tasks": [{"payload": 1}, {"idempotency_key": "x"}]}`, 400, "bad_body"},
		{"BothPayloads", "key-a", "", `{"tasks": [{"payload": 1, "payload_base64": "AA=="}]}`, 400, "bad_body"},
		{"BadBase64", "key-a", "", `{"tasks": [{"payload_base64": "%%%"}]}`, 400, "bad_body"},
		{"BadDelay", "key-a", "", `{"tasks": [{"payload": 1}, {"payload": 2, "delay": "soon"}]}`, 400, "bad_delay"},
		{"LongKey", "key-a", "", `{"tasks": [{"payload": 1, "idempotency_key": "` + strings.Repeat("k", 256) + `"}]}`, 400, "bad_idempotency_key"},
		{"TooManyTasks", "key-a", "", batchOf(async.MaxBatch + 1), 400, "batch_too_large"},
		{"PayloadTooLarge", "key-a", "", `{"tasks": [{"payload": 1}, {"payload": "` + strings.Repeat("x", 1100) + `"}]}`, 413, "payload_too_large"},
		{"UnknownFunction", "key-a", "/v1/functions/zz/tasks/batch", batchOf(1), 404, "function_not_found"},
		{"NoKey", "", "", batchOf(1), 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/v1/functions/f/tasks/batch"
			}
			r := call(t, srv, "POST", path, tt.key, tt.body, nil)
			if r.status != tt.status || errCode(r) != tt.code {
				t.Fatalf("got %d %s (%v), want %d %s", r.status, errCode(r), r.body, tt.status, tt.code)
			}
		})
	}
	list, _, err := q.List(context.Background(), async.ListOptions{Tenant: "a"})
	if err != nil || len(list) != 0 {
		t.Fatalf("refused batches stored %d tasks (%v)", len(list), err)
	}
	// The largest batch is accepted whole.
	srvB, _ := newAPI(t)
	r := call(t, srvB, "POST", "/v1/functions/g/tasks/batch", "key-b", batchOf(async.MaxBatch), nil)
	if n := len(answers(t, r)); r.status != http.StatusAccepted || n != async.MaxBatch {
		t.Fatalf("batch of %d = %d with %d answers", async.MaxBatch, r.status, n)
	}
	seen := map[any]bool{}
	for _, a := range answers(t, r) {
		seen[a["id"]] = a["status"] == "queued"
	}
	if len(seen) != async.MaxBatch || seen[nil] {
		t.Fatalf("a batch of %d gave %d distinct queued tasks", async.MaxBatch, len(seen))
	}
}
