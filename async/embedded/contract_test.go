package embedded

import (
	"context"
	"sync"
	"testing"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/queuetest"
)

// TestQueueContract runs the async.Queue behaviour suite on the embedded
// store: one node per directory (Pebble locks it), so no Second.
func TestQueueContract(t *testing.T) {
	t.Parallel()
	// bundles remembers where each open queue lives, for Reopen.
	var bundles sync.Map // *Queue → *testBundle
	openBundle := func(t testing.TB, b *testBundle) async.Queue {
		q := open(t, b)
		bundles.Store(q, b)
		return q
	}
	queuetest.TestQueue(t, queuetest.Harness{
		Open: func(t testing.TB, c *queuetest.Clock) async.Queue {
			t.Helper()
			return openBundle(t, newBundle(t, c))
		},
		Reopen: func(t testing.TB, q async.Queue) async.Queue {
			t.Helper()
			b, ok := bundles.LoadAndDelete(q)
			if !ok {
				t.Fatalf("Reopen: %p was not opened by the harness", q)
			}
			if err := q.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return openBundle(t, b.(*testBundle))
		},
		Upkeep: func(t testing.TB, q async.Queue) {
			if err := q.(*Queue).Upkeep(context.Background()); err != nil {
				t.Errorf("Upkeep: %v", err)
			}
		},
	})
}

// TestTriggerStatesContract runs the paused-trigger contract on the
// embedded store.
func TestTriggerStatesContract(t *testing.T) {
	t.Parallel()
	var bundles sync.Map // *Queue → *testBundle
	queuetest.TestTriggerStates(t, queuetest.StatesHarness{
		Open: func(t testing.TB) queuetest.TriggerStates {
			q, b := setup(t)
			bundles.Store(q, b)
			return q
		},
		Reopen: func(t testing.TB, s queuetest.TriggerStates) queuetest.TriggerStates {
			q := s.(*Queue)
			b, ok := bundles.LoadAndDelete(q)
			if !ok {
				t.Fatalf("Reopen: %p was not opened by the harness", q)
			}
			q = reopen(t, q, b.(*testBundle))
			bundles.Store(q, b)
			return q
		},
	})
}
