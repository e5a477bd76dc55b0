package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/wire"
)

// scriptTrace counts a first attempt in a trace (lua/trace.lua).
var scriptTrace = redis.NewScript(lua("trace"))

// Traces are the loop guard's counts of first attempts per (W3C trace,
// function) on Redis, shared by every node of a service, so that a loop
// through several nodes is caught as soon as on one. A count is a key,
// {P:t:T}:tr:<trace id>:<fn>, that lives for the trace window from the
// first attempt it counts (a fixed window). It satisfies
// dispatcher.TraceCounter. A Count costs one script call (INCR and
// PEXPIRE); Traces does not own its client.
type Traces struct {
	rdb    redis.UniversalClient
	keys   keys
	window int64 // ms
}

// NewTraces returns the counts under prefix (default "ferry") over window
// (loop_guard.trace_window; at least 1ms).
func NewTraces(rdb redis.UniversalClient, prefix string, window time.Duration) *Traces {
	return &Traces{rdb: rdb, keys: keys{prefixOr(prefix)}, window: max(window.Milliseconds(), 1)}
}

// Count counts one first attempt of lane in trace tid and returns the
// attempts of lane counted in tid within the window, this one included.
// An error (Redis cannot be reached) counts nothing.
func (t *Traces) Count(ctx context.Context, tid trace.TraceID, lane wire.Lane) (int, error) {
	key := t.keys.trace(lane.Tenant, tid.String(), lane.Function)
	n, err := scriptTrace.Run(ctx, t.rdb, []string{key}, t.window).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: count trace %s of %s/%s: %w", tid, lane.Tenant, lane.Function, err)
	}
	return int(n), nil
}
