package redis_test

import (
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerOutage: with Redis stopped, Deliver fails within its deadline;
// once Redis is back, the same Client delivers again by itself.
// Not parallel: it takes the broker away from the other tests.
func TestBrokerOutage(t *testing.T) {
	tp, c := setup(t)
	s := c.Sink(tp.Name(), 0)
	sinktest.Deliver(t, s, sinktest.Succeeded("before"), opTimeout) // a pooled connection exists

	outage := sinktest.Outage{Broker: brokers.Redis, Recovery: 30 * time.Second}
	outage.Run(t, s, sinktest.Succeeded("down"), sinktest.Succeeded("after"))

	got := map[string]bool{}
	for _, m := range entries(t, tp) {
		id, _ := m.Values["ferry-id"].(string)
		got[id] = true
	}
	if !got["before"] || !got["after"] {
		t.Errorf("stream holds %v, want before and after (Redis keeps the stream across a restart: appendonly)", got)
	}
}
