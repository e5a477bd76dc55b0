package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/localferry"
)

// TestAgainstFerry runs the client commands against a real Ferry in this
// process (embedded store in a temporary directory, Go functions).
func TestAgainstFerry(t *testing.T) {
	release := make(chan struct{})
	// gate holds a task whose payload is "hold" until release is closed.
	gate := dispatcher.BackendFunc(func(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		if string(inv.Payload) != "hold" {
			return &dispatcher.Result{Output: inv.Payload}, nil
		}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &dispatcher.Result{Output: []byte(`"opened"`), ContentType: "application/json"}, nil
	})
	base := localferry.Start(t, map[string]dispatcher.Backend{
		"echo": localferry.Echo, "fail": localferry.Fail, "bulk": localferry.Echo, "gate": gate,
	})
	open := sync.OnceFunc(func() { close(release) })
	t.Cleanup(open) // before Ferry stops: a held task would hold its shutdown
	// A proxy in front of Ferry counts tail's polls.
	var polls atomic.Int64
	target, _ := url.Parse(base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/tasks" && r.URL.Query().Get("function") == "gate" {
			defer polls.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	env := map[string]string{"FERRY_URL": front.URL, "FERRY_API_KEY": localferry.Key}
	ferry := func(t *testing.T, stdin string, args ...string) result {
		t.Helper()
		return invocation{args: args, stdin: stdin, env: env}.run(t)
	}
	taskOf := func(t *testing.T, r result) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("stdout is not one JSON task: %v\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
		}
		return m
	}

	t.Run("SubmitWaitSucceeded", func(t *testing.T) {
		r := ferry(t, `{"hello":"world"}`, "submit", "echo", "--data", "-", "--wait", "--timeout", "30s", "-o", "json")
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
		m := taskOf(t, r)
		if m["status"] != "succeeded" || fmt.Sprint(m["output"]) != "map[hello:world]" {
			t.Errorf("task %s, want succeeded with the payload as output", r.stdout)
		}
		got := ferry(t, "", "tasks", "get", m["id"].(string))
		if got.code != 0 || !strings.Contains(got.stdout, "succeeded") || !strings.Contains(got.stdout, `{"hello":"world"}`) {
			t.Errorf("tasks get: exit %d\n%s", got.code, got.stdout)
		}
	})

	t.Run("SubmitWaitFailedExits1ThenReplay", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "p.json")
		if err := os.WriteFile(path, []byte(`{"n":1}`), 0o600); err != nil {
			t.Fatal(err)
		}
		r := ferry(t, "", "submit", "fail", "--data", "@"+path, "--wait", "-o", "json")
		if r.code != 1 {
			t.Fatalf("exit %d, want 1 for a failed task; stderr %s", r.code, r.stderr)
		}
		m := taskOf(t, r)
		if m["status"] != "failed" || !strings.Contains(fmt.Sprint(m["error"]), "boom") {
			t.Errorf("task %s, want failed with the function's error", r.stdout)
		}
		id := m["id"].(string)
		rp := ferry(t, "", "tasks", "replay", id, "-o", "json")
		if rp.code != 0 || taskOf(t, rp)["status"] != "queued" {
			t.Errorf("replay: exit %d %s %s", rp.code, rp.stdout, rp.stderr)
		}
		list := ferry(t, "", "tasks", "list", "--function", "fail")
		if list.code != 0 || !strings.Contains(list.stdout, id) || !strings.HasPrefix(list.stdout, "ID") {
			t.Errorf("list: exit %d\n%s", list.code, list.stdout)
		}
	})

	t.Run("CancelADelayedTask", func(t *testing.T) {
		r := ferry(t, "", "submit", "echo", "--data", "later", "--delay", "1h", "--idempotency-key", "k-1", "-o", "json")
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
		id := taskOf(t, r)["id"].(string)
		again := ferry(t, "", "submit", "echo", "--data", "later", "--idempotency-key", "k-1", "-o", "json")
		if taskOf(t, again)["id"] != id {
			t.Errorf("the same idempotency key gave another task: %s", again.stdout)
		}
		c := ferry(t, "", "tasks", "cancel", id)
		if c.code != 0 || !strings.Contains(c.stdout, "cancelled") {
			t.Errorf("cancel: exit %d\n%s%s", c.code, c.stdout, c.stderr)
		}
		c = ferry(t, "", "tasks", "cancel", id)
		if c.code != 1 || !strings.Contains(c.stderr, "409 conflict") {
			t.Errorf("second cancel: exit %d, stderr %q; want 1 and the 409", c.code, c.stderr)
		}
	})

	t.Run("BulkFile", func(t *testing.T) {
		var b strings.Builder
		for i := range 1203 {
			fmt.Fprintf(&b, "{\"payload\":{\"i\":%d}}\n", i)
		}
		b.WriteString("\n{\"payload_base64\":\"aGk=\",\"delay\":\"1s\"}\n")
		path := filepath.Join(t.TempDir(), "tasks.jsonl")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		r := ferry(t, "", "submit", "bulk", "--file", path)
		if r.code != 0 || r.stdout != "accepted 1204 of 1204 tasks, refused 0\n" {
			t.Fatalf("exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
		}
		all := ferry(t, "", "tasks", "list", "--function", "bulk", "--all", "-o", "json")
		if n := strings.Count(all.stdout, "\n"); all.code != 0 || n != 1204 {
			t.Errorf("list --all: exit %d, %d lines, want 1204", all.code, n)
		}
	})

	t.Run("TailPrintsATaskFinishingAfterItStarted", func(t *testing.T) {
		// Finished before tail starts: not printed.
		r := ferry(t, "", "submit", "gate", "--data", "pass", "--wait", "-o", "json")
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
		before := taskOf(t, r)["id"].(string)
		// Held until tail has polled once: printed when it finishes.
		later := taskOf(t, ferry(t, "", "submit", "gate", "--data", "hold", "-o", "json"))["id"].(string)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stdout := &syncBuffer{}
		done := make(chan result, 1)
		start := polls.Load()
		go func() {
			done <- invocation{args: []string{"tail", "gate", "--interval", "100ms"}, env: env, ctx: ctx, stdout: stdout}.run(t)
		}()
		waitFor(t, func() bool { return polls.Load() > start })
		open()
		waitFor(t, func() bool { return strings.Contains(stdout.String(), later) })
		cancel()
		r = <-done
		if r.code != 0 {
			t.Errorf("tail: exit %d, stderr %s", r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, later) || !strings.Contains(r.stdout, `"opened"`) {
			t.Errorf("tail printed:\n%s\nwant task %s and its output", r.stdout, later)
		}
		if strings.Contains(r.stdout, before) {
			t.Errorf("tail printed task %s, which had finished before it started:\n%s", before, r.stdout)
		}
	})
}

// waitFor polls cond until it holds, for at most 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
