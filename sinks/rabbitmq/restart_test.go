package rabbitmq_test

import (
	"testing"

	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerOutage stops RabbitMQ: a Deliver fails within its deadline,
// and once the broker is back the same Publisher delivers again by itself
// (nobody calls anything but Deliver). Not parallel: it stops the shared
// broker (the parallel tests of this package wait until it is done).
func TestBrokerOutage(t *testing.T) {
	q, p := setup(t)
	s := p.Sink("", q.Name())
	sinktest.Deliver(t, s, sinktest.Failed(q.Name()+"-before", 1), deliverTimeout)

	// Run registers the broker's restart after setup's cleanups, so it runs
	// before them: the broker is back before the queue is deleted and the
	// Publisher closed.
	sinktest.Outage{Broker: brokers.RabbitMQ}.Run(t, s, sinktest.Failed(q.Name()+"-during", 1), sinktest.Failed(q.Name()+"-after", 1))

	got := readAll(t, q, 2)
	for _, suffix := range []string{"-before", "-after"} {
		if got[q.Name()+suffix] == nil {
			t.Errorf("outcome %s%s missing after the restart", q.Name(), suffix)
		}
	}
}
