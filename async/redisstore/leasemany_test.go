package redisstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// TestLeaseManyKeepsLimitsAndTurns: one call leases as many tasks as the
// limits allow, the lanes taking turns, and no more than asked.
func TestLeaseManyKeepsLimitsAndTurns(t *testing.T) {
	ctx := context.Background()
	q := openTest(t, Options{
		Tenants:   map[string]Limit{"acme": {}},
		Functions: map[wire.Lane]Limit{{Tenant: "acme", Function: "a"}: {MaxConcurrency: 2}},
	})
	now := time.Now()
	for i := range 4 {
		for _, fn := range []string{"a", "b"} {
			task := &async.Task{ID: fmt.Sprintf("%s%d", fn, i), Tenant: "acme", Function: fn, CreatedAt: now, ReadyAt: now}
			if _, _, err := q.Enqueue(ctx, task, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		n    int
		want string // functions of the tasks leased, in order
	}{
		{n: 3, want: "a b a"},  // the lanes alternate
		{n: 10, want: "b b b"}, // a is at max_concurrency 2; b gives what it has
		{n: 5, want: ""},       // nothing left that may run
	}
	for _, tt := range tests {
		got, _, err := q.LeaseMany(ctx, async.LeaseRequest{TTL: time.Minute}, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		var fns []string
		for _, task := range got {
			if task.Status != async.StatusRunning || task.Lease == 0 {
				t.Fatalf("leased %+v: want running with a lease token", task)
			}
			fns = append(fns, task.Function)
		}
		if g := strings.Join(fns, " "); g != tt.want {
			t.Fatalf("LeaseMany(%d) leased %q, want %q", tt.n, g, tt.want)
		}
	}
}
