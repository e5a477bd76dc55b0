package sharedtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// Rates are the rates a store under test is opened with.
type Rates struct {
	Tenants   map[string]dispatcher.RateLimit
	Functions map[wire.Lane]dispatcher.RateLimit
}

// OpenRates opens a rate store on fresh state (its own prefix, its own
// memory) with rates, reading the time from clock, and returns a function
// that opens one node on that state: on Redis a new client on the same
// prefix, in memory the same store.
type OpenRates func(t *testing.T, rates Rates, clock *Clock) (node func() dispatcher.RateStore)

// slow is the rate of most tests, 1 token every 10s, and slowWait its
// interval: the real time a test takes (a loaded Redis, the race
// detector) is small beside it, so the waits the stores give are exact
// enough to check.
const (
	slow     = 0.1
	slowWait = 10 * time.Second
)

// Lanes of the rate tests.
var (
	laneA = wire.Lane{Tenant: "t", Function: "a"}
	laneB = wire.Lane{Tenant: "t", Function: "b"}
	laneU = wire.Lane{Tenant: "u", Function: "a"}
)

// TestRates runs the RateStore contract against the stores open opens.
func TestRates(t *testing.T, open OpenRates) {
	t.Run("BurstThenRefusal", func(t *testing.T) {
		t.Parallel()
		clock := &Clock{}
		s := open(t, Rates{Functions: map[wire.Lane]dispatcher.RateLimit{laneA: {PerSecond: slow, Burst: 3}}}, clock)()
		for i := range 3 {
			mustTake(t, s, laneA, "take %d of a burst of 3", i+1)
		}
		w := mustWait(t, s, laneA, slowWait, "4th take of a burst of 3")
		// A refusal takes nothing: once its wait has passed, the next take
		// gets the token.
		clock.Advance(w)
		mustTake(t, s, laneA, "take after the wait")
		mustWait(t, s, laneA, slowWait, "take right after")
	})
	t.Run("TenantBucketSharedByLanes", func(t *testing.T) {
		t.Parallel()
		s := open(t, Rates{Tenants: map[string]dispatcher.RateLimit{"t": {PerSecond: slow, Burst: 2}}}, &Clock{})()
		mustTake(t, s, laneA, "a, 1st of the tenant's burst of 2")
		mustTake(t, s, laneB, "b, 2nd of the tenant's burst of 2")
		mustWait(t, s, laneA, slowWait, "a with the tenant's bucket empty")
		mustWait(t, s, laneB, slowWait, "b with the tenant's bucket empty")
		for i := range 20 {
			mustTake(t, s, laneU, "take %d of a tenant without a rate", i+1)
		}
	})
	t.Run("LaneWithoutRateUnderTenantWithRate", func(t *testing.T) {
		t.Parallel()
		s := open(t, Rates{
			Tenants:   map[string]dispatcher.RateLimit{"t": {PerSecond: slow, Burst: 3}},
			Functions: map[wire.Lane]dispatcher.RateLimit{laneA: {PerSecond: slow, Burst: 1}},
		}, &Clock{})()
		mustTake(t, s, laneA, "a, within its own burst and the tenant's")
		mustWait(t, s, laneA, slowWait, "a beyond its own burst of 1")
		// a's refusal took nothing from the tenant: b (no rate of its own)
		// gets the tenant's other 2 tokens.
		mustTake(t, s, laneB, "b, 2nd of the tenant's burst of 3")
		mustTake(t, s, laneB, "b, 3rd of the tenant's burst of 3")
		mustWait(t, s, laneB, slowWait, "b with the tenant's bucket empty")
	})
	t.Run("WaitIsTheSlowerBucket", func(t *testing.T) {
		t.Parallel()
		s := open(t, Rates{
			Tenants:   map[string]dispatcher.RateLimit{"t": {PerSecond: 10, Burst: 1}},
			Functions: map[wire.Lane]dispatcher.RateLimit{laneA: {PerSecond: slow, Burst: 1}},
		}, &Clock{})()
		mustTake(t, s, laneA, "first take")
		mustWait(t, s, laneA, slowWait, "second take: the lane's rate, not the tenant's 10/s")
	})
	t.Run("Unlimited", func(t *testing.T) {
		t.Parallel()
		s := open(t, Rates{Tenants: map[string]dispatcher.RateLimit{"t": {}}}, &Clock{})()
		for i := range 50 {
			mustTake(t, s, laneA, "take %d without any rate", i+1)
		}
	})
	t.Run("NodesShareOneBudget", func(t *testing.T) {
		t.Parallel()
		// A burst of 10 absorbs the nodes' lateness (a token not taken
		// when due is lost to a full bucket): up to 200ms of it.
		node := open(t, Rates{Functions: map[wire.Lane]dispatcher.RateLimit{laneA: {PerSecond: 50, Burst: 10}}}, &Clock{})
		const run = 2 * time.Second
		var (
			wg    sync.WaitGroup
			taken atomic.Int64
			errs  = make(chan error, 2)
		)
		deadline := time.Now().Add(run)
		for range 2 {
			s := node()
			wg.Go(func() {
				for time.Now().Before(deadline) {
					w, err := s.Take(context.Background(), laneA)
					if err != nil {
						errs <- err
						return
					}
					if w == 0 {
						taken.Add(1)
						continue
					}
					time.Sleep(min(w, 5*time.Millisecond, time.Until(deadline)))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// 50/s for 2s plus the burst of 10, whichever node takes: at most
		// 110 (+1 for the edges), not 2 × 110. Fewer only when the nodes
		// were late by more than the burst (a Redis loaded by others).
		n := taken.Load()
		if n < 70 || n > 111 {
			t.Errorf("2 nodes took %d tokens at 50/s (burst 10) in %v, want about 110", n, run)
		}
		t.Logf("2 nodes took %d tokens at 50/s (burst 10) in %v", n, run)
	})
	t.Run("Isolation", func(t *testing.T) {
		t.Parallel()
		rates := Rates{Functions: map[wire.Lane]dispatcher.RateLimit{laneA: {PerSecond: slow, Burst: 1}}}
		one, other := open(t, rates, &Clock{})(), open(t, rates, &Clock{})()
		mustTake(t, one, laneA, "first store")
		mustWait(t, one, laneA, slowWait, "first store, again")
		mustTake(t, other, laneA, "second store (another prefix)")
	})
}

// mustTake fails unless s gives lane a token now.
func mustTake(t *testing.T, s dispatcher.RateStore, lane wire.Lane, format string, args ...any) {
	t.Helper()
	w, err := s.Take(context.Background(), lane)
	if err != nil {
		t.Fatalf(format+": %v", append(args, err)...)
	}
	if w != 0 {
		t.Fatalf(format+": refused, wait %v; want a token", append(args, w)...)
	}
}

// mustWait fails unless s refuses lane a token with a wait of about want
// (want less the real time the test took so far, at most 3s), and returns
// the wait.
func mustWait(t *testing.T, s dispatcher.RateStore, lane wire.Lane, want time.Duration, format string, args ...any) time.Duration {
	t.Helper()
	w, err := s.Take(context.Background(), lane)
	if err != nil {
		t.Fatalf(format+": %v", append(args, err)...)
	}
	if w < want-3*time.Second || w > want {
		t.Fatalf(format+": wait %v, want about %v", append(args, w, want)...)
	}
	return w
}
