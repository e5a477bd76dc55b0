package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/wire"
)

// scriptTrace counts first attempts in traces (lua/trace.lua).
var scriptTrace = redis.NewScript(lua("trace"))

// Traces are the loop guard's counts of first attempts per (W3C trace,
// function) on Redis, shared by every node of a service, so that a loop
// through several nodes is caught as soon as on one. A count is a key,
// {P:t:T}:tr:<trace id>:<fn>, that lives for the trace window from the
// first attempt it counts (a fixed window). It satisfies
// dispatcher.TraceCounter. Concurrent Counts are batched: one script per
// tenant, all in one pipeline. Traces does not own its client; Close
// stops its batcher.
type Traces struct {
	rdb    redis.UniversalClient
	keys   keys
	window int64 // ms
	batch  *batcher[string, int64]
	stop   context.CancelFunc
	done   chan struct{}
}

// NewTraces returns the counts under prefix (default "ferry") over window
// (loop_guard.trace_window; at least 1ms). Close it when done.
func NewTraces(rdb redis.UniversalClient, prefix string, window time.Duration) *Traces {
	t := &Traces{rdb: rdb, keys: keys{prefixOr(prefix)}, window: max(window.Milliseconds(), 1), done: make(chan struct{})}
	t.batch = newBatcher(t.countBatch)
	ctx, stop := context.WithCancel(context.Background())
	t.stop = stop
	go func() {
		defer close(t.done)
		t.batch.run(ctx)
	}()
	return t
}

// Close stops the batcher; later Counts fail.
func (t *Traces) Close() error {
	t.stop()
	<-t.done
	return nil
}

// Count counts one first attempt of lane in trace tid and returns the
// attempts of lane counted in tid within the window, this one included.
// An error (Redis cannot be reached) counts nothing.
func (t *Traces) Count(ctx context.Context, tid trace.TraceID, lane wire.Lane) (int, error) {
	n, err := t.batch.do(ctx, lane.Tenant, tid.String()+":"+lane.Function)
	if err != nil {
		return 0, fmt.Errorf("redisstore: count trace %s of %s/%s: %w", tid, lane.Tenant, lane.Function, err)
	}
	return int(n), nil
}

func (t *Traces) countBatch(ctx context.Context, byTenant map[string][]*batchCall[string, int64]) {
	cmds := runPipelined(ctx, t.rdb, scriptTrace, byTenant, func(tenant string, calls []*batchCall[string, int64]) []any {
		args := make([]any, 0, 2+len(calls))
		args = append(args, t.keys.tenant(tenant), t.window)
		for _, c := range calls {
			args = append(args, c.item)
		}
		return args
	})
	for tenant, calls := range byTenant {
		vals, err := cmds[tenant].Int64Slice()
		if err == nil && len(vals) != len(calls) {
			err = fmt.Errorf("trace script answered %d counts for %d attempts", len(vals), len(calls))
		}
		for i, c := range calls {
			if err != nil {
				c.err = err
				continue
			}
			c.out = vals[i]
		}
	}
}
