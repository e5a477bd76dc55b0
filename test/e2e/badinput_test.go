package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/test/apispec"
	"github.com/ferrydev/ferry/test/ferrytest"
)

func TestBadInputs(t *testing.T) {
	t.Parallel()
	be := newBackend(t, nil)
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}", max_payload: 1KiB }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: alpha, api_keys: [alpha-key] }
  - { name: beta, api_keys: [beta-key] }
functions:
  - { name: fa, tenant: alpha, backend: { http: { url: %q } } }
  - { name: fb, tenant: beta, backend: { http: { url: %q } } }
`, be.URL(), be.URL()))
	f.key = "alpha-key"

	// beta's task, kept queued so that a DELETE would change it.
	betaTask := f.submitOK(t, "fb", `{"beta": true}`, map[string]string{
		"Authorization": "Bearer beta-key", "Ferry-Delay": "1h",
	})

	big := bytes.Repeat([]byte("x"), 2048)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	cases := []struct {
		name   string
		method string
		path   string
		body   []byte
		hdr    map[string]string
		status int
	}{
		{"PayloadOverLimit", "POST", "/v1/functions/fa/tasks", big, nil, 413},
		{"DelayWord", "POST", "/v1/functions/fa/tasks", []byte("{}"), map[string]string{"Ferry-Delay": "soon"}, 400},
		{"DelayNegative", "POST", "/v1/functions/fa/tasks", []byte("{}"), map[string]string{"Ferry-Delay": "-5s"}, 400},
		{"HopsNotANumber", "POST", "/v1/functions/fa/tasks", []byte("{}"), map[string]string{"Ferry-Hops": "x"}, 400},
		{"NoAuthorization", "POST", "/v1/functions/fa/tasks", []byte("{}"), map[string]string{"Authorization": ""}, 401},
		{"UnknownKey", "POST", "/v1/functions/fa/tasks", []byte("{}"), map[string]string{"Authorization": "Bearer nope"}, 401},
		{"NotBearer", "POST", "/v1/functions/fa/tasks", []byte("{}"), map[string]string{"Authorization": "Basic YWxwaGEta2V5Og=="}, 401},
		{"UnknownFunction", "POST", "/v1/functions/nope/tasks", []byte("{}"), nil, 404},
		{"OtherTenantsFunction", "POST", "/v1/functions/fb/tasks", []byte("{}"), nil, 404},
		{"WrongMethodOnSubmit", "PUT", "/v1/functions/fa/tasks", []byte("{}"), nil, 405},
		{"WrongMethodOnTask", "PATCH", "/v1/tasks/" + betaTask, []byte("{}"), nil, 405},
		{"WrongMethodOnList", "POST", "/v1/tasks", []byte("{}"), nil, 405},
		{"GetOtherTenantsTask", "GET", "/v1/tasks/" + betaTask, nil, nil, 404},
		{"DeleteOtherTenantsTask", "DELETE", "/v1/tasks/" + betaTask, nil, nil, 404},
		{"GetUnknownTask", "GET", "/v1/tasks/01a20742-e6a4-7747-8bda-488614f9a034", nil, nil, 404},
		{"GetTaskNoAuthorization", "GET", "/v1/tasks/" + betaTask, nil, map[string]string{"Authorization": ""}, 401},
		{"BadCursor", "GET", "/v1/tasks?cursor=zzz-not-a-cursor", nil, nil, 400},
		{"BadStatusFilter", "GET", "/v1/tasks?status=done", nil, nil, 400},
		{"LimitZero", "GET", "/v1/tasks?limit=0", nil, nil, 400},
		{"LimitTooLarge", "GET", "/v1/tasks?limit=5000", nil, nil, 400},
		{"LimitNotANumber", "GET", "/v1/tasks?limit=x", nil, nil, 400},
		{"ListNoAuthorization", "GET", "/v1/tasks", nil, map[string]string{"Authorization": ""}, 401},
		{"DeleteTaskNoAuthorization", "DELETE", "/v1/tasks/" + betaTask, nil, map[string]string{"Authorization": ""}, 401},
		{"ReplayNoAuthorization", "POST", "/v1/tasks/" + betaTask + "/replay", nil, map[string]string{"Authorization": ""}, 401},
		{"ReplayOtherTenantsTask", "POST", "/v1/tasks/" + betaTask + "/replay", nil, nil, 404},
		{"WrongMethodOnReplay", "GET", "/v1/tasks/" + betaTask + "/replay", nil, nil, 405},
		{"UnknownEndpoint", "GET", "/v1/functions", nil, nil, 404},
		{"NotAnEndpoint", "GET", "/v2/tasks", nil, nil, 404},
		{"BatchNotJSON", "POST", "/v1/functions/fa/tasks/batch", []byte("tasks"), jsonCT, 400},
		{"BatchEmpty", "POST", "/v1/functions/fa/tasks/batch", []byte(`{"tasks": []}`), jsonCT, 400},
		{"BatchUnknownField", "POST", "/v1/functions/fa/tasks/batch", []byte(`{"tasks": [{"payload": 1, "colour": "red"}]}`), jsonCT, 400},
		{"BatchBothPayloads", "POST", "/v1/functions/fa/tasks/batch", []byte(`{"tasks": [{"payload": 1, "payload_base64": "AA=="}]}`), jsonCT, 400},
		{"BatchBadDelay", "POST", "/v1/functions/fa/tasks/batch", []byte(`{"tasks": [{"payload": 1}, {"payload": 2, "delay": "soon"}]}`), jsonCT, 400},
		{"BatchItemOverLimit", "POST", "/v1/functions/fa/tasks/batch", []byte(`{"tasks": [{"payload": "` + string(big) + `"}]}`), jsonCT, 413},
		{"BatchTooLarge", "POST", "/v1/functions/fa/tasks/batch", []byte(`{"tasks": [` + strings.Repeat(`{"payload": 1},`, 1000) + `{"payload": 1}]}`), jsonCT, 400},
		{"BatchUnknownFunction", "POST", "/v1/functions/nope/tasks/batch", []byte(`{"tasks": [{"payload": 1}]}`), jsonCT, 404},
		{"BatchNoAuthorization", "POST", "/v1/functions/fa/tasks/batch", []byte(`{"tasks": [{"payload": 1}]}`), map[string]string{"Authorization": "", "Content-Type": "application/json"}, 401},
		{"WrongMethodOnBatch", "GET", "/v1/functions/fa/tasks/batch", nil, nil, 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.bad().mustDo(t, tc.method, tc.path, tc.body, tc.hdr)
			if r.status != tc.status {
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, r.status, tc.status, r.body)
			}
			if _, err := errBody(r); err != nil {
				t.Errorf("%s %s: %v", tc.method, tc.path, err)
			}
		})
	}

	t.Run("PayloadOverLimitChunked", func(t *testing.T) {
		// No Content-Length: the limit must hold while reading.
		req, err := http.NewRequestWithContext(apispec.Malformed(context.Background()), "POST", f.URL("/v1/functions/fa/tasks"), io.MultiReader(bytes.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer alpha-key")
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 413 {
			t.Fatalf("chunked oversized body: status %d, want 413: %s", resp.StatusCode, b)
		}
		if _, err := errBody(response{status: resp.StatusCode, body: b, header: resp.Header}); err != nil {
			t.Error(err)
		}
	})

	// Nothing rejected was stored, and beta's task was neither shown to
	// nor cancelled by alpha.
	if ids := listIDs(t, f, "", 100); len(ids) != 0 {
		t.Errorf("alpha has tasks %v after only rejected submissions, want none", ids)
	}
	f.key = "beta-key"
	if ids := listIDs(t, f, "", 100); len(ids) != 1 || ids[0] != betaTask {
		t.Errorf("beta's tasks = %v, want only %s", ids, betaTask)
	}
	if v := f.get(t, betaTask); v.Status != "queued" {
		t.Errorf("beta's task is %s after alpha's DELETE, want queued", v.Status)
	}
	if n := be.count(); n != 0 {
		t.Errorf("backend was called %d times, want 0", n)
	}
}

// badConfigs are config files with problems on known lines.
var badConfigs = []struct {
	name  string
	yaml  string
	lines []int // lines with a problem
}{
	{"MalformedYAML", `server:
  listen: 127.0.0.1:0
