package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/localferry"
)

// TestAgainstFerry runs the client against a real Ferry in this process:
// an embedded store in a temporary directory and Go functions.
func TestAgainstFerry(t *testing.T) {
	url := localferry.Start(t, map[string]dispatcher.Backend{
		"echo": localferry.Echo,
		"bulk": localferry.Echo,
		"fail": localferry.Fail,
	})
	c, err := client.New(url, localferry.Key, client.WithPollInterval(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("SubmitWaitGet", func(t *testing.T) {
		sub, err := c.Submit(ctx, "echo", []byte(`{"hello":"world"}`), client.SubmitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sub.ID == "" || sub.Status != client.StatusQueued || sub.Function != "echo" {
			t.Fatalf("submitted %s, want a queued echo task", sub.Raw())
		}
		done, err := c.Wait(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != client.StatusSucceeded || done.Attempts != 1 {
			t.Errorf("finished %s, want succeeded after 1 attempt", done.Raw())
		}
		var out map[string]string
		if err := json.Unmarshal(done.Output, &out); err != nil || out["hello"] != "world" {
			t.Errorf("output %s, want the payload back", done.Output)
		}
		got, err := c.Get(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != client.StatusSucceeded || got.FinishedAt == nil || string(got.Raw()) == "" {
			t.Errorf("Get = %s", got.Raw())
		}
	})

	t.Run("FailThenReplay", func(t *testing.T) {
		sub, err := c.Submit(ctx, "fail", []byte("x"), client.SubmitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		done, err := c.Wait(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != client.StatusFailed || done.Error == nil || !strings.Contains(done.Error.Message, "boom") {
			t.Fatalf("finished %s, want failed with the function's error", done.Raw())
		}
		again, err := c.Replay(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again.Status != client.StatusQueued || again.Replays != 1 {
			t.Errorf("replayed %s, want queued with 1 replay", again.Raw())
		}
		done, err = c.Wait(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != client.StatusFailed || done.Replays != 1 {
			t.Errorf("after the replay %s, want failed again, 1 replay", done.Raw())
		}
		page, err := c.List(ctx, client.ListOptions{Function: "fail", Status: client.StatusFailed})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Tasks) != 1 || page.Tasks[0].ID != sub.ID {
			t.Errorf("failed tasks of fail: %v, want [%s]", ids(page.Tasks), sub.ID)
		}
	})

	t.Run("CancelAndConflicts", func(t *testing.T) {
		sub, err := c.Submit(ctx, "echo", []byte("later"), client.SubmitOptions{Delay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if sub.ScheduledAt == nil || time.Until(*sub.ScheduledAt) < 50*time.Minute {
			t.Errorf("scheduled_at %v, want an hour from now", sub.ScheduledAt)
		}
		got, err := c.Cancel(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != client.StatusCancelled {
			t.Errorf("cancelled %s", got.Raw())
		}
		if _, err := c.Cancel(ctx, sub.ID); !client.IsConflict(err) {
			t.Errorf("cancelling twice: %v, want a 409", err)
		}
		if _, err := c.Replay(ctx, sub.ID); !client.IsConflict(err) {
			t.Errorf("replaying a cancelled task: %v, want a 409", err)
		}
		if _, err := c.Get(ctx, "no-such-task"); !client.IsNotFound(err) {
			t.Errorf("Get of an unknown id: %v, want a 404", err)
		}
		if _, err := c.Submit(ctx, "nope", []byte("x"), client.SubmitOptions{}); !client.IsNotFound(err) {
			t.Errorf("Submit to an unknown function: %v, want a 404", err)
		}
	})

	t.Run("IdempotencyKey", func(t *testing.T) {
		a, err := c.Submit(ctx, "echo", []byte("once"), client.SubmitOptions{IdempotencyKey: "order-42"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Submit(ctx, "echo", []byte("once"), client.SubmitOptions{IdempotencyKey: "order-42"})
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != b.ID {
			t.Errorf("the same key gave tasks %s and %s", a.ID, b.ID)
		}
	})

	t.Run("BatchInChunks", func(t *testing.T) {
		items := make([]client.BatchItem, 1500)
		for i := range items {
			items[i] = client.BatchItem{Payload: json.RawMessage(fmt.Sprint(i))}
		}
		items[1499] = client.BatchItem{Data: []byte{0, 1, 2}, IdempotencyKey: "bin"}
		res, err := c.SubmitBatch(ctx, "bulk", items)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i, r := range res {
			if r.Err != nil || r.Task == nil {
				t.Fatalf("item %d: %+v, want a task", i, r)
			}
			seen[r.Task.ID] = true
		}
		if len(seen) != 1500 {
			t.Errorf("%d distinct tasks, want 1500", len(seen))
		}
		n := 0
		for task, err := range c.ListAll(ctx, client.ListOptions{Function: "bulk", Limit: 400}) {
			if err != nil {
				t.Fatal(err)
			}
			if !seen[task.ID] {
				t.Errorf("listed task %s that the batch did not make", task.ID)
			}
			n++
		}
		if n != 1500 {
			t.Errorf("listed %d tasks of bulk, want 1500", n)
		}
		last, err := c.Wait(ctx, res[1499].Task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if last.Status != client.StatusSucceeded || string(last.Output) != `"\u0000\u0001\u0002"` {
			t.Errorf("binary item: %s output %s", last.Status, last.Output)
		}
	})

	t.Run("WrongKey", func(t *testing.T) {
		bad, err := client.New(url, "not-a-key")
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.List(ctx, client.ListOptions{})
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 401 || e.Code != "unauthorized" {
			t.Errorf("List with a wrong key: %v, want 401 unauthorized", err)
		}
	})
}

func ids(ts []*client.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}
