package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	"github.com/pb33f/libopenapi/orderedmap"
)

var docPath = filepath.Join("..", "..", "docs", "openapi.yaml")

var (
	loadOnce sync.Once
	loaded   *Spec
	loadErr  error
)

func load(t *testing.T) *Spec {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = Load(docPath) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

// TestDocumentIsValid: docs/openapi.yaml is OpenAPI 3.1 and valid against
// its schema.
func TestDocumentIsValid(t *testing.T) {
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Errorf("openapi: %q, want 3.1.0", v)
	}
	for _, p := range load(t).Problems() {
		t.Error(p)
	}
}

// TestDocumentProblems: a document that is not valid OpenAPI 3.1 is
// reported, so TestDocumentIsValid can fail.
func TestDocumentProblems(t *testing.T) {
	s, err := Parse([]byte(`openapi: 3.1.0
info: { title: broken, version: v1 }
paths:
  /x:
    get:
      responses:
        '200': { content: { application/json: { schema: { type: object } } } }
components:
  schemas:
    Error: { type: object }
`))
	if err != nil {
		t.Fatal(err)
	}
	p := s.Problems()
	if len(p) == 0 {
		t.Fatal("a response without its required description passed")
	}
	t.Logf("caught: %s", p)
}

// TestExamplesMatch: every example of a request or response body in the
// document is valid against its schema.
func TestExamplesMatch(t *testing.T) {
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	sv := schema_validation.NewSchemaValidator(config.WithFormatAssertions())
	n := 0
	check := func(where string, schema *base.SchemaProxy, examples *orderedmap.Map[string, *base.Example]) {
		if schema == nil || examples == nil {
			return
		}
		for name, ex := range examples.FromOldest() {
			var v any
			if err := ex.Value.Decode(&v); err != nil {
				t.Errorf("%s example %s: %v", where, name, err)
				continue
			}
			n++
			if ok, errs := sv.ValidateSchemaObject(schema.Schema(), v); !ok {
				t.Errorf("%s example %s does not match its schema: %v", where, name, messages(errs))
			}
		}
	}
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			where := strings.ToUpper(method) + " " + path
			if op.RequestBody != nil {
				for mt, m := range op.RequestBody.Content.FromOldest() {
					check(where+" request "+mt, m.Schema, m.Examples)
				}
			}
			for code, r := range op.Responses.Codes.FromOldest() {
				for mt, m := range r.Content.FromOldest() {
					check(fmt.Sprintf("%s %s %s", where, code, mt), m.Schema, m.Examples)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("checked %d examples, want the document's (at least 10)", n)
	}
	t.Logf("%d examples match their schemas", n)
}

// exchange makes an Exchange of a request and a canned response.
func exchange(method, target string, reqHdr map[string]string, reqBody string, status int, respHdr map[string]string, respBody string) Exchange {
	req := httptest.NewRequest(method, "http://127.0.0.1:8080"+target, strings.NewReader(reqBody))
	for k, v := range reqHdr {
		req.Header.Set(k, v)
	}
	resp := &http.Response{StatusCode: status, Header: http.Header{}, Request: req}
	for k, v := range respHdr {
		resp.Header.Set(k, v)
	}
	return Exchange{Request: req, RequestBody: []byte(reqBody), Response: resp, ResponseBody: []byte(respBody)}
}

const (
	auth     = "Bearer acme-key"
	taskJSON = `{"id":"01970c4e-8a31-7b5e-9d1c-3f6f2a0b4c11","function":"echo","status":"queued","attempts":0,"hops":0,` +
		`"scheduled_at":"2026-05-04T10:00:00.1Z","created_at":"2026-05-04T10:00:00.1Z","updated_at":"2026-05-04T10:00:00.1Z"}`
)

var jsonCT = map[string]string{"Content-Type": "application/json"}

func withHdr(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestCheck: exchanges the document describes pass, and each kind of
// drift is caught, so the end-to-end check can fail.
func TestCheck(t *testing.T) {
	s := load(t)
	authed := map[string]string{"Authorization": auth}
	submitHdr := withHdr(authed, "Content-Type", "application/json")
	located := withHdr(jsonCT, "Location", "/v1/tasks/01970c4e-8a31-7b5e-9d1c-3f6f2a0b4c11")
	errJSON := func(code string) string { return `{"error":{"code":"` + code + `","message":"m"}}` }
	cases := []struct {
		name  string
		x     Exchange
		wrong string // "" when it matches; else a part of the error
	}{
		{"Submit", exchange("POST", "/v1/functions/echo/tasks", submitHdr, `{"a":1}`, 202, located, taskJSON), ""},
		{"SubmitBytes", exchange("POST", "/v1/functions/echo/tasks", withHdr(authed, "Content-Type", "application/octet-stream"), "\x00\x01", 202, located, taskJSON), ""},
		{"GetTask", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, taskJSON), ""},
		{"List", exchange("GET", "/v1/tasks?limit=2&status=failed", authed, "", 200, jsonCT, `{"tasks":[`+taskJSON+`],"next_cursor":""}`), ""},
		{"Healthz", exchange("GET", "/healthz", nil, "", 200, map[string]string{"Content-Type": "text/plain"}, "ok\n"), ""},
		{"Batch", exchange("POST", "/v1/functions/echo/tasks/batch", submitHdr, `{"tasks":[{"payload":1},{"payload_base64":"AA=="}]}`, 202, jsonCT,
			`{"tasks":[`+taskJSON+`,`+errJSON("rate_limited")+`]}`), ""},
		{"NotReady", exchange("GET", "/readyz", nil, "", 503, jsonCT, `{"error":{"code":"not_ready","message":"ferry is starting or shutting down"}}`), ""},
		{"NotReadyVerbose", exchange("GET", "/readyz?verbose=1", nil, "", 503, jsonCT, `{"status":"not_ready","error":{"code":"not_ready","message":"m"},"store":"unavailable","triggers":[]}`), ""},
		{"Quota", exchange("POST", "/v1/functions/echo/tasks", submitHdr, `{}`, 429, withHdr(jsonCT, "Retry-After", "1"), errJSON("quota_exceeded")), ""},

		{"TaskLacksStatus", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, strings.Replace(taskJSON, `"status":"queued",`, "", 1)), "status"},
		{"TaskBadTime", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, strings.Replace(taskJSON, `"created_at":"2026-05-04T10:00:00.1Z"`, `"created_at":"yesterday"`, 1)), "created_at"},
		{"TaskUnknownStatus", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, strings.Replace(taskJSON, `"queued"`, `"done"`, 1)), "status"},
		{"TaskErrorNotObject", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, strings.Replace(taskJSON, `"hops":0,`, `"hops":0,"error":"boom",`, 1)), "error"},
		{"DeliveryUnknownState", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, strings.Replace(taskJSON, `"hops":0,`,
			`"hops":0,"deliveries":[{"index":0,"destination":"on_success[0]","kind":"log","state":"lost","attempts":1}],`, 1)), "state"},
		{"TaskUndocumentedField", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, strings.Replace(taskJSON, `"hops":0,`, `"hops":0,"tenant":"acme",`, 1)), "tenant"},
		{"TaskWithOutput", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, strings.Replace(taskJSON, `"hops":0,`, `"hops":0,"output":{"a":{"b":[{"c":1}]}},`, 1)), ""},
		{"TaskWithErrors", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, strings.Replace(taskJSON, `"hops":0,`,
			`"hops":0,"error":{"code":"retries_exhausted","message":"m","http_status":500},"last_error":{"code":"http_500","message":""},`, 1)), ""},
		{"TaskErrorUndocumentedField", exchange("GET", "/v1/tasks/x", authed, "", 200, jsonCT, strings.Replace(taskJSON, `"hops":0,`,
			`"hops":0,"error":{"code":"retries_exhausted","message":"m","retryable":false},`, 1)), "retryable"},
		{"ErrorLacksMessage", exchange("GET", "/v1/tasks/x", authed, "", 404, jsonCT, `{"error":{"code":"task_not_found"}}`), "message"},
		{"ErrorOtherCode", exchange("GET", "/v1/tasks/x", authed, "", 404, jsonCT, errJSON("not_found")), "code"},
		{"SubmitLacksLocation", exchange("POST", "/v1/functions/echo/tasks", submitHdr, `{}`, 202, jsonCT, taskJSON), "Location"},
		{"TooManyLacksRetryAfter", exchange("POST", "/v1/functions/echo/tasks", submitHdr, `{}`, 429, jsonCT, errJSON("rate_limited")), "Retry-After"},
		{"UndocumentedStatus", exchange("GET", "/v1/tasks/x", authed, "", 418, jsonCT, errJSON("teapot")), "418"},
		{"ErrorAsText", exchange("GET", "/v1/tasks/x", authed, "", 404, map[string]string{"Content-Type": "text/plain"}, "not found"), "text/plain"},
		{"RequestWithoutKey", exchange("GET", "/v1/tasks/x", nil, "", 200, jsonCT, taskJSON), "request"},
		{"RequestBadLimit", exchange("GET", "/v1/tasks?limit=0", authed, "", 200, jsonCT, `{"tasks":[],"next_cursor":""}`), "limit"},
		{"RequestBatchUnknownField", exchange("POST", "/v1/functions/echo/tasks/batch", submitHdr, `{"tasks":[{"payload":1,"color":"red"}]}`, 202, jsonCT,
			`{"tasks":[`+taskJSON+`]}`), "request"},
		{"UnknownPath", exchange("GET", "/v2/tasks", authed, "", 404, jsonCT, errJSON("not_found")), "request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Check(tc.x)
			switch {
			case tc.wrong == "" && err != nil:
				t.Errorf("a described exchange was refused: %v", err)
			case tc.wrong != "" && err == nil:
				t.Errorf("the check passed an exchange whose %s is wrong", tc.wrong)
			case tc.wrong != "" && !strings.Contains(err.Error(), tc.wrong):
				t.Errorf("the error does not name %q: %v", tc.wrong, err)
			case err != nil:
				t.Logf("caught: %v", err)
			}
		})
	}
}

