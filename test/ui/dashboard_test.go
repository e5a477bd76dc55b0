// Package ui tests Ferry's dashboard (GET /ui/) in a real headless
// Chromium against a real `ferry serve` process.
package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferrydev/ferry/test/apispec"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// backend answers /echo and /other with their body, and /flaky with 400
// (a permanent failure) while failing is set.
type backend struct {
	*httptest.Server
	failing atomic.Bool
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/flaky" && b.failing.Load() {
			http.Error(w, "flaky says no: the order <b>42</b> is unknown", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(b.Close)
	return b
}

const config = `server: { listen: "{{listen}}", shutdown_timeout: 10s, admin_keys: ["admin-key"] }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: demo, api_keys: ["demo-key"], max_concurrency: 20 }
  - { name: other, api_keys: ["other-key"] }
functions:
  - name: echo
    tenant: demo
    backend: { http: { url: "BACKEND/echo", timeout: 5s } }
  - name: flaky
    tenant: demo
    backend: { http: { url: "BACKEND/flaky", timeout: 5s } }
    retry: { max_attempts: 1 }
    destinations: { on_failure: [ { log: {} } ] }
  - name: secretfn
    tenant: other
    backend: { http: { url: "BACKEND/other", timeout: 5s } }
`

// specClient sends the test's API calls through a check against
// docs/openapi.yaml (test/apispec): the dashboard's calls are described
// there too.
func specClient(t *testing.T) *http.Client {
	spec, err := apispec.Load(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &apispec.Transport{Spec: spec, Report: func(_ *http.Request, err error) {
		t.Errorf("%v", err)
	}}}
}

var client = http.DefaultClient

// api calls Ferry's API with key and returns the status and JSON body.
func api(t *testing.T, p *ferrytest.Proc, method, path, key, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, p.URL(path), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, out
}

func submit(t *testing.T, p *ferrytest.Proc, key, fn, body string, hdr ...string) string {
	t.Helper()
	status, out := api(t, p, "POST", "/v1/functions/"+fn+"/tasks", key, body, hdr...)
	if status != http.StatusAccepted {
		t.Fatalf("submit to %s = %d %v", fn, status, out)
	}
	return out["id"].(string)
}

func taskStatus(t *testing.T, p *ferrytest.Proc, key, id string) map[string]any {
	t.Helper()
	status, out := api(t, p, "GET", "/v1/tasks/"+id, key, "")
	if status != http.StatusOK {
		t.Fatalf("get %s = %d %v", id, status, out)
	}
	return out
}

func TestDashboard(t *testing.T) {
	client = specClient(t)
	be := newBackend(t)
	p := ferrytest.StartConfig(t, strings.ReplaceAll(config, "BACKEND", be.URL))
	b := newBrowser(t)

	// The other tenant has a task the demo key must never see.
	secret := submit(t, p, "other-key", "secretfn", `{"secret":true}`)

	b.signIn(p.URL("/ui/"), "demo-key")
	if strings.Contains(b.location(), "demo-key") {
		t.Errorf("the key is in the URL: %s", b.location())
	}
	echoOK := `tr[data-fn="demo/echo"] td[data-col="succeeded_15m"]`
	b.waitText(10*time.Second, echoOK, "0", func(s string) bool { return s == "0" })

	t.Run("CountsFollowSubmissions", func(t *testing.T) {
		for i := range 5 {
			submit(t, p, "demo-key", "echo", `{"n":`+strconv.Itoa(i)+`}`)
		}
		// The page refreshes itself: no reload here.
		b.waitText(15*time.Second, echoOK, "5", func(s string) bool { return s == "5" })
		if got := b.text(`tr[data-fn="demo/echo"] td[data-col="run"]`); got == "– / –" || got == "" {
			t.Errorf("run p50 / p99 after 5 tasks = %q, want figures", got)
		}
	})

	t.Run("OtherTenantAbsent", func(t *testing.T) {
		if n := b.count(`tr[data-fn^="other/"], [data-tenant="other"]`); n != 0 {
			t.Errorf("the demo key sees %d of the other tenant's rows", n)
		}
		html := b.html()
		for _, s := range []string{"secretfn", secret} {
			if strings.Contains(html, s) {
				t.Errorf("the page shows %q of the other tenant", s)
			}
		}
	})

	t.Run("ReplayAFailedTaskByClicking", func(t *testing.T) {
		be.failing.Store(true)
		id := submit(t, p, "demo-key", "flaky", `{"order":42}`)
		row := `tr[data-task="` + id + `"]`
		got := b.waitText(15*time.Second, row+` td[data-col="error"]`, "the backend's error", func(s string) bool {
			return strings.Contains(s, "flaky says no")
		})
		if !strings.Contains(got, "<b>42</b>") {
			t.Errorf("error cell %q: the backend's message should show as text, markup and all", got)
		}
		if n := b.count(`#tasks b`); n != 1 { // the code's <b>, and no <b> parsed from the message
			t.Errorf("%d <b> elements in the task list, want 1 (the code)", n)
		}
		// The task's detail: payload and deliveries.
		b.click(row)
		b.waitText(10*time.Second, "#detail-payload", "the payload", func(s string) bool { return strings.Contains(s, `"order": 42`) })
		b.waitText(10*time.Second, "#detail-deliveries tbody", "the on_failure delivery", func(s string) bool { return strings.Contains(s, "on_failure[0]") })

		be.failing.Store(false)
		b.click(row + ` button.replay`)
		b.waitText(10*time.Second, "#action-result", "a replay confirmation", func(s string) bool { return strings.HasPrefix(s, "Replayed "+id) })
		ferrytest.WaitFor(t, 15*time.Second, "the replayed task to succeed", func() bool {
			tk := taskStatus(t, p, "demo-key", id)
			return tk["status"] == "succeeded" && tk["replays"] == 1.0
		})
	})

	t.Run("CancelAQueuedTask", func(t *testing.T) {
		id := submit(t, p, "demo-key", "echo", `{"later":true}`, "Ferry-Delay", "1h")
		b.selectOption("#status-filter", "queued")
		b.waitText(10*time.Second, `tr[data-task="`+id+`"] td[data-col="status"]`, "queued", func(s string) bool { return s == "queued" })
		b.click(`tr[data-task="` + id + `"] button.cancel`)
		ferrytest.WaitFor(t, 10*time.Second, "the task to be cancelled", func() bool {
			return taskStatus(t, p, "demo-key", id)["status"] == "cancelled"
		})
		b.selectOption("#status-filter", "failed")
	})

	t.Run("StatsAndPayloadAPI", func(t *testing.T) {
		// What the page reads, as the API answers it (and the document says).
		status, st := api(t, p, "GET", "/v1/stats", "demo-key", "")
		if fns, _ := st["functions"].([]any); status != 200 || len(fns) != 2 || st["admin"] != false {
			t.Errorf("demo's stats = %d, %d functions, admin %v; want 200, echo and flaky, false", status, len(fns), st["admin"])
		}
		if status, st := api(t, p, "GET", "/v1/stats", "admin-key", ""); status != 200 || len(st["tenants"].([]any)) != 2 || st["admin"] != true {
			t.Errorf("admin's stats = %d %v; want both tenants", status, st["tenants"])
		}
		if status, _ := api(t, p, "GET", "/v1/stats?tenant=other", "demo-key", ""); status != 404 {
			t.Errorf("demo asking for other's stats = %d, want 404", status)
		}
		if status, _ := api(t, p, "GET", "/v1/tasks/"+secret+"?payload=true", "admin-key", ""); status != 400 {
			t.Errorf("admin without Ferry-Tenant = %d, want 400", status)
		}
		status, tk := api(t, p, "GET", "/v1/tasks/"+secret+"?payload=true", "admin-key", "", "Ferry-Tenant", "other")
		if pl, _ := tk["payload"].(map[string]any); status != 200 || pl["secret"] != true {
			t.Errorf("admin for other, with the payload = %d %v", status, tk)
		}
	})

	t.Run("AdminSeesEveryTenant", func(t *testing.T) {
		b.click("#sign-out")
		b.signIn(p.URL("/ui/"), "admin-key")
		b.waitText(10*time.Second, `tr[data-fn="other/secretfn"] td[data-col="succeeded_15m"]`, "1", func(s string) bool { return s == "1" })
		if n := b.count(`tr[data-fn="demo/echo"]`); n != 1 {
			t.Errorf("the admin sees %d rows of demo/echo, want 1", n)
		}
		b.click("#sign-out")
	})

	t.Run("UnknownKeyRefused", func(t *testing.T) {
		b.run("sign in with a wrong key",
			chromedp.SendKeys(chromedp.CSS("#key-input"), "not-a-key"), chromedp.Click(chromedp.CSS("#key-submit")))
		b.waitText(10*time.Second, "#login-error", "a refusal", func(s string) bool { return strings.Contains(s, "not known") })
	})

	// The screenshot shows the demo tenant after some work, its echo
	// function's charts open.
	b.signIn(p.URL("/ui/"), "demo-key")
	b.click(`tr[data-fn="demo/echo"]`)
	b.waitText(10*time.Second, "#charts-title", "the charts", func(s string) bool { return strings.HasPrefix(s, "echo") })
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if dst := os.Getenv("FERRY_SCREENSHOT"); dst != "" {
		shot = dst
		// A varying load for a minute and a half, so that the history
		// has points and the charts have a shape, and one failed task.
		for i := range 90 {
			for j := range 1 + (i/10)%4*3 {
				submit(t, p, "demo-key", "echo", `{"n":`+strconv.Itoa(i*10+j)+`}`)
			}
			time.Sleep(time.Second) // paces a demo load; nothing waits on it
		}
		be.failing.Store(true)
		submit(t, p, "demo-key", "flaky", `{"order":7}`)
		b.waitText(15*time.Second, "#tasks tbody", "a failed task", func(s string) bool { return strings.Contains(s, "flaky says no") })
	}
	b.screenshot(shot)

	// The key travels in a header only: never logged.
	if logb, err := os.ReadFile(p.LogPath()); err != nil {
		t.Fatal(err)
	} else {
		for _, k := range []string{"demo-key", "admin-key", "other-key"} {
			if strings.Contains(string(logb), k) {
				t.Errorf("ferry's log contains the key %q", k)
			}
		}
	}
	// The one expected console error is the refused key's 401.
	for _, e := range b.consoleErrors() {
		if !strings.Contains(e, "401") {
			t.Errorf("browser console: %s", e)
		}
	}
}
