package embedded

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// TestLeaseManyRoom: LeaseMany takes no more of a lane than Room leaves
// it, and the other lanes fill the call.
func TestLeaseManyRoom(t *testing.T) {
	q, b := setup(t)
	ctx := context.Background()
	now := b.clock.Now()
	for i := range 4 {
		for _, fn := range []string{"a", "b"} {
			task := &async.Task{ID: fmt.Sprintf("%s%d", fn, i), Tenant: "acme", Function: fn, CreatedAt: now, ReadyAt: now}
			if _, _, err := q.Enqueue(ctx, task, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	room := func(l wire.Lane) int {
		if l.Function == "a" {
			return 1
		}
		return -1
	}
	got, _, err := q.LeaseMany(ctx, async.LeaseRequest{TTL: time.Minute, Room: room}, 16)
	if err != nil {
		t.Fatal(err)
	}
	var fns []string
	for _, task := range got {
		fns = append(fns, task.Function)
	}
	if g := strings.Join(fns, " "); g != "a b b b b" {
		t.Fatalf("leased %q, want one a (its room) and every b", g)
	}
}
