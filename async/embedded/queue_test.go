package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

// The store-independent behaviour is in the async/queuetest suite
// (contract_test.go); the tests here need the embedded store's own
// files and internals.

// TestCrashWithoutClose runs a child process that enqueues and leases tasks
// and exits without closing the queue (as kill -9 would leave it): after
// Open, every task is queued, the leased ones with Recoveries 1, and no
// attempt is spent.
func TestCrashWithoutClose(t *testing.T) {
	if dir := os.Getenv("EMBEDDED_CRASH_DIR"); dir != "" {
		crashChild(dir)
		return
	}
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWithoutClose$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EMBEDDED_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	q := open(t, &testBundle{dir: dir, opts: Options{Logger: quietLogger}})
	ctx := context.Background()
	tasks, _, err := q.List(ctx, async.ListOptions{Tenant: "acme"})
	if err != nil || len(tasks) != 11 {
		t.Fatalf("List = %d tasks, %v", len(tasks), err)
	}
	recovered := 0
	for _, task := range tasks {
		if task.Status != async.StatusQueued || task.Attempts != 0 {
			t.Fatalf("after crash: %+v", task)
		}
		recovered += task.Recoveries
	}
	if recovered != 5 {
		t.Fatalf("recoveries = %d, want 5", recovered)
	}
	if s := q.Stats(); len(s) != 1 || s[0].Queued != 11 || s[0].Running != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

func crashChild(dir string) {
	q, err := Open(dir, Options{Logger: quietLogger})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	now := time.Now()
	enqueue := func(id string) {
		task := &async.Task{ID: id, Tenant: "acme", Function: "echo", CreatedAt: now, ReadyAt: now}
		if _, _, err := q.Enqueue(ctx, task, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for i := range 10 {
		enqueue(seqID("t", i))
	}
	for range 5 {
		if task, _, err := q.Lease(ctx, async.LeaseRequest{TTL: time.Hour}); task == nil || err != nil {
			fmt.Fprintln(os.Stderr, "lease:", err)
			os.Exit(1)
		}
	}
	// A synced write makes the WAL durable up to here, the NoSync leases
	// included; then die without Close.
	enqueue("last")
	os.Exit(3)
}
