// Command load measures Ferry's async path end to end on this machine: the
// first-task latency of a fresh server, the submit rate of the HTTP API with
// a concurrent keep-alive client, and the rate at which tasks finish, with an
// in-process no-op Go backend (-backend go) or a local no-op HTTP function
// (-backend http). It starts Ferry in-process on a temporary store and
// prints one line per figure. Not a test: `make bench` runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydev/ferry"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
)

func main() {
	n := flag.Int("n", 20000, "tasks to submit")
	c := flag.Int("c", 32, "concurrent submitting clients")
	kind := flag.String("backend", "go", "backend: go (in-process no-op) or http (local no-op server)")
	workers := flag.Int("workers", 64, "dispatcher.workers and the function's max_concurrency")
	flag.Parse()
	if err := run(*n, *c, *kind, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// recorder notes when the backend first saw each task.
type recorder struct {
	mu    sync.Mutex
	start map[string]time.Time
	count atomic.Int64
}

func (r *recorder) saw(id string) {
	now := time.Now()
	r.mu.Lock()
	if _, dup := r.start[id]; !dup {
		r.start[id] = now
		r.count.Add(1)
	}
	r.mu.Unlock()
}

func run(n, c int, kind string, workers int) error {
	dir, err := os.MkdirTemp("", "ferry-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rec := &recorder{start: map[string]time.Time{}}

	backendYAML := "go: { timeout: 30s }"
	var opts []ferry.Option
	switch kind {
	case "go":
		opts = append(opts, ferry.WithFunction("load", "noop", dispatcher.BackendFunc(
			func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
				rec.saw(inv.ID)
				return &dispatcher.Result{}, nil
			})))
	case "http":
		fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec.saw(r.Header.Get("Ce-Id"))
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		defer fn.Close()
		backendYAML = fmt.Sprintf("http: { url: %q, timeout: 30s }", fn.URL)
	default:
		return fmt.Errorf("unknown backend %q", kind)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	yaml := fmt.Sprintf(`
server: { listen: %q }
store: { embedded: { path: %q } }
dispatcher: { workers: %d }
log: { level: warn }
tenants: [ { name: load, api_keys: [load-key], max_concurrency: %d, max_queued: %d } ]
functions:
  - { name: noop, tenant: load, max_concurrency: %d, backend: { %s } }
`, addr, dir, workers, workers, n+10, workers, backendYAML)
	cfg, err := config.Parse("load.yaml", []byte(yaml), nil)
	if err != nil {
		return err
	}
	opts = append(opts, ferry.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	srv, err := ferry.New(cfg, opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
	url := "http://" + addr + "/v1/functions/noop/tasks"
	submit := func() (string, error) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(`{"n":1}`)))
		req.Header.Set("Authorization", "Bearer load-key")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			return "", fmt.Errorf("submit: %d %s", resp.StatusCode, body)
		}
		return idOf(body), nil
	}
	for !ready(client, addr) {
		time.Sleep(10 * time.Millisecond)
	}

	// First task on a fresh server: submit → backend start.
	t0 := time.Now()
	id, err := submit()
	if err != nil {
		return err
	}
	ack := time.Since(t0)
	for rec.count.Load() < 1 {
		time.Sleep(100 * time.Microsecond)
	}
	rec.mu.Lock()
	first := rec.start[id].Sub(t0)
	rec.mu.Unlock()
	fmt.Printf("backend=%s first_task: 202 after %s, backend started after %s\n", kind, ack.Round(time.Microsecond), first.Round(time.Microsecond))

	// Throughput: n tasks from c clients.
	submitted := make([]time.Time, 0, n)
	ids := make([]string, 0, n)
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	var submitErr atomic.Value
	start := time.Now()
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				at := time.Now()
				id, err := submit()
				if err != nil {
					submitErr.Store(err)
					return
				}
				mu.Lock()
				submitted, ids = append(submitted, at), append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err, _ := submitErr.Load().(error); err != nil {
		return err
	}
	submitDur := time.Since(start)
	for rec.count.Load() < int64(n+1) {
		time.Sleep(time.Millisecond)
	}
	total := time.Since(start)
	lat := make([]time.Duration, len(ids))
	rec.mu.Lock()
	for i, id := range ids {
		lat[i] = rec.start[id].Sub(submitted[i])
	}
	rec.mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Microsecond) }
	fmt.Printf("backend=%s n=%d clients=%d workers=%d submit_rate=%.0f/s dispatched_rate=%.0f/s submit→start p50=%s p99=%s max=%s\n",
		kind, n, c, workers, float64(n)/submitDur.Seconds(), float64(n)/total.Seconds(), pct(0.5), pct(0.99), lat[len(lat)-1].Round(time.Microsecond))
	return nil
}

func ready(c *http.Client, addr string) bool {
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// idOf returns the "id" of a task JSON.
func idOf(body []byte) string {
	var t struct{ ID string }
	_ = json.Unmarshal(body, &t)
	return t.ID
}
