package redisstore

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/dispatcher/sharedtest"
	"github.com/ferrydev/ferry/wire"
)

var (
	_ dispatcher.RateStore    = (*Rates)(nil)
	_ dispatcher.TraceCounter = (*Traces)(nil)
)

// nodeClient is one more client on the test Redis, closed when the test
// ends: a node of its own.
func nodeClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	rdb := testClient(t)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// limits converts the suite's rates into the store's.
func limits(rates sharedtest.Rates) (map[string]Limit, map[wire.Lane]Limit) {
	tenants := map[string]Limit{}
	for t, r := range rates.Tenants {
		tenants[t] = Limit{Rate: r.PerSecond, Burst: r.Burst}
	}
	functions := map[wire.Lane]Limit{}
	for l, r := range rates.Functions {
		functions[l] = Limit{Rate: r.PerSecond, Burst: r.Burst}
	}
	return tenants, functions
}

func testRates(t *testing.T, newRates func(redis.UniversalClient, string, map[string]Limit, map[wire.Lane]Limit) *Rates) {
	sharedtest.TestRates(t, func(t *testing.T, rates sharedtest.Rates, clock *sharedtest.Clock) func() dispatcher.RateStore {
		prefix := testPrefix(t)
		tenants, functions := limits(rates)
		return func() dispatcher.RateStore {
			r := newRates(nodeClient(t), prefix, tenants, functions)
			r.skew = clock.Offset
			return r
		}
	})
}

func TestRates(t *testing.T) {
	t.Parallel()
	testRates(t, NewRates)
}

func TestAdmissionRates(t *testing.T) {
	t.Parallel()
	testRates(t, NewAdmissionRates)
}

func TestTraces(t *testing.T) {
	t.Parallel()
	sharedtest.TestTraces(t, func(t *testing.T, window time.Duration) func() dispatcher.TraceCounter {
		prefix := testPrefix(t)
		return func() dispatcher.TraceCounter {
			tr := NewTraces(nodeClient(t), prefix, window)
			t.Cleanup(func() { _ = tr.Close() })
			return tr
		}
	})
}
