//go:build !race

// rocketmq-client-go v2.1.2 races in its own goroutines (see
// poller/rocketmq's tests): this round trip runs in the non-race build.

package roundtrip

import (
	"log/slog"
	"testing"

	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/sinks/rocketmq"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/rocketmqtest"
)

func TestRocketMQ(t *testing.T) {
	tp := sources.RocketMQBroker().NewTopic(t, 1)
	p, err := rocketmq.NewProducer(rocketmq.ProducerConfig{
		NameServers: []string{brokers.Addr(brokers.RocketMQ)},
		Group:       rocketmqtest.UniqueName(t, "p"),
		Logger:      sinktest.Logger(t, slog.LevelWarn),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	roundTrip(t, p.Sink(tp.Name(), "failed"), sources.For(t, tp, rocketmqtest.UniqueName(t, "g")), false, true)
}
