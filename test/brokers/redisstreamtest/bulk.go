package redisstreamtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/test/brokers"
)

var _ brokers.BulkTopic = (*Topic)(nil)

// bulkPipeline is how many XADDs one round trip of ProduceN carries.
const bulkPipeline = 2000

// ProduceN appends n entries, msg(i) for i in [0, n), in order, encoded
// as Produce does, in pipelines of 2,000 XADDs (one round trip each, each
// with its own timeout): a million entries take seconds.
func (tp *Topic) ProduceN(t testing.TB, n int, msg func(i int) brokers.Msg) {
	t.Helper()
	for from := 0; from < n; from += bulkPipeline {
		if err := tp.produceRange(from, min(from+bulkPipeline, n), msg); err != nil {
			t.Fatalf("redisstreamtest: produce entries %d-%d of %d to %s: %v", from, min(from+bulkPipeline, n), n, tp.name, err)
		}
	}
}

// produceRange appends entries [from, to) in one pipeline.
func (tp *Topic) produceRange(from, to int, msg func(int) brokers.Msg) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe := tp.client.Pipeline()
	cmds := make([]*redis.StringCmd, 0, to-from)
	for i := from; i < to; i++ {
		m := msg(i)
		values := []any{FieldData, m.Payload}
		if m.Key != "" {
			values = append(values, FieldKey, m.Key)
		}
		for k, v := range m.Headers {
			values = append(values, k, v)
		}
		cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: tp.name, Values: values}))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("XADD: %w", err)
	}
	for _, c := range cmds {
		if c.Val() == "" {
			return errors.New("XADD returned no entry id")
		}
	}
	return nil
}
