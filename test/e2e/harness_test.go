// Package e2e runs the ferry binary, built once with the race detector,
// against recording HTTP backends and webhook receivers in the test
// process, and checks the pinned contracts of shared/design.md end to end.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	ferryBin string // the binary under test, built with -race by TestMain
	repoRoot string // the module root
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "ferry-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ferryBin = filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-race", "-o", ferryBin, "./cmd/ferry")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building ferry: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// freeAddr returns a loopback address nobody listens on (just now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// ferryProc is one `ferry serve` process (and its restarts) on one config
// and data directory.
type ferryProc struct {
	t          *testing.T
	cfgPath    string
	dataDir    string
	addr       string
	base       string // http://addr
	key        string // default API key of the client helpers
	stderrPath string
	shutdown   time.Duration // server.shutdown_timeout of the config

	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	state  *os.ProcessState
	client *http.Client
}

// startFerry writes cfgYAML to a temp dir, with {{listen}} replaced by a free
// loopback address and {{data}} by a data directory in the temp dir, starts
// `ferry serve -c` on it and waits until /readyz answers 200. shutdown is
// the config's server.shutdown_timeout (0: the default 30s).
func startFerry(t *testing.T, cfgYAML string) *ferryProc {
	t.Helper()
	dir := t.TempDir()
	f := &ferryProc{
		t:          t,
		cfgPath:    filepath.Join(dir, "ferry.yaml"),
		dataDir:    filepath.Join(dir, "data"),
		addr:       freeAddr(t),
		stderrPath: filepath.Join(dir, "stderr.log"),
		shutdown:   30 * time.Second,
		client:     &http.Client{Timeout: 10 * time.Second},
	}
	f.base = "http://" + f.addr
	cfg := strings.NewReplacer("{{listen}}", f.addr, "{{data}}", f.dataDir).Replace(cfgYAML)
	if err := os.WriteFile(f.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.cleanup)
	f.start()
	return f
}

// start runs the binary and waits for readiness.
func (f *ferryProc) start() {
	f.t.Helper()
	logf, err := os.OpenFile(f.stderrPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		f.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== e2e: starting ferry serve -c %s\n", f.cfgPath)
	cmd := exec.Command(ferryBin, "serve", "-c", f.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		f.t.Fatal(err)
	}
	done := make(chan struct{})
	f.cmd, f.done, f.state = cmd, done, nil
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			f.state = cmd.ProcessState
			f.t.Fatalf("ferry exited before it was ready: %v\n%s", f.state, f.stderrTail())
		default:
		}
		resp, err := f.client.Get(f.base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("ferry not ready within 20s (last error %v)\n%s", err, f.stderrTail())
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

func (f *ferryProc) running() bool {
	if f.cmd == nil {
		return false
	}
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

// kill9 kills the process with SIGKILL and waits until it is gone.
func (f *ferryProc) kill9() {
	f.t.Helper()
	if !f.running() {
		f.t.Fatal("kill9: ferry is not running")
	}
	_ = f.cmd.Process.Signal(syscall.SIGKILL)
	<-f.done
	f.state = f.cmd.ProcessState
}

// term sends SIGTERM and asserts a clean exit (code 0) within
// shutdown_timeout + 5s.
func (f *ferryProc) term() {
	f.t.Helper()
	if !f.running() {
		f.t.Fatal("term: ferry is not running")
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	limit := f.shutdown + 5*time.Second
	select {
	case <-f.done:
	case <-time.After(limit):
		_ = f.cmd.Process.Signal(syscall.SIGKILL)
		<-f.done
		f.t.Fatalf("ferry did not exit within %s of SIGTERM\n%s", limit, f.stderrTail())
	}
	f.state = f.cmd.ProcessState
	if code := f.state.ExitCode(); code != 0 {
		f.t.Fatalf("ferry exited with code %d after SIGTERM, want 0\n%s", code, f.stderrTail())
	}
}

// restart starts the process again on the same config and data directory.
func (f *ferryProc) restart() {
	f.t.Helper()
	if f.running() {
		f.t.Fatal("restart: ferry is still running")
	}
	f.start()
}

func (f *ferryProc) cleanup() {
	if f.running() {
		_ = f.cmd.Process.Signal(syscall.SIGKILL)
		<-f.done
	}
	log, _ := os.ReadFile(f.stderrPath)
	if bytes.Contains(log, []byte("DATA RACE")) {
		f.t.Errorf("the race detector reported a DATA RACE in ferry:\n%s", raceReports(log))
	}
	if bytes.Contains(log, []byte("panic:")) {
		f.t.Errorf("ferry panicked:\n%s", f.stderrTail())
	}
	if f.t.Failed() {
		f.t.Logf("ferry stderr (tail):\n%s", f.stderrTail())
	}
}

// raceReports returns the race detector's reports from a log.
func raceReports(log []byte) string {
	s := string(log)
	if i := strings.Index(s, "WARNING: DATA RACE"); i > 0 {
		s = s[max(0, i-100):]
	}
	if len(s) > 20000 {
		s = s[:20000] + "\n..."
	}
	return s
}

func (f *ferryProc) stderrTail() string {
	b, _ := os.ReadFile(f.stderrPath)
	const n = 6000
	if len(b) > n {
		b = append([]byte("...\n"), b[len(b)-n:]...)
	}
	return string(b)
}

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
	Hops       int             `json:"hops"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Output     json.RawMessage `json:"output"`
	Error      *apiError       `json:"error"`
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

// do sends one API request. hdr may set Authorization; an empty value
// removes it; without it the request carries the proc's default key.
func (f *ferryProc) do(method, path string, body []byte, hdr map[string]string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, f.base+path, rd)
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
	waitFor(t, 30*time.Second, "task "+id+" to finish", func() bool {
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
	waitFor(t, 30*time.Second, "the outcome of task "+id+" to be delivered", func() bool {
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

// waitFor polls cond every 20ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
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