tenants:
  - name: a
    api_keys: [k
  - name: b
`, []int{5}},
	{"UnknownKey", `server:
  listen: 127.0.0.1:0
  listn: 127.0.0.1:1
tenants:
  - { name: a, api_keys: [k] }
functions:
  - { name: f, tenant: a, backend: { exec: { command: [cat] } } }
`, []int{3}},
	{"MissingTenant", `server:
  listen: 127.0.0.1:0
tenants:
  - { name: a, api_keys: [k] }
functions:
  - name: f
    tenant: nobody
    backend: { exec: { command: [cat] } }
`, []int{7}},
	{"BadDuration", `server:
  listen: 127.0.0.1:0
  shutdown_timeout: 5x
tenants:
  - { name: a, api_keys: [k] }
functions:
  - name: f
    tenant: a
    backend: { exec: { command: [cat] } }
    retry: { max_attempts: 3, initial_interval: soon }
`, []int{3, 10}},
}

func TestBadConfigs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range badConfigs {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := runFerry(t, "validate", "-c", path)
			if code != 1 {
				t.Fatalf("validate: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if got := problemLines(t, path, stdout); !slices.Equal(got, tc.lines) {
				t.Errorf("validate reported lines %v, want %v:\n%s", got, tc.lines, stdout)
			}

			serveOut, serveErr, code := runFerry(t, "serve", "-c", path)
			if code != 1 {
				t.Fatalf("serve: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, serveOut, serveErr)
			}
			if strings.Contains(serveErr, "panic") || strings.Contains(serveErr, "goroutine ") {
				t.Fatalf("serve panicked:\n%s", serveErr)
			}
			if strings.TrimSpace(serveErr) != strings.TrimSpace(stdout) {
				t.Errorf("serve's problems differ from validate's:\nserve:\n%s\nvalidate:\n%s", serveErr, stdout)
			}
		})
	}

	t.Run("Quickstart", func(t *testing.T) {
		stdout, stderr, code := runFerry(t, "validate", "-c", "config/examples/quickstart.yaml")
		if code != 0 {
			t.Fatalf("validate quickstart.yaml: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
}

// runFerry runs the binary in the repo root and returns its output and
// exit code.
func runFerry(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(ferrytest.Binary(t), args...)
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("running ferry %v: %v", args, err)
	}
	if strings.Contains(errb.String(), "DATA RACE") {
		t.Errorf("ferry %v: DATA RACE:\n%s", args, errb.String())
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// problemLines checks that every line of out is "path:LINE: message" and
// returns the LINEs.
func problemLines(t *testing.T, path, out string) []int {
	t.Helper()
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:(\d+): \S`)
	var lines []int
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("output line %q does not match %s", l, re)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		lines = append(lines, n)
	}
	return lines
}
