package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/redis"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
)

// setup creates a fresh stream on the test Redis and a Client on it.
func setup(t *testing.T) (*redisstreamtest.Topic, *redis.Client) {
	t.Helper()
	b := redisstreamtest.New()
	tp := b.NewTopic(t, 1).(*redisstreamtest.Topic)
	return tp, newClient(t, b.URL())
}

// TestSink runs the Sink contract (sinks/sinktest) on Redis Streams: the
// content type is a field.
func TestSink(t *testing.T) {
	sinktest.TestSink(t, redisstreamtest.New(), sinktest.Features{
		Parallel:    true,
		Within:      opTimeout,
		ContentType: true,
		Outage:      sinktest.Outage{Broker: brokers.Redis, Recovery: 30 * time.Second},
	}, func(t testing.TB, tp brokers.Reader) sinks.Sink {
		return newClient(t, redisstreamtest.New().URL()).Sink(tp.Name(), 0)
	}, func(t testing.TB, addr string) sinks.Sink {
		return newClient(t, url(addr)).Sink("orders", 0)
	})
}

// TestMaxLen: with maxLen > 0 the stream is trimmed (approximately: Redis
// trims whole nodes of up to 100 entries) while every XADD succeeds.
func TestMaxLen(t *testing.T) {
	t.Parallel()
	tp, c := setup(t)
	tests := []struct {
		name         string
		maxLen       int64
		deliver      int
		wantMin      int64
		wantMaxBelow int64
	}{
		{"Untrimmed", 0, 300, 300, 301},
		{"NegativeIsUntrimmed", -5, 50, 350, 351},
		{"Trimmed", 100, 700, 100, 300},
	}
	for _, tt := range tests { // sequential: they share the stream
		t.Run(tt.name, func(t *testing.T) {
			s := c.Sink(tp.Name(), tt.maxLen)
			for i := range tt.deliver {
				sinktest.Deliver(t, s, sinktest.Succeeded(fmt.Sprintf("%s-%d", tt.name, i)), opTimeout)
			}
			n, err := tp.Client().XLen(context.Background(), tp.Name()).Result()
			if err != nil {
				t.Fatalf("XLEN: %v", err)
			}
			if n < tt.wantMin || n >= tt.wantMaxBelow {
				t.Errorf("XLEN = %d after %d more deliveries with maxLen %d, want [%d, %d)", n, tt.deliver, tt.maxLen, tt.wantMin, tt.wantMaxBelow)
			}
		})
	}
}
