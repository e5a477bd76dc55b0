package conformance_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/poller/kafka/kafkatest"
	"github.com/ferrydev/ferry/poller/rabbitmq/rabbitmqtest"
	"github.com/ferrydev/ferry/poller/redisstream/redisstreamtest"
	"github.com/ferrydev/ferry/poller/rocketmq/rocketmqtest"
	"github.com/ferrydev/ferry/test/conformance"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// BenchmarkTriggers measures how fast a trigger drains a pre-produced
// backlog into a no-op in-process function, per broker and batch size:
// msgs/s until every message was invoked, and the seconds until the
// group's committed position is past every message (RocketMQ's client
// persists offsets every 5 s, which bounds its figure):
//
//	go test -run XXX -bench Triggers -benchtime 1x ./test/conformance/
//
// Each sub-benchmark runs once whatever b.N is; the figure is msgs/s.
func BenchmarkTriggers(b *testing.B) {
	cases := []struct {
		broker conformance.Broker
		n      int
	}{
		{kafkatest.New(), 20000}, {rabbitmqtest.New(), 20000}, {redisstreamtest.New(), 20000}, {rocketmqtest.New(), 5000},
	}
	for _, c := range cases {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", c.broker.Name(), batch), func(b *testing.B) {
				benchTrigger(b, c.broker, c.n, batch)
			})
		}
	}
}

func benchTrigger(b *testing.B, br conformance.Broker, n, batch int) {
	topic := br.NewTopic(b, 4)
	msgs := make([]conformance.Msg, n)
	for i := range msgs {
		msgs[i] = conformance.Msg{Key: fmt.Sprintf("k%d", i%64), Payload: fmt.Appendf(nil, `{"seq":%d}`, i)}
	}
	topic.Produce(b, msgs)
	group := fmt.Sprintf("bench-%d", batch)
	yaml := fmt.Sprintf(`server: { listen: %q }
store: { embedded: { path: %q } }
tenants: [ { name: t, api_keys: [bench-key-1], max_concurrency: 64 } ]
functions: [ { name: f, tenant: t, max_concurrency: 16, backend: { go: {} } } ]
triggers:
  - { name: bench, function: f, source: %s, concurrency: 8, batch: { size: %d, window: 20ms } }
`, ferrytest.FreeAddr(b), b.TempDir(), topic.SourceYAML(group), batch)
	cfg, err := config.Parse("bench.yaml", []byte(yaml), nil)
	if err != nil {
		b.Fatal(err)
	}
	var seen atomic.Int64
	noop := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		seen.Add(int64(max(len(inv.Batch), 1)))
		return &dispatcher.Result{}, nil
	})
	srv, err := ferry.New(cfg, ferry.WithFunction("t", "f", noop),
		ferry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- srv.Run(ctx) }()
	ferrytest.WaitFor(b, 5*time.Minute, "every message invoked", func() bool { return seen.Load() >= int64(n) })
	invoked := time.Since(start)
	ferrytest.WaitFor(b, 5*time.Minute, "the backlog committed", func() bool { return topic.Backlog(b, group) == 0 })
	committed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(n)/invoked.Seconds(), "msgs/s")
	b.ReportMetric(committed.Seconds(), "s-to-commit")
	b.ReportMetric(0, "ns/op")
}
