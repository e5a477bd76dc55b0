package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/wire"
)

// scriptRate takes a token at Redis's time (lua/rate.lua around
// gcra_take, the function Lease takes its tokens with).
var scriptRate = redis.NewScript(lua("gcra") + "\n" + lua("rate"))

// Rates are the tenants' and functions' token buckets on Redis, shared by
// every node of a service: GCRA, one hash per tenant holding the
// theoretical arrival time of the tenant's bucket (field "") and of each
// rate-limited lane's (field <fn>). It satisfies dispatcher.RateStore.
//
// NewRates' buckets are the dispatch buckets, {P:t:T}:rate: the ones the
// Queue's Lease takes the tokens of async tasks from, so a poller's
// invocation (Take) and a task's (Lease) share one budget and a task never
// takes two tokens (run the dispatcher's task runner with
// TaskRunnerConfig.RatesAtLease). NewAdmissionRates' are apart,
// {P:t:T}:arate, for the API's 429 at submission.
//
// A Take costs one script call on the tenant's slot, none for a lane
// whose tenant and function have no rate. Time is Redis's (TIME), never
// the node's. Rates does not own its client.
type Rates struct {
	rdb       redis.UniversalClient
	key       func(tenant string) string
	tenants   map[string]Limit
	functions map[wire.Lane]Limit
	// skew shifts Redis's clock, for tests that move time (nil: none).
	skew func() time.Duration
}

// NewRates returns the dispatch buckets under prefix (default "ferry")
// for the rates (Rate and Burst; MaxConcurrency is not used) of tenants
// and functions: the same maps and prefix as the Queue's Options. Every
// node must have the same rates.
func NewRates(rdb redis.UniversalClient, prefix string, tenants map[string]Limit, functions map[wire.Lane]Limit) *Rates {
	k := keys{prefixOr(prefix)}
	return &Rates{rdb: rdb, key: k.rate, tenants: tenants, functions: functions}
}

// NewAdmissionRates returns the admission buckets under prefix for the
// same rates as NewRates, apart from the dispatch buckets: the API takes
// a token of them per submission (routes.WithAdmissionRates), so that a
// rate holds for the whole cluster at admission too.
func NewAdmissionRates(rdb redis.UniversalClient, prefix string, tenants map[string]Limit, functions map[wire.Lane]Limit) *Rates {
	r := NewRates(rdb, prefix, tenants, functions)
	r.key = keys{prefixOr(prefix)}.arate
	return r
}

func prefixOr(prefix string) string {
	if prefix == "" {
		return DefaultPrefix
	}
	return prefix
}

// Take takes a token from lane's bucket and from its tenant's when both
// have one and returns 0; otherwise it takes nothing and returns how long
// until both will have one (at least 1ms). An error (Redis cannot be
// reached) takes nothing.
func (r *Rates) Take(ctx context.Context, lane wire.Lane) (time.Duration, error) {
	t, f := r.tenants[lane.Tenant], r.functions[lane]
	if !(t.Rate > 0) && !(f.Rate > 0) {
		return 0, nil
	}
	var skew int64
	if r.skew != nil {
		skew = r.skew().Milliseconds()
	}
	ms, err := scriptRate.Run(ctx, r.rdb, []string{r.key(lane.Tenant)},
		skew, max(t.Rate, 0), t.Burst, lane.Function, max(f.Rate, 0), f.Burst).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: rate token of %s/%s: %w", lane.Tenant, lane.Function, err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}
