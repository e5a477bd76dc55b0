package main

import (
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
	"time"
)

const testKey = "sk-never-print-me"

// fakeFerry answers the API calls the commands make with canned tasks and
// records the requests.
type fakeFerry struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []fakeReq
}

type fakeReq struct {
	method, path, query string
	header              http.Header
	body                string
}

func task(id, status, extra string) string {
	return fmt.Sprintf(`{"id":%q,"function":"echo","status":%q,"attempts":1,"hops":0,"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:06Z"%s}`, id, status, extra)
}

func newFakeFerry(t *testing.T) *fakeFerry {
	f := &fakeFerry{}
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
	mux.HandleFunc("POST /v1/functions/{fn}/tasks", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("fn") != "echo" {
			answer(w, 404, `{"error":{"code":"function_not_found","message":"function \"`+r.PathValue("fn")+`\" not found"}}`)
			return
		}
		answer(w, 202, task("t-1", "queued", ""))
	})
	mux.HandleFunc("POST /v1/functions/{fn}/tasks/batch", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Tasks []map[string]json.RawMessage }
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		var out []string
		for i, it := range req.Tasks {
			if string(it["payload"]) == `"refuse"` {
				out = append(out, `{"error":{"code":"rate_limited","message":"slow down"}}`)
				continue
			}
			out = append(out, task(fmt.Sprintf("b-%d", i), "queued", ""))
		}
		answer(w, 202, `{"tasks":[`+strings.Join(out, ",")+`]}`)
	})
	mux.HandleFunc("GET /v1/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch id := r.PathValue("id"); id {
		case "t-1":
			answer(w, 200, task("t-1", "succeeded", `,"finished_at":"2025-01-02T03:04:06Z","output":{"hello":"world"}`))
		case "t-fail":
			answer(w, 200, task("t-fail", "failed", `,"error":{"code":"http_500","message":"boom"}`))
		default:
			answer(w, 404, `{"error":{"code":"task_not_found","message":"task \"`+id+`\" not found"}}`)
		}
	})
	mux.HandleFunc("DELETE /v1/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 409, `{"error":{"code":"conflict","message":"task is running: only queued tasks can be cancelled"}}`)
	})
	mux.HandleFunc("POST /v1/tasks/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, task(r.PathValue("id"), "queued", `,"replays":1`))
	})
	mux.HandleFunc("GET /v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" {
			answer(w, 200, `{"tasks":[`+task("t-2", "queued", "")+`,`+task("t-1", "succeeded", "")+`],"next_cursor":"c1"}`)
			return
		}
		answer(w, 200, `{"tasks":[`+task("t-0", "failed", "")+`],"next_cursor":""}`)
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, fakeReq{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body)})
		f.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			answer(w, 401, `{"error":{"code":"unauthorized","message":"missing or unknown API key"}}`)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeFerry) requests() []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeReq(nil), f.reqs...)
}

// cli runs a client command against url with the key in the environment.
func cli(t *testing.T, url string, stdin string, args ...string) result {
	t.Helper()
	return invocation{args: args, stdin: stdin, env: map[string]string{"FERRY_URL": url, "FERRY_API_KEY": testKey}}.run(t)
}