// TestCheckMalformed: a request bad on purpose is not checked itself, but
// its answer is, and one to a path or method the document does not have
// must still be a 404 or 405 Error.
func TestCheckMalformed(t *testing.T) {
	s := load(t)
	bad := func(x Exchange) Exchange { x.Malformed = true; return x }
	errJSON := func(code string) string { return `{"error":{"code":"` + code + `","message":"m"}}` }
	noKey := withHdr(jsonCT, "WWW-Authenticate", `Bearer realm="ferry"`)
	cases := []struct {
		name string
		x    Exchange
		ok   bool
	}{
		{"NoKey", bad(exchange("GET", "/v1/tasks", nil, "", 401, noKey, errJSON("unauthorized"))), true},
		{"NoKeyTextAnswer", bad(exchange("GET", "/v1/tasks", nil, "", 401, map[string]string{"Content-Type": "text/plain"}, "no")), false},
		{"LimitZero", bad(exchange("GET", "/v1/tasks?limit=0", map[string]string{"Authorization": auth}, "", 400, jsonCT, errJSON("bad_limit"))), true},
		{"LimitZeroWrongCode", bad(exchange("GET", "/v1/tasks?limit=0", map[string]string{"Authorization": auth}, "", 400, jsonCT, errJSON("bad_delay"))), false},
		{"WrongMethod", bad(exchange("PUT", "/v1/functions/echo/tasks", nil, "{}", 405, jsonCT, errJSON("method_not_allowed"))), true},
		{"WrongMethodNotAnError", bad(exchange("PUT", "/v1/functions/echo/tasks", nil, "{}", 405, jsonCT, `{"oops":1}`)), false},
		{"WrongMethodAnswered200", bad(exchange("PUT", "/v1/functions/echo/tasks", nil, "{}", 200, jsonCT, errJSON("x"))), false},
		{"UnknownPath", bad(exchange("GET", "/v2/nothing", nil, "", 404, jsonCT, errJSON("not_found"))), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Check(tc.x)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Errorf("passed an answer the document does not describe")
			}
		})
	}
}

