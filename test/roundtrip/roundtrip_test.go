// Package roundtrip holds the deliberate round trips between Ferry's two
// broker sides: an outcome delivered by a sink is read back by Ferry's own
// trigger Source on the same broker, with its hop count, traceparent, id,
// type, content type and the outcome JSON as payload, so that one Ferry's
// destination can be another's trigger. They live here, outside poller/
// and sinks/, so that neither side's tests import the other.
package roundtrip

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/kafka"
	"github.com/ferrydev/ferry/sinks/rabbitmq"
	"github.com/ferrydev/ferry/sinks/redis"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/test/brokers/rabbitmqtest"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
	"github.com/ferrydev/ferry/wire"
)

// within bounds each phase: connect, deliver, read back.
const within = 60 * time.Second

// outcomes are what each round trip delivers: a succeeded outcome with 7
// hops and a traceparent, and a failure record with 0 hops, none, and a
// request payload.
func outcomes(prefix string) []*wire.Outcome {
	succeeded := sinktest.Succeeded(prefix + "-succeeded")
	succeeded.Hops = 7
	failed := sinktest.Failed(prefix+"-failed", 0)
	failed.TraceParent = ""
	failed.RequestPayload = json.RawMessage(`{"order":1}`)
	return []*wire.Outcome{succeeded, failed}
}

// roundTrip connects src, delivers outcomes through sink, reads them back
// with src and checks each message: payload, headers,
// content type (when contentType) and key (when keyIsID).
func roundTrip(t *testing.T, sink sinks.Sink, src poller.Source, contentType, keyIsID bool) {
	t.Helper()
	pollertest.ConnectRetry(t, src, within)
	outs := outcomes(t.Name())
	for _, o := range outs {
		sinktest.Deliver(t, sink, o, within)
	}
	got := map[string]*poller.Message{}
	pollertest.ReadUntil(t, src, within, func(m *poller.Message) {
		got[m.Headers[wire.HeaderID]] = m
		pollertest.Ack(t, m, nil)
	}, func() bool { return len(got) >= len(outs) })
	pollertest.Close(t, src)
	for _, o := range outs {
		t.Run(o.Type, func(t *testing.T) {
			m := got[o.ID]
			if m == nil {
				t.Fatalf("no message for %s", o.ID)
			}
			sinktest.CheckMessage(t, brokers.Msg{Key: m.Key, Payload: m.Payload, Headers: m.Headers, ContentType: m.ContentType}, o)
			if contentType && m.ContentType != wire.OutcomeContentType {
				t.Errorf("content type %q, want %q", m.ContentType, wire.OutcomeContentType)
			}
			if keyIsID && m.Key != o.ID {
				t.Errorf("key %q, want the id %q", m.Key, o.ID)
			}
			if hops, err := wire.ParseHops(m.Headers[wire.HeaderHops]); err != nil || hops != o.Hops {
				t.Errorf("the trigger reads hop count %d (%v), want %d", hops, err, o.Hops)
			}
		})
	}
}

func TestKafka(t *testing.T) {
	t.Parallel()
	tp := kafkatest.New().CreateTopic(t, 1)
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{tp.Addr()}, Logger: sinktest.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	roundTrip(t, p.Sink(tp.Name()), sources.For(t, tp, kafkatest.UniqueName(t)), true, true)
}

func TestRabbitMQ(t *testing.T) {
	t.Parallel()
	q := rabbitmqtest.New().NewTopic(t, 1)
	p, err := rabbitmq.NewPublisher(rabbitmq.PublisherConfig{URL: brokers.Addr(brokers.RabbitMQ), Logger: sinktest.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	roundTrip(t, p.Sink("", q.Name()), sources.For(t, q, ""), true, false)
}

func TestRedis(t *testing.T) {
	t.Parallel()
	b := redisstreamtest.New()
	tp := b.NewTopic(t, 1)
	c, err := redis.NewClient(redis.ClientConfig{URL: b.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	roundTrip(t, c.Sink(tp.Name(), 0), sources.For(t, tp, "g"), true, false)
}