func TestClientCommands(t *testing.T) {
	f := newFakeFerry(t)
	dir := t.TempDir()
	payloadFile := filepath.Join(dir, "order.json")
	if err := os.WriteFile(payloadFile, []byte(`{"order":42}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		stdin     string
		code      int
		stdout    []string // each must appear
		stdoutNot []string
		stderr    string // must appear
		lastBody  string // when set: the body of the last request
		lastPath  string // when set: method and path of the last request
	}{
		{name: "SubmitTable", args: []string{"submit", "echo", "--data", `{"a":1}`}, stdout: []string{"id:", "t-1", "status:", "queued"},
			lastBody: `{"a":1}`, lastPath: "POST /v1/functions/echo/tasks"},
		{name: "SubmitJSON", args: []string{"submit", "echo", "-d", `{"a":1}`, "-o", "json"}, stdout: []string{task("t-1", "queued", "") + "\n"}},
		{name: "SubmitDataFile", args: []string{"submit", "echo", "--data", "@" + payloadFile}, lastBody: `{"order":42}`},
		{name: "SubmitDataStdin", args: []string{"submit", "echo", "--data", "-"}, stdin: "from stdin\n", lastBody: "from stdin\n"},
		{name: "SubmitMissingFile", args: []string{"submit", "echo", "--data", "@" + filepath.Join(dir, "none")}, code: 1, stderr: "no such file"},
		{name: "SubmitUnknownFunction", args: []string{"submit", "nope", "--data", "1"}, code: 1, stderr: `404 function_not_found: function "nope" not found`},
		{name: "SubmitWaitSucceeded", args: []string{"submit", "echo", "--data", "1", "--wait"}, stdout: []string{"succeeded", `output:    {"hello":"world"}`}},
		{name: "SubmitNoData", args: []string{"submit", "echo"}, code: 2, stderr: "[data file]"},
		{name: "SubmitNoFunction", args: []string{"submit", "--data", "1"}, code: 2, stderr: "needs the function name"},
		{name: "SubmitTimeoutWithoutWait", args: []string{"submit", "echo", "--data", "1", "--timeout", "1s"}, code: 2, stderr: "--timeout goes with --wait"},
		{name: "SubmitFileWithDelay", args: []string{"submit", "echo", "--file", payloadFile, "--delay", "1s"}, code: 2, stderr: "--delay goes with --data"},
		{name: "SubmitBadDelay", args: []string{"submit", "echo", "--data", "1", "--delay", "soon"}, code: 2, stderr: "invalid argument"},
		{name: "BadOutput", args: []string{"tasks", "get", "t-1", "--output", "yaml"}, code: 2, stderr: `--output "yaml": want table or json`},
		{name: "UnknownFlag", args: []string{"tasks", "get", "t-1", "--colour"}, code: 2, stderr: "unknown flag: --colour"},
		{name: "GetTable", args: []string{"tasks", "get", "t-1"}, stdout: []string{"succeeded", "finished:", "2025-01-02T03:04:06Z"}},
		{name: "GetFailedTaskIsNotAFailedRequest", args: []string{"tasks", "get", "t-fail"}, stdout: []string{"error:", "http_500: boom"}},
		{name: "GetJSON", args: []string{"tasks", "get", "t-fail", "--output", "json"},
			stdout: []string{task("t-fail", "failed", `,"error":{"code":"http_500","message":"boom"}`) + "\n"}},
		{name: "GetUnknown", args: []string{"tasks", "get", "zzz"}, code: 1, stderr: `404 task_not_found: task "zzz" not found`},
		{name: "GetNoID", args: []string{"tasks", "get"}, code: 2, stderr: "needs the task id"},
		{name: "CancelConflict", args: []string{"tasks", "cancel", "t-1"}, code: 1, stderr: "409 conflict", lastPath: "DELETE /v1/tasks/t-1"},
		{name: "Replay", args: []string{"tasks", "replay", "t-fail"}, stdout: []string{"replays:", "queued"}, lastPath: "POST /v1/tasks/t-fail/replay"},
		{name: "ListTable", args: []string{"tasks", "list", "--function", "echo", "--status", "queued", "--limit", "2"},
			stdout: []string{"ID", "FUNCTION", "STATUS", "t-2", "t-1"}, stdoutNot: []string{"t-0"}, stderr: "--cursor c1"},
		{name: "ListJSONPage", args: []string{"tasks", "list", "-o", "json"}, stdout: []string{`{"tasks":[{"id":"t-2"`, `"next_cursor":"c1"}`}},
		{name: "ListAllJSONLines", args: []string{"tasks", "list", "--all", "-o", "json"},
			stdout: []string{task("t-2", "queued", "") + "\n" + task("t-1", "succeeded", "") + "\n" + task("t-0", "failed", "") + "\n"}},
		{name: "ListAllTable", args: []string{"tasks", "list", "--all"}, stdout: []string{"t-2", "t-1", "t-0"}},
		{name: "ListBadStatus", args: []string{"tasks", "list", "--status", "done"}, code: 2, stderr: `--status "done"`},
		{name: "ListBadLimit", args: []string{"tasks", "list", "--limit", "5000"}, code: 2, stderr: "--limit 5000"},
		{name: "TasksUnknown", args: []string{"tasks", "purge"}, code: 2, stderr: `unknown command "purge"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, f.URL, tc.stdin, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout:\n%s\nwant it to contain %q", r.stdout, s)
				}
			}
			for _, s := range tc.stdoutNot {
				if strings.Contains(r.stdout, s) {
					t.Errorf("stdout:\n%s\nwant no %q", r.stdout, s)
				}
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr:\n%s\nwant it to contain %q", r.stderr, tc.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, testKey) {
				t.Errorf("the API key was printed")
			}
			reqs := f.requests()
			if len(reqs) == 0 {
				if tc.lastBody != "" || tc.lastPath != "" {
					t.Fatal("no request")
				}
				return
			}
			last := reqs[len(reqs)-1]
			if tc.lastBody != "" && last.body != tc.lastBody {
				t.Errorf("sent body %q, want %q", last.body, tc.lastBody)
			}
			if tc.lastPath != "" && last.method+" "+last.path != tc.lastPath {
				t.Errorf("last request %s %s, want %s", last.method, last.path, tc.lastPath)
			}
		})
	}
}

