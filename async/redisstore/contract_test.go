package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/queuetest"
)

// TestQueueContract runs the store-independent queue suite on Redis, with
// two nodes (two Queues on one prefix) for its cluster scenarios.
func TestQueueContract(t *testing.T) {
	var optsOf sync.Map // *Queue → Options, to open the same storage again
	tenants := map[string]Limit{}
	for _, tn := range queuetest.Tenants() {
		tenants[tn] = Limit{}
	}
	open := func(t testing.TB, o Options) async.Queue {
		q := openTest(t, o)
		optsOf.Store(q, o)
		return q
	}
	optionsOf := func(q async.Queue) Options {
		o, _ := optsOf.Load(q)
		return o.(Options)
	}
	queuetest.TestQueue(t, queuetest.Harness{
		Open: func(t testing.TB, c *queuetest.Clock) async.Queue {
			return open(t, Options{
				Prefix: testPrefix(t), Retention: queuetest.Retention, IdempotencyTTL: queuetest.IdempotencyTTL,
				Clock: c.Now, Skew: func() time.Duration { return time.Until(c.Now()) }, Tenants: tenants,
			})
		},
		Reopen: func(t testing.TB, q async.Queue) async.Queue {
			o := optionsOf(q)
			_ = q.Close()
			return open(t, o)
		},
		Upkeep: func(t testing.TB, q async.Queue) {
			if err := q.(*Queue).Upkeep(context.Background()); err != nil {
				t.Errorf("Upkeep: %v", err)
			}
		},
		Second: func(t testing.TB, q async.Queue) async.Queue { return open(t, optionsOf(q)) },
	})
}

// TestTriggerStatesContract runs the paused-trigger contract on Redis,
// with a second node on the same prefix.
func TestTriggerStatesContract(t *testing.T) {
	t.Parallel()
	var optsOf sync.Map // *Queue → Options
	open := func(t testing.TB, o Options) *Queue {
		q := openTest(t, o)
		optsOf.Store(q, o)
		return q
	}
	again := func(t testing.TB, s queuetest.TriggerStates) *Queue {
		o, _ := optsOf.Load(s.(*Queue))
		return open(t, o.(Options))
	}
	queuetest.TestTriggerStates(t, queuetest.StatesHarness{
		Open: func(t testing.TB) queuetest.TriggerStates { return open(t, Options{Prefix: testPrefix(t)}) },
		Reopen: func(t testing.TB, s queuetest.TriggerStates) queuetest.TriggerStates {
			_ = s.(*Queue).Close()
			return again(t, s)
		},
		Second: func(t testing.TB, s queuetest.TriggerStates) queuetest.TriggerStates { return again(t, s) },
	})
}
