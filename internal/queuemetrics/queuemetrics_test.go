package queuemetrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// stats is a Queue whose only working method is Stats.
type stats struct {
	async.Queue
	lanes []async.LaneStats
}

func (s stats) Stats() []async.LaneStats { return s.lanes }

// TestDepthAndMaxQueued: the depth sums a tenant's lanes per state, and
// every configured tenant's max_queued is exported, with or without tasks.
func TestDepthAndMaxQueued(t *testing.T) {
	q := stats{lanes: []async.LaneStats{
		{Lane: wire.Lane{Tenant: "a", Function: "f"}, Queued: 3, Running: 1},
		{Lane: wire.Lane{Tenant: "a", Function: "g"}, Queued: 2, Running: 2},
	}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(q, map[string]int{"a": 100, "b": 5}))
	want := `# HELP ferry_queue_depth Unfinished tasks per tenant and state (queued includes delayed and waiting for retry).
# TYPE ferry_queue_depth gauge
ferry_queue_depth{state="queued",tenant="a"} 5
ferry_queue_depth{state="running",tenant="a"} 3
# HELP ferry_tenant_max_queued The tenant's max_queued: how many unfinished tasks (queued and running) it may have before submit answers 429.
# TYPE ferry_tenant_max_queued gauge
ferry_tenant_max_queued{tenant="a"} 100
ferry_tenant_max_queued{tenant="b"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
