// Package queuetest is the behaviour suite every async.Queue
// implementation runs: the embedded (Pebble) store and the shared (Redis)
// one pass the same scenarios, so a task reads and schedules the same
// whichever store holds it. A store's test calls TestQueue with a Harness
// that opens it.
//
// The suite uses only the async.Queue methods, so a store may differ in
// how it keeps things as long as what the methods return is the same. It
// allows what a shared store needs:
//
//   - Times may be kept at millisecond precision, and a store may take
//     "now" from its own clock, driven by the suite's Clock with a jitter
//     (a store that shifts Redis's TIME to the suite's clock runs ahead
//     of it by the latency of a call): the suite compares times within
//     100ms, and moves the clock well past every boundary (a lease
//     expiry, a delay, a retention) rather than onto it. "Ready now" is
//     such a boundary too, as is the order of tasks made at one instant,
//     so the clock moves on by 100ms before each task the suite builds
//     and each lease it takes.
//   - Stats may be refreshed by the store's upkeep, and an expired lease
//     may wait for it: the suite runs Harness.Upkeep before it asserts
//     either.
//   - Ready may be signalled asynchronously: the suite waits for it, for a
//     few seconds at most.
//
// What the contract leaves no room for, the suite checks as it is: a
// task that Enqueue, Release, Retry or Replay made ready, or that an
// upkeep requeued, is leased by the next Lease on any node; the
// idempotency window and retention run on the store's clock (the
// suite's), not on timers of their own; PendingDeliveries lists every
// finished task that has a pending delivery.
//
// Every scenario opens its own queue on new storage with its own Clock,
// and they run in parallel.
package queuetest

import (
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

// The store settings the suite assumes: Harness.Open opens every queue with
// them.
const (
	// Retention is how long a finished task without pending deliveries is
	// kept.
	Retention = time.Hour
	// IdempotencyTTL is how long an idempotency key maps to its task.
	IdempotencyTTL = 2 * time.Hour
)

// Harness opens the queue under test. Open, Reopen and Upkeep are
// required; Second is optional.
type Harness struct {
	// Open opens a queue on new, empty storage whose clock is c, with
	// Retention and IdempotencyTTL. It closes the queue in t.Cleanup (the
	// suite closes some itself: Close must be idempotent).
	Open func(t testing.TB, c *Clock) async.Queue
	// Reopen abandons or closes q and opens its storage again: a restart
	// (the suite calls it for both a graceful restart and a crash, and
	// uses only the queue it returns afterwards).
	Reopen func(t testing.TB, q async.Queue) async.Queue
	// Upkeep runs one pass of the store's background work now,
	// synchronously: requeue expired leases, sweep finished tasks past
	// retention and expired idempotency keys, refresh Stats. The suite
	// may call it from several goroutines at once (reapers racing), so it
	// reports a failure with t.Errorf, never t.Fatalf.
	Upkeep func(t testing.TB, q async.Queue)
	// Second, when not nil, opens another queue on the same storage while
	// q stays open: a second node (the embedded store cannot; the Redis
	// one can). It shares q's clock and closes the queue in t.Cleanup.
	Second func(t testing.TB, q async.Queue) async.Queue
}

// scenario is one behaviour the suite checks, on a queue of its own.
type scenario struct {
	name string
	run  func(t *testing.T, e *env)
}

// scenarios lists the scenarios that need one node.
func scenarios() []scenario {
	return []scenario{
		// lease.go: the life of one task.
		{"RoundTripSurvivesRestart", roundTripSurvivesRestart},
		{"CrashRequeuesWithoutSpendingAttempts", crashRequeues},
		{"Fencing", fencing},
		{"ConcurrentUpkeepRequeuesOnce", concurrentUpkeep},
		{"ReleaseAndRetrySignalReady", releaseAndRetryReady},
		{"EnqueueValidation", enqueueValidation},
		{"Closed", closed},
		{"Cancel", cancel},
		{"ExtendLease", extendLease},
		// sched.go: which task Lease takes, and Enqueue's gates.
		{"FairAcrossTenants", fairAcrossTenants},
		{"LanesAlternateAndBlock", lanesAlternateAndBlock},
		{"LeaseSkipsBlocked", leaseSkipsBlocked},
		{"DelayedTask", delayedTask},
		{"Idempotency", idempotency},
		{"IdempotencyConcurrent", idempotencyConcurrent},
		{"Quota", quota},
		{"EnqueueBatch", enqueueBatch},
		{"LeaseMany", leaseMany},
		{"ConcurrentWorkers", concurrentWorkers},
		// replay.go, retention.go: after a task finished.
		{"Replay", replay},
		{"List", list},
		{"Retention", retention},
		{"Deliveries", deliveries},
	}
}

// twoNodeScenarios lists the scenarios that need Harness.Second (nodes.go).
func twoNodeScenarios() []scenario {
	return []scenario{
		{"TwoNodesExpiredLeaseMoves", twoNodesExpiredLease},
		{"TwoNodesIdempotency", twoNodesIdempotency},
		{"TwoNodesShareTasks", twoNodesShareTasks},
		{"TwoNodesFair", twoNodesFair},
	}
}

// Tenants returns the tenants the suite's tasks belong to, for a store
// that must be told its tenants (the Redis store's upkeep visits the
// tenants it is configured with or has seen, and a restarted node has
// seen none).
func Tenants() []string { return []string{"A", "B", "C", "acme", "other"} }

// TestQueue runs every scenario against the queues h opens, each as a
// parallel subtest named after it; the two-node scenarios run only when
// h.Second is set. The scenarios cover: a task's round trip through a
// restart, with Complete returning the stored task; a crash requeueing
// leased tasks without spending an attempt; fencing (ErrLeaseLost) after
// an expired lease is requeued by upkeep, also when reapers race; lease
// renewal (on a store that is an async.Extender); Ready signalled on
// enqueue, release and retry; Enqueue's validation; a closed store's
// ErrUnavailable; Cancel (ErrConflict, ErrNotFound for another tenant);
// fairness across tenants and round-robin across a tenant's lanes;
// LeaseRequest.BlockedTenants and BlockedLanes; delays and the next time
// Lease returns; idempotency windows, also under concurrent enqueues; the
// max_queued quota (ErrQuotaExceeded); concurrent producers and workers;
// Replay's rules; List (newest first, cursors, filters, ErrBadCursor);
// retention; deliveries and PendingDeliveries. With two nodes: a lease
// expired on one is taken by the other and the first is fenced off; an
// idempotency key holds across nodes; a task enqueued on one runs on the
// other; fairness holds while leases alternate.
func TestQueue(t *testing.T, h Harness) {
	if h.Open == nil || h.Reopen == nil || h.Upkeep == nil {
		t.Fatal("queuetest: Harness needs Open, Reopen and Upkeep")
	}
	all := scenarios()
	if h.Second != nil {
		all = append(all, twoNodeScenarios()...)
	}
	for _, sc := range all {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, setup(t, h))
		})
	}
}
