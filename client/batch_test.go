package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

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
