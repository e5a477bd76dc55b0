package embedded

import (
	"context"
	"testing"
)

// TestTriggerStatesBesideTasks: the paused triggers share the directory
// with the tasks without touching them: a restart finds both, and the
// tasks' scan and listing skip the trigger keys.
func TestTriggerStatesBesideTasks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q, b := setup(t)
	mustEnqueue(t, q, newTask(b, "t1", "acme", "echo"))
	if err := q.SetTriggerPaused(ctx, "orders", true); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, q, newTask(b, "t2", "acme", "echo"))
	q = reopen(t, q, b)
	paused, err := q.PausedTriggers(ctx)
	if err != nil || len(paused) != 1 || !paused["orders"] {
		t.Fatalf("PausedTriggers after a restart = %v, %v; want orders", paused, err)
	}
	if n := len(q.Stats()); n != 1 || q.Stats()[0].Queued != 2 {
		t.Fatalf("Stats after a restart = %+v, want the 2 queued tasks", q.Stats())
	}
}
