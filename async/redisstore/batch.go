package redisstore

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/async"
)

// maxBatch bounds the calls one batch carries.
const maxBatch = 256

// batcher runs concurrent calls of one kind together (group commit): a
// caller hands its call over and waits; one goroutine takes every call
// waiting, groups them by tenant and runs them with one script per tenant,
// all in one pipeline, so N workers finishing at once cost one round trip
// and N/tenants script calls instead of N of each. Run owns the goroutine;
// calls after it stopped fail with async.ErrUnavailable.
type batcher[I, O any] struct {
	in   chan *batchCall[I, O]
	exec func(ctx context.Context, byTenant map[string][]*batchCall[I, O])
	stop chan struct{}
	once sync.Once
}

type batchCall[I, O any] struct {
	tenant string
	item   I
	out    O
	err    error
	done   chan struct{}
}

func newBatcher[I, O any](exec func(context.Context, map[string][]*batchCall[I, O])) *batcher[I, O] {
	return &batcher[I, O]{in: make(chan *batchCall[I, O], maxBatch), exec: exec, stop: make(chan struct{})}
}

// do runs one call in the next batch and returns its result.
func (b *batcher[I, O]) do(ctx context.Context, tenant string, item I) (O, error) {
	c := &batchCall[I, O]{tenant: tenant, item: item, done: make(chan struct{})}
	select {
	case b.in <- c:
	case <-b.stop:
		var zero O
		return zero, errStopped
	case <-ctx.Done():
		var zero O
		return zero, ctx.Err()
	}
	// Once handed over the call runs (bounded by the client's timeouts):
	// waiting for it keeps its outcome known.
	<-c.done
	return c.out, c.err
}

var errStopped = async.ErrUnavailable

// run executes batches until ctx ends, then fails the calls left.
func (b *batcher[I, O]) run(ctx context.Context) {
	defer b.once.Do(func() { close(b.stop) })
	for {
		var first *batchCall[I, O]
		select {
		case first = <-b.in:
		case <-ctx.Done():
			b.once.Do(func() { close(b.stop) })
			for {
				select {
				case c := <-b.in:
					c.err = errStopped
					close(c.done)
				default:
					return
				}
			}
		}
		batch := map[string][]*batchCall[I, O]{first.tenant: {first}}
	more:
		for n := 1; n < maxBatch; n++ {
			select {
			case c := <-b.in:
				batch[c.tenant] = append(batch[c.tenant], c)
			default:
				break more
			}
		}
		b.exec(context.WithoutCancel(ctx), batch)
		for _, calls := range batch {
			for _, c := range calls {
				close(c.done)
			}
		}
	}
}

// runPipelined runs script once per tenant of a batch, in one pipeline,
// with the arguments args builds (the first is the tenant's hash tag; KEYS
// is its meta key). If Redis lost its scripts (a restart without them) it
// loads them and runs the pipeline again.
func runPipelined[I, O any](ctx context.Context, rdb redis.UniversalClient, script *redis.Script,
	byTenant map[string][]*batchCall[I, O], args func(tenant string, calls []*batchCall[I, O]) []any,
) map[string]*redis.Cmd {
	argv := make(map[string][]any, len(byTenant))
	for tenant, calls := range byTenant {
		argv[tenant] = args(tenant, calls)
	}
	run := func() (map[string]*redis.Cmd, error) {
		pipe := rdb.Pipeline()
		cmds := make(map[string]*redis.Cmd, len(byTenant))
		for tenant, a := range argv {
			cmds[tenant] = script.EvalSha(ctx, pipe, []string{a[0].(string) + ":meta"}, a...)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") && script.Load(ctx, rdb).Err() == nil {
		cmds, _ = run()
	}
	return cmds
}
