package sharedtest

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// OpenTraces opens a trace counter on fresh state (its own prefix, its
// own memory) over window, and returns a function that opens one node on
// that state: on Redis a new client on the same prefix, in memory the
// same counter.
type OpenTraces func(t *testing.T, window time.Duration) (node func() dispatcher.TraceCounter)

// Trace ids of the trace tests.
var (
	trace1 = trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	trace2 = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
)

// TestTraces runs the TraceCounter contract against the counters open
// opens.
func TestTraces(t *testing.T, open OpenTraces) {
	t.Run("CountsPerTraceAndLane", func(t *testing.T) {
		t.Parallel()
		c := open(t, time.Minute)()
		for want := 1; want <= 3; want++ {
			mustCount(t, c, trace1, laneA, want)
		}
		mustCount(t, c, trace1, laneB, 1)
		mustCount(t, c, trace2, laneA, 1)
		mustCount(t, c, trace1, laneU, 1) // another tenant's function of the same name
		mustCount(t, c, trace1, laneA, 4)
	})
	t.Run("NodesShareCounts", func(t *testing.T) {
		t.Parallel()
		node := open(t, time.Minute)
		one, other := node(), node()
		mustCount(t, one, trace1, laneA, 1)
		mustCount(t, other, trace1, laneA, 2)
		mustCount(t, one, trace1, laneA, 3)
	})
	t.Run("WindowExpiry", func(t *testing.T) {
		t.Parallel()
		const window = time.Second
		c := open(t, window)()
		mustCount(t, c, trace1, laneA, 1)
		mustCount(t, c, trace1, laneA, 2)
		// The window is time on the store's side (a key's TTL on Redis):
		// only waiting it out shows the counts go.
		time.Sleep(window + 500*time.Millisecond)
		mustCount(t, c, trace1, laneA, 1)
	})
	t.Run("Isolation", func(t *testing.T) {
		t.Parallel()
		one, other := open(t, time.Minute)(), open(t, time.Minute)()
		mustCount(t, one, trace1, laneA, 1)
		mustCount(t, one, trace1, laneA, 2)
		mustCount(t, other, trace1, laneA, 1)
	})
}

// mustCount counts one attempt of lane in tid and fails unless the count
// is want.
func mustCount(t *testing.T, c dispatcher.TraceCounter, tid trace.TraceID, lane wire.Lane, want int) {
	t.Helper()
	n, err := c.Count(context.Background(), tid, lane)
	if err != nil {
		t.Fatalf("Count(%s, %v): %v", tid, lane, err)
	}
	if n != want {
		t.Fatalf("Count(%s, %v) = %d, want %d", tid, lane, n, want)
	}
}
