//go:build !race

package rocketmq_test

import (
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerOutage stops RocketMQ (name server and broker): a Deliver
// fails within its deadline, and once RocketMQ is back the same Producer
// delivers again by itself (nobody calls anything but Deliver).
func TestBrokerOutage(t *testing.T) {
	tp, p := setup(t, 1)
	s := p.Sink(tp.Name(), "")
	sinktest.Deliver(t, s, sinktest.Failed("before", 1), deliverTimeout)

	// Run registers RocketMQ's restart after setup's cleanups, so it runs
	// before them: RocketMQ is back before the topic is deleted and the
	// Producer closed.
	outage := sinktest.Outage{Broker: brokers.RocketMQ, Recovery: 2 * time.Minute, Backoff: 500 * time.Millisecond}
	outage.Run(t, s, sinktest.Failed("during", 1), sinktest.Failed("after", 1))

	got := readAll(t, tp, 2)
	for _, id := range []string{"before", "after"} {
		if got[id] == nil {
			t.Errorf("outcome %s missing after the restart", id)
		}
	}
}
