// Package sources builds Ferry's trigger Sources on the topics of the test
// brokers (test/brokers/kafkatest, rabbitmqtest, redisstreamtest,
// rocketmqtest), which know only their client libraries: the adapters'
// tests, the conformance suite and the round-trip tests in test/ all
// build their Sources here, so they are configured the same way.
//
// Every Source returned is not connected and is closed in t.Cleanup.
package sources

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/kafka"
	"github.com/ferrydev/ferry/poller/rabbitmq"
	"github.com/ferrydev/ferry/poller/redisstream"
	"github.com/ferrydev/ferry/poller/rocketmq"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/test/brokers/rabbitmqtest"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
	"github.com/ferrydev/ferry/test/brokers/rocketmqtest"
)

// closeTimeout bounds the Close in t.Cleanup.
const closeTimeout = 30 * time.Second

// For returns a Source on tp for group with the adapter's defaults (and
// the test settings of Kafka, RabbitMQ, Redis and RocketMQ below). tp must
// come from one of the four test brokers; any other type fails t.
func For(t testing.TB, tp brokers.Topic, group string) poller.Source {
	t.Helper()
	switch tp := tp.(type) {
	case *kafkatest.Topic:
		return Kafka(t, tp, kafka.Config{Group: group})
	case *rabbitmqtest.Topic:
		return RabbitMQ(t, tp, rabbitmq.Config{})
	case *redisstreamtest.Topic:
		return Redis(t, tp, group, nil)
	case *rocketmqtest.Topic:
		return RocketMQ(t, tp, RocketMQConfig(tp, group))
	default:
		t.Fatalf("sources: no Source for a %T", tp)
		return nil
	}
}

// Kafka returns a *kafka.Source on tp with cfg (Brokers and Topic filled
// in).
func Kafka(t testing.TB, tp *kafkatest.Topic, cfg kafka.Config) *kafka.Source {
	t.Helper()
	cfg.Brokers = []string{tp.Addr()}
	cfg.Topic = tp.Name()
	s, err := kafka.New(cfg)
	if err != nil {
		t.Fatalf("sources: kafka: %v", err)
	}
	closeLater(t, s)
	return s
}

// RabbitMQ returns a *rabbitmq.Source on the queue with cfg (URL and Queue
// filled in; without a Logger it logs to the test's output).
func RabbitMQ(t testing.TB, q *rabbitmqtest.Topic, cfg rabbitmq.Config) *rabbitmq.Source {
	t.Helper()
	cfg.URL, cfg.Queue = q.URL(), q.Name()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s, err := rabbitmq.New(cfg)
	if err != nil {
		t.Fatalf("sources: rabbitmq: %v", err)
	}
	closeLater(t, s)
	return s
}

// Redis returns a *redisstream.Source on the stream for group, with a
// consumer name of its own (tp.ConsumerName, as a restarted process has),
// ClaimIdle redisstreamtest.ClaimIdle and Block 500ms; adjust, when not
// nil, changes the Config before New.
func Redis(t testing.TB, tp *redisstreamtest.Topic, group string, adjust func(*redisstream.Config)) *redisstream.Source {
	t.Helper()
	cfg := redisstream.Config{
		URL:       tp.URL(),
		Stream:    tp.Name(),
		Group:     group,
		Consumer:  tp.ConsumerName(group),
		ClaimIdle: redisstreamtest.ClaimIdle,
		Block:     500 * time.Millisecond,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	s, err := redisstream.New(cfg)
	if err != nil {
		t.Fatalf("sources: redis: %v", err)
	}
	closeLater(t, s)
	return s
}

// RocketMQBroker is rocketmqtest.New() with the RocketMQ trigger's own
// backlog count, so that its topics' Backlog works.
func RocketMQBroker() rocketmqtest.Broker {
	b := rocketmqtest.New()
	b.CountBacklog = rocketmq.Backlog
	return b
}

// RocketMQConfig is the Source config for group on tp (earliest start,
// concurrent consumption); it records the group for tp's cleanup.
func RocketMQConfig(tp *rocketmqtest.Topic, group string) rocketmq.Config {
	tp.Use(group)
	return rocketmq.Config{NameServers: []string{tp.NameServer()}, Topic: tp.Name(), Group: group}
}

// RocketMQ returns a *rocketmq.Source on tp with cfg.
func RocketMQ(t testing.TB, tp *rocketmqtest.Topic, cfg rocketmq.Config) *rocketmq.Source {
	t.Helper()
	tp.Use(cfg.Group)
	s, err := rocketmq.New(cfg)
	if err != nil {
		t.Fatalf("sources: rocketmq: %v", err)
	}
	closeLater(t, s)
	return s
}

func closeLater(t testing.TB, s poller.Source) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = s.Close(ctx)
	})
}
