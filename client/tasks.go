package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// Get reads a task. Another tenant's task is not found (IsNotFound), as is
// an unknown one.
func (c *Client) Get(ctx context.Context, id string) (*Task, error) {
	return c.taskCall(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id))
}

// Cancel cancels a task that is still queued and returns it (status
// cancelled). A task already running or finished is a 409 (IsConflict).
func (c *Client) Cancel(ctx context.Context, id string) (*Task, error) {
	return c.taskCall(ctx, http.MethodDelete, "/v1/tasks/"+url.PathEscape(id))
}

// Replay queues a failed task again with a fresh retry budget and returns
// it (status queued). A task in another status, or whose outcome is still
// being delivered, is a 409 (IsConflict).
func (c *Client) Replay(ctx context.Context, id string) (*Task, error) {
	return c.taskCall(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/replay")
}

func (c *Client) taskCall(ctx context.Context, method, path string) (*Task, error) {
	var t Task
	if err := c.do(ctx, request{method: method, path: path}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListOptions select and page a task listing. Zero values select
// everything.
type ListOptions struct {
	// Function keeps the tasks of one function.
	Function string
	// Status keeps the tasks in one status.
	Status Status
	// Cursor continues a listing from a Page's NextCursor; "" starts at the
	// newest task.
	Cursor string
	// Limit is the page size, 1 to 1000. Defaults to the API's (100).
	Limit int
}

// List reads one page of the tenant's tasks, newest first.
func (c *Client) List(ctx context.Context, opts ListOptions) (*Page, error) {
	q := url.Values{}
	if opts.Function != "" {
		q.Set("function", opts.Function)
	}
	if opts.Status != "" {
		q.Set("status", string(opts.Status))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var p Page
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/tasks", query: q}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListAll iterates over every task the options select, newest first,
// reading page after page (of opts.Limit tasks) as the loop asks for
// them; opts.Cursor starts it further on. An error ends the iteration:
// it is yielded with a nil task.
//
//	for t, err := range c.ListAll(ctx, client.ListOptions{Function: "echo"}) {
//		if err != nil { return err }
//		...
//	}
func (c *Client) ListAll(ctx context.Context, opts ListOptions) iter.Seq2[*Task, error] {
	return func(yield func(*Task, error) bool) {
		for {
			p, err := c.List(ctx, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, t := range p.Tasks {
				if !yield(t, nil) {
					return
				}
			}
			if p.NextCursor == "" || len(p.Tasks) == 0 {
				return
			}
			opts.Cursor = p.NextCursor
		}
	}
}

// Wait reads the task until it is finished (succeeded, failed or
// cancelled) and returns it: a failed task is a task, not an error. It
// polls with backoff (see WithPollInterval) and rides out answers that say
// a retry helps (429, 503, ...), after their Retry-After; any other error,
// or the end of ctx, ends it. Bound it with a context deadline.
func (c *Client) Wait(ctx context.Context, id string) (*Task, error) {
	interval := c.cfg.pollMin
	for {
		t, err := c.Get(ctx, id)
		wait := interval
		switch {
		case err == nil && t.Status.Final():
			return t, nil
		case err != nil:
			var e *Error
			if !errors.As(err, &e) || !e.Temporary() {
				return nil, err
			}
			wait = max(wait, e.RetryAfter)
		}
		if err := c.cfg.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("ferry: waiting for task %s: %w", id, err)
		}
		interval = min(interval*2, c.cfg.pollMax)
	}
}
