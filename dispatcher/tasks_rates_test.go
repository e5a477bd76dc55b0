package dispatcher_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// countingRates is a shared RateStore that always has a token and counts
// the tokens taken.
type countingRates struct{ taken atomic.Int64 }

func (c *countingRates) Take(context.Context, wire.Lane) (time.Duration, error) {
	c.taken.Add(1)
	return 0, nil
}

// TestTaskRunnerRatesAtLease: a task takes one rate token, from the
// shared store when the runner takes it, and none there when the Lease
// took it (RatesAtLease).
func TestTaskRunnerRatesAtLease(t *testing.T) {
	ok := dispatcher.BackendFunc(func(context.Context, *dispatcher.Invocation) (*dispatcher.Result, error) {
		return &dispatcher.Result{}, nil
	})
	for _, tt := range []struct {
		name         string
		ratesAtLease bool
		want         int64
	}{
		{"RunnerTakesTheTokens", false, 5},
		{"LeaseTookTheTokens", true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := &countingRates{}
			b := setup(t, dispatcher.Config{
				Functions: []*dispatcher.Function{{Lane: lane("t", "f"), Backend: ok, Retry: fastRetry(1)}},
				RateStore: store,
			}, dispatcher.TaskRunnerConfig{Workers: 2, RatesAtLease: tt.ratesAtLease})
			var ids []string
			for range 5 {
				ids = append(ids, b.submit(t, "t", "f", 0, "x"))
			}
			for _, id := range ids {
				b.waitFinal(t, "t", id)
			}
			if n := store.taken.Load(); n != tt.want {
				t.Fatalf("the runner took %d tokens from the store for 5 tasks, want %d", n, tt.want)
			}
		})
	}
}