// TestTransport: the transport hands the caller the server's answer
// untouched and reports a mismatch naming method, path and status.
func TestTransport(t *testing.T) {
	s, err := Load(docPath) // its own, to count its exchanges alone
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/functions/echo/tasks" && len(b) == 5 {
			w.Header().Set("Location", "/v1/tasks/01970c4e-8a31-7b5e-9d1c-3f6f2a0b4c11")
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, taskJSON)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"id":"x"}`) // not a task
	}))
	defer srv.Close()
	var reports []string
	var mu sync.Mutex
	client := &http.Client{Transport: &Transport{Spec: s, Report: func(_ *http.Request, err error) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, err.Error())
	}}}

	req, _ := http.NewRequest("POST", srv.URL+"/v1/functions/echo/tasks", io.MultiReader(bytes.NewReader([]byte(`{"a":1}`[:5]))))
	req.Header.Set("Authorization", auth)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 || string(body) != taskJSON {
		t.Fatalf("answer %d %s, want the server's 202 and task", resp.StatusCode, body)
	}

	req, _ = http.NewRequestWithContext(Malformed(context.Background()), "GET", srv.URL+"/v1/tasks/x", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v["id"] != "x" {
		t.Errorf("answer body %v (%v), want the server's", v, err)
	}
	resp.Body.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 1 || !strings.Contains(reports[0], "GET /v1/tasks/x → 200") {
		t.Fatalf("reports %q, want one naming GET /v1/tasks/x → 200", reports)
	}
	if checked, failed := s.Checked(); checked != 2 || failed != 1 {
		t.Errorf("Checked() = %d, %d; want 2 exchanges, 1 mismatch", checked, failed)
	}
	for _, a := range s.Unexercised() {
		if a == "POST /v1/functions/{fn}/tasks 202" || a == "GET /v1/tasks/{id} 200" {
			t.Errorf("Unexercised() lists %q, which was exercised", a)
		}
	}
}
