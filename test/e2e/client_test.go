package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/apispec"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// response is an API answer.
type response struct {
	status int
	body   []byte
	header http.Header
}

// taskView is the API's JSON form of a task (the fields the tests check).
type taskView struct {
	ID         string          `json:"id"`
	Function   string          `json:"function"`
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	Replays    int             `json:"replays"`
	Hops       int             `json:"hops"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Output     json.RawMessage `json:"output"`
	Error      *apiError       `json:"error"`
	LastError  *apiError       `json:"last_error"`
	Deliveries []struct {
		Destination string `json:"destination"`
		Kind        string `json:"kind"`
		State       string `json:"state"`
		Attempts    int    `json:"attempts"`
	} `json:"deliveries"`
}

type apiError struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	HTTPStatus int    `json:"http_status"`
}

func (r response) task(t *testing.T) taskView {
	t.Helper()
	var v taskView
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("answer %d is not a task: %v: %s", r.status, err, r.body)
	}
	return v
}

// as returns a client of the same process whose requests carry key. Use
// it, rather than changing f.key, to act as several tenants at once.
func (f *ferryProc) as(key string) *ferryProc {
	c := *f
	c.key = key
	return &c
}

// do sends one API request. hdr may set Authorization; an empty value
// removes it; without it the request carries the proc's default key.
func (f *ferryProc) do(method, path string, body []byte, hdr map[string]string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx := context.Background()
	if f.malformed {
		ctx = apispec.Malformed(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.URL(path), rd)
	if err != nil {
		return response{}, err
	}
	if f.key != "" {
		req.Header.Set("Authorization", "Bearer "+f.key)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, body: b, header: resp.Header}, nil
}

func (f *ferryProc) mustDo(t *testing.T, method, path string, body []byte, hdr map[string]string) response {
	t.Helper()
	r, err := f.do(method, path, body, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// submit posts a task; a JSON body gets Content-Type application/json
// unless hdr sets one.
func (f *ferryProc) submit(t *testing.T, fn, body string, hdr map[string]string) response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range hdr {
		h[k] = v
	}
	return f.mustDo(t, http.MethodPost, "/v1/functions/"+fn+"/tasks", []byte(body), h)
}

// submitOK submits and asserts 202 with a Location naming the new id.
func (f *ferryProc) submitOK(t *testing.T, fn, body string, hdr map[string]string) string {
	t.Helper()
	r := f.submit(t, fn, body, hdr)
	if r.status != http.StatusAccepted {
		t.Fatalf("submit to %s: status %d, want 202: %s", fn, r.status, r.body)
	}
	v := r.task(t)
	if v.ID == "" || v.Status != "queued" {
		t.Fatalf("submit to %s: answer %s, want an id and status queued", fn, r.body)
	}
	if loc := r.header.Get("Location"); loc != "/v1/tasks/"+v.ID {
		t.Fatalf("submit to %s: Location %q, want /v1/tasks/%s", fn, loc, v.ID)
	}
	return v.ID
}

func (f *ferryProc) get(t *testing.T, id string) taskView {
	t.Helper()
	r := f.mustDo(t, http.MethodGet, "/v1/tasks/"+id, nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET task %s: status %d: %s", id, r.status, r.body)
	}
	return r.task(t)
}

// waitFinal polls the task until it is succeeded, failed or cancelled.
func (f *ferryProc) waitFinal(t *testing.T, id string) taskView {
	t.Helper()
	var v taskView
	ferrytest.WaitFor(t, 30*time.Second, "task "+id+" to finish", func() bool {
		v = f.get(t, id)
		return v.Status == "succeeded" || v.Status == "failed" || v.Status == "cancelled"
	})
	return v
}

// waitDelivered polls the task until every delivery of its outcome is in
// state delivered.
func (f *ferryProc) waitDelivered(t *testing.T, id string) taskView {
	t.Helper()
	var v taskView
	ferrytest.WaitFor(t, 30*time.Second, "the outcome of task "+id+" to be delivered", func() bool {
		v = f.get(t, id)
		if len(v.Deliveries) == 0 {
			return false
		}
		for _, d := range v.Deliveries {
			if d.State != "delivered" {
				return false
			}
		}
		return true
	})
	return v
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// errBody decodes the pinned error body and checks it has a code and a
// message.
func errBody(r response) (apiError, error) {
	var e struct {
		Error *apiError `json:"error"`
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return apiError{}, fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		return apiError{}, fmt.Errorf("body is not JSON: %v: %s", err, r.body)
	}
	if e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		return apiError{}, errors.New("body lacks error.code or error.message: " + string(r.body))
	}
	return *e.Error, nil
}
