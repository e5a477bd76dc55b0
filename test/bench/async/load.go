package async

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
)

// submitFunc submits one task whose payload carries t. delay, when not
// zero, asks the system to hold the task that long.
type submitFunc func(ctx context.Context, t time.Time, delay time.Duration) error

// ferryClient submits tasks to Ferry's HTTP API over keep-alive
// connections.
type ferryClient struct {
	url, auth string
	tr        *http.Transport
	client    *http.Client
}

// newFerryClient returns a client for POST /v1/functions/{fn}/tasks with
// up to conns connections, all kept alive.
func newFerryClient(apiAddr, fn, key string, conns int) *ferryClient {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &ferryClient{
		url:  "http://" + apiAddr + "/v1/functions/" + fn + "/tasks",
		auth: "Bearer " + key, tr: tr, client: &http.Client{Transport: tr, Timeout: time.Minute},
	}
}

// submit posts one task and expects 202.
func (c *ferryClient) submit(ctx context.Context, t time.Time, delay time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(payload(t)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/json")
	if delay > 0 {
		req.Header.Set("Ferry-Delay", delay.String())
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // to the end, so the connection is reused
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("submit: %s: %.200s", resp.Status, body)
	}
	return nil
}

// submitBatch posts n tasks in one batch submit and expects 202 with no
// task refused.
func (c *ferryClient) submitBatch(ctx context.Context, n int, delay time.Duration) error {
	var body bytes.Buffer
	body.WriteString(`{"tasks":[`)
	item := `{"payload":`
	for i := range n {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(item)
		body.Write(payload(time.Now()))
		if delay > 0 {
			body.WriteString(`,"delay":"` + delay.String() + `"`)
		}
		body.WriteByte('}')
	}
	body.WriteString(`]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/batch", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("batch submit: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("batch submit: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted || bytes.Contains(out, []byte(`"error":`)) {
		return fmt.Errorf("batch submit: %s: %.200s", resp.Status, out)
	}
	return nil
}

// batchSubmit returns a submitFunc whose every call sends batchSize tasks.
func (c *ferryClient) batchSubmit() submitFunc {
	return func(ctx context.Context, _ time.Time, delay time.Duration) error {
		return c.submitBatch(ctx, batchSize, delay)
	}
}

// batchSize is the tasks per batch submit in the batch workloads.
const batchSize = 100

func (c *ferryClient) close() { c.tr.CloseIdleConnections() }

// asynqClient enqueues tasks of type "noop" on asynq's default queue.
type asynqClient struct{ c *asynq.Client }

// newAsynqClient returns an asynq.Client with a Redis pool of conns
// connections (go-redis's default, 10 per CPU, would queue 32 callers).
func newAsynqClient(addr string, conns int) *asynqClient {
	return &asynqClient{c: asynq.NewClient(asynq.RedisClientOpt{Addr: addr, DB: asynqDB, PoolSize: conns})}
}

// submit enqueues one task; a delay schedules it (ProcessIn).
func (c *asynqClient) submit(ctx context.Context, t time.Time, delay time.Duration) error {
	var opts []asynq.Option
	if delay > 0 {
		opts = append(opts, asynq.ProcessIn(delay))
	}
	if _, err := c.c.EnqueueContext(ctx, asynq.NewTask("noop", payload(t)), opts...); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

func (c *asynqClient) close() { _ = c.c.Close() }

// closedLoop submits n tasks from workers goroutines, each sending its
// next task as soon as the previous one is accepted, and returns how long
// that took. The payload carries the instant each submission began.
func closedLoop(ctx context.Context, n, workers int, submit submitFunc, delay time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := submit(ctx, time.Now(), delay); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if ctx.Err() != nil {
		return took, context.Cause(ctx)
	}
	return took, nil
}

// openLoop offers rate tasks per second for dur, whatever the answers
// take (up to workers submissions in flight; a backlog waits in a queue).
// Every payload carries the instant the task was due, not when it was
// sent, so a slow answer or a starved generator shows in the latency
// instead of lowering the offered rate (no coordinated omission). It
// returns when the first task was due and the number of tasks submitted.
func openLoop(ctx context.Context, rate float64, dur time.Duration, workers int, submit submitFunc) (time.Time, int, error) {
	total := int(rate * dur.Seconds())
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	due := make(chan time.Time, total)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for t := range due {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := submit(ctx, t, 0); err != nil {
					cancel(err)
				}
			}
		})
	}
	start := time.Now()
	sent := 0
	for ; sent < total && ctx.Err() == nil; sent++ {
		at := start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		due <- at
	}
	close(due)
	wg.Wait()
	if ctx.Err() != nil {
		return start, sent, context.Cause(ctx)
	}
	return start, sent, nil
}
