package dispatcher_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/dispatcher/sharedtest"
	"github.com/ferrydev/ferry/wire"
)

// clockedRates is Rates read at a sharedtest.Clock's time.
type clockedRates struct {
	r     *dispatcher.Rates
	clock *sharedtest.Clock
}

func (c clockedRates) Take(_ context.Context, lane wire.Lane) (time.Duration, error) {
	return c.r.TakeAt(lane, c.clock.Now()), nil
}

func TestMemoryRates(t *testing.T) {
	t.Parallel()
	sharedtest.TestRates(t, func(t *testing.T, rates sharedtest.Rates, clock *sharedtest.Clock) func() dispatcher.RateStore {
		r := dispatcher.NewRates()
		for tenant, l := range rates.Tenants {
			r.SetTenant(tenant, l.PerSecond, l.Burst)
		}
		for lane, l := range rates.Functions {
			r.SetFunction(lane, l.PerSecond, l.Burst)
		}
		s := clockedRates{r: r, clock: clock}
		return func() dispatcher.RateStore { return s }
	})
}

func TestMemoryTraces(t *testing.T) {
	t.Parallel()
	sharedtest.TestTraces(t, func(t *testing.T, window time.Duration) func() dispatcher.TraceCounter {
		c := dispatcher.NewTraceCounts(window)
		return func() dispatcher.TraceCounter { return c }
	})
}
