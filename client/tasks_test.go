package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestListAllReadsEveryPage(t *testing.T) {
	pages := map[string]string{
		"":   `{"tasks":[{"id":"a"},{"id":"b"}],"next_cursor":"c1"}`,
		"c1": `{"tasks":[{"id":"c"}],"next_cursor":"c2"}`,
		"c2": `{"tasks":[{"id":"d"}],"next_cursor":""}`,
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, 200, pages[r.URL.Query().Get("cursor")])
	})
	c, _ := newTestClient(t, f.URL)
	var ids []string
	for task, err := range c.ListAll(context.Background(), ListOptions{Function: "echo", Status: StatusFailed, Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	if strings.Join(ids, ",") != "a,b,c,d" {
		t.Errorf("ids %v, want a,b,c,d", ids)
	}
	if q := f.requests()[0].query; q != "function=echo&limit=2&status=failed" {
		t.Errorf("query %q", q)
	}

	// Breaking out stops the reading.
	before := len(f.requests())
	for range c.ListAll(context.Background(), ListOptions{}) {
		break
	}
	if n := len(f.requests()) - before; n != 1 {
		t.Errorf("%d requests after a break on the first task, want 1", n)
	}
}

func TestWait(t *testing.T) {
	answers := []func(w http.ResponseWriter){
		func(w http.ResponseWriter) { writeJSON(w, 200, `{"id":"t1","status":"queued"}`) },
		func(w http.ResponseWriter) { writeJSON(w, 200, `{"id":"t1","status":"running"}`) },
		func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "3")
			apiError(w, 503, "unavailable", "later")
		},
		func(w http.ResponseWriter) { writeJSON(w, 200, `{"id":"t1","status":"running"}`) },
		func(w http.ResponseWriter) { writeJSON(w, 200, `{"id":"t1","status":"running"}`) },
		func(w http.ResponseWriter) {
			writeJSON(w, 200, `{"id":"t1","status":"failed","error":{"code":"boom","message":"no"}}`)
		},
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { answers[n-1](w) })
	c, slept := newTestClient(t, f.URL, WithPollInterval(100*time.Millisecond, 300*time.Millisecond))
	task, err := c.Wait(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != StatusFailed || task.Error == nil || task.Error.Code != "boom" {
		t.Errorf("task = %+v, want failed with boom", task)
	}
	want := "[100ms 200ms 3s 300ms 300ms]"
	if got := fmt.Sprint(*slept); got != want {
		t.Errorf("slept %s, want %s", got, want)
	}

	t.Run("NotFoundEnds", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { apiError(w, 404, "task_not_found", "no") })
		c, _ := newTestClient(t, f.URL)
		if _, err := c.Wait(context.Background(), "t1"); !IsNotFound(err) {
			t.Errorf("Wait: %v, want the 404", err)
		}
	})
	t.Run("ContextEnds", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			writeJSON(w, 200, `{"id":"t1","status":"queued"}`)
		})
		c, err := New(f.URL, "k", WithPollInterval(time.Millisecond, time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.Wait(ctx, "t1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait: %v, want the deadline", err)
		}
	})
}

func TestCancelReplayPaths(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 3 {
			apiError(w, 409, "conflict", "task is running")
			return
		}
		writeJSON(w, 200, `{"id":"a/b","status":"cancelled"}`)
	})
	c, _ := newTestClient(t, f.URL)
	ctx := context.Background()
	if _, err := c.Cancel(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Replay(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, "a/b"); !IsConflict(err) {
		t.Errorf("Cancel: %v, want the 409", err)
	}
	reqs := f.requests()
	if reqs[0].method != "DELETE" || reqs[1].method != "POST" || reqs[1].path != "/v1/tasks/a/b/replay" {
		t.Errorf("requests %s %s, %s %s", reqs[0].method, reqs[0].path, reqs[1].method, reqs[1].path)
	}
}