// TestURLAndKeyFlags: the flags win over the environment; the key never
// shows, in help or in errors.
func TestURLAndKeyFlags(t *testing.T) {
	f := newFakeFerry(t)
	r := invocation{args: []string{"tasks", "get", "t-1", "--url", f.URL, "--key", testKey},
		env: map[string]string{"FERRY_URL": "http://127.0.0.1:1", "FERRY_API_KEY": "wrong"}}.run(t)
	if r.code != 0 {
		t.Errorf("flags over env: exit %d, stderr %s", r.code, r.stderr)
	}
	r = invocation{args: []string{"tasks", "get", "t-1", "--url", f.URL}, env: map[string]string{"FERRY_API_KEY": "wrong-" + testKey}}.run(t)
	if r.code != 1 || !strings.Contains(r.stderr, "401 unauthorized") || strings.Contains(r.stderr, testKey) {
		t.Errorf("wrong key: exit %d, stderr %q; want 1 and a 401 without the key", r.code, r.stderr)
	}
	r = invocation{args: []string{"tasks", "get", "--help"}, env: map[string]string{"FERRY_API_KEY": testKey}}.run(t)
	if r.code != 0 || strings.Contains(r.stdout, testKey) || !strings.Contains(r.stdout, "FERRY_API_KEY") {
		t.Errorf("help: exit %d, shows the key or not the variable:\n%s", r.code, r.stdout)
	}
	r = invocation{args: []string{"tasks", "get", "t-1", "--url", "127.0.0.1:8080"}}.run(t)
	if r.code != 2 || !strings.Contains(r.stderr, "--url") {
		t.Errorf("bad --url: exit %d, stderr %q; want 2", r.code, r.stderr)
	}
	r = invocation{args: []string{"tasks", "get", "t-1", "--url", "http://127.0.0.1:1", "--key", testKey}}.run(t)
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach Ferry") || strings.Contains(r.stderr, testKey) {
		t.Errorf("unreachable: exit %d, stderr %q; want 1", r.code, r.stderr)
	}
}

func TestSubmitFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("BadLineSendsNothing", func(t *testing.T) {
		f := newFakeFerry(t)
		path := write("bad.jsonl", "{\"payload\":1}\n\n{\"payload\": 2, \"delay\": \"soon\"}\n")
		r := cli(t, f.URL, "", "submit", "echo", "--file", path)
		if r.code != 2 || !strings.Contains(r.stderr, path+`:3: "delay" "soon"`) {
			t.Errorf("exit %d, stderr %q; want 2 naming line 3", r.code, r.stderr)
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("%d requests sent, want none", n)
		}
		r = cli(t, f.URL, "", "submit", "echo", "--file", write("notjson.jsonl", "{\"payload\":1}\nnot json\n"))
		if r.code != 2 || !strings.Contains(r.stderr, "notjson.jsonl:2: ") {
			t.Errorf("exit %d, stderr %q; want 2 naming line 2", r.code, r.stderr)
		}
		r = cli(t, f.URL, "", "submit", "echo", "--file", write("empty.jsonl", "\n\n"))
		if r.code != 2 || !strings.Contains(r.stderr, "no tasks") {
			t.Errorf("empty file: exit %d, stderr %q; want 2", r.code, r.stderr)
		}
	})

	t.Run("ChunksAndRefusals", func(t *testing.T) {
		f := newFakeFerry(t)
		var b strings.Builder
		for i := range 2500 {
			if i == 1200 || i == 2400 {
				b.WriteString("{\"payload\":\"refuse\"}\n")
				continue
			}
			if i == 10 {
				b.WriteString("\n") // a blank line: line numbers still count it
			}
			fmt.Fprintf(&b, "{\"payload\":%d,\"idempotency_key\":\"k%d\"}\n", i, i)
		}
		path := write("tasks.jsonl", b.String())
		r := invocation{args: []string{"submit", "echo", "--file", path}, terminal: true,
			env: map[string]string{"FERRY_URL": f.URL, "FERRY_API_KEY": testKey}}.run(t)
		if r.code != 1 {
			t.Errorf("exit %d, want 1 (some refused)", r.code)
		}
		want := "accepted 2498 of 2500 tasks, refused 2\n  line 1202: rate_limited: slow down\n  line 2402: rate_limited: slow down\n"
		if r.stdout != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
		}
		if !strings.Contains(r.stderr, "submitting") || !strings.Contains(r.stderr, "2500/2500") {
			t.Errorf("no progress bar on a terminal stderr: %q", r.stderr)
		}
		var sizes []int
		for _, rq := range f.requests() {
			var req struct{ Tasks []json.RawMessage }
			_ = json.Unmarshal([]byte(rq.body), &req)
			sizes = append(sizes, len(req.Tasks))
		}
		if fmt.Sprint(sizes) != "[1000 1000 500]" {
			t.Errorf("batch sizes %v, want [1000 1000 500]", sizes)
		}
	})

	t.Run("JSONLinesFromStdin", func(t *testing.T) {
		f := newFakeFerry(t)
		r := cli(t, f.URL, "{\"payload\":1}\n{\"payload\":\"refuse\"}\n{\"payload_base64\":\"aGk=\"}", "submit", "echo", "--file", "-", "-o", "json")
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], `{"id":"b-0"`) ||
			lines[1] != `{"line":2,"error":{"code":"rate_limited","message":"slow down"}}` || !strings.HasPrefix(lines[2], `{"id":"b-2"`) {
			t.Errorf("stdout:\n%s\nwant a task, a refusal of line 2, a task", r.stdout)
		}
		if !strings.Contains(r.stderr, "accepted 2 of 3 tasks, refused 1") || strings.Contains(r.stderr, "submitting") {
			t.Errorf("stderr %q: want the summary and no progress bar", r.stderr)
		}
	})
}

// TestTail: tail prints each task once when it finishes, oldest outcome
// first, and not the tasks that had finished when it started.
func TestTail(t *testing.T) {
	polls := []string{ // "" answers 503
		`[` + task("c", "queued", "") + `,` + task("b", "running", "") + `,` + task("a", "succeeded", `,"finished_at":"2025-01-02T03:00:00Z"`) + `]`,
		"",
		`[` + task("c", "failed", `,"finished_at":"2025-01-02T03:00:09Z","error":{"code":"boom","message":"no"}`) + `,` + task("b", "running", "") + `,` + task("a", "succeeded", "") + `]`,
		`[` + task("c", "failed", `,"finished_at":"2025-01-02T03:00:09Z"`) + `,` + task("b", "succeeded", `,"finished_at":"2025-01-02T03:00:10Z","output":"done"`) + `,` + task("a", "succeeded", "") + `]`,
	}
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("function") != "echo" || r.URL.Query().Get("limit") != "1000" {
			http.Error(w, "bad query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		mu.Lock()
		page := polls[min(n, len(polls)-1)]
		n++
		mu.Unlock()
		if page == "" {
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"error":{"code":"unavailable","message":"later"}}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"tasks":`+page+`,"next_cursor":""}`)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stdout := &syncBuffer{}
	done := make(chan result, 1)
	go func() {
		done <- invocation{args: []string{"tail", "echo", "--url", srv.URL, "--interval", "10ms"}, ctx: ctx, stdout: stdout}.run(t)
	}()
	for !strings.Contains(stdout.String(), " b ") && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	r := <-done
	if r.code != 0 {
		t.Errorf("exit %d after Ctrl-C, want 0; stderr %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("stdout:\n%s\nwant a header and 2 lines", r.stdout)
	}
	if !strings.HasPrefix(lines[0], "FINISHED") || !strings.Contains(lines[1], " c ") || !strings.Contains(lines[1], "boom: no") ||
		!strings.Contains(lines[2], " b ") || !strings.Contains(lines[2], `"done"`) {
		t.Errorf("stdout:\n%s\nwant c (failed, boom) then b (succeeded, \"done\")", r.stdout)
	}
	if !strings.Contains(r.stderr, "503 unavailable") || !strings.Contains(r.stderr, "polling on") {
		t.Errorf("stderr %q: want the 503 reported and polling going on", r.stderr)
	}
}
