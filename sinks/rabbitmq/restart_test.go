package rabbitmq_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerOutage stops RabbitMQ: a Deliver fails within its deadline,
// and once the broker is back the same Publisher delivers again by itself
// (nobody calls anything but Deliver). Not parallel: it stops the shared
// broker (the parallel tests of this package wait until it is done).
func TestBrokerOutage(t *testing.T) {
	const outageDeadline = 3 * time.Second
	q, p := setup(t)
	s := p.Sink("", q.Name())
	deliver(t, s, newOutcome(q.Name()+"-before", 1))

	// Registered after setup's cleanups, so it runs before them: the
	// broker is back before the queue is deleted and the Publisher closed.
	t.Cleanup(func() { brokers.Start(t, brokers.RabbitMQ) })
	brokers.Stop(t, brokers.RabbitMQ)

	ctx, cancel := context.WithTimeout(context.Background(), outageDeadline)
	start := time.Now()
	err := s.Deliver(ctx, newOutcome(q.Name()+"-during", 1))
	took := time.Since(start)
	cancel()
	if err == nil {
		t.Fatal("Deliver succeeded with the broker stopped")
	}
	if took > outageDeadline+time.Second {
		t.Fatalf("Deliver took %v with a %v deadline", took, outageDeadline)
	}
	t.Logf("Deliver during the outage (%v): %v", took.Round(time.Millisecond), err)

	brokers.Start(t, brokers.RabbitMQ)
	back := time.Now()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last := s.Deliver(ctx, newOutcome(q.Name()+"-after", 1))
		cancel()
		if last == nil {
			t.Logf("delivered again %v after the broker was back (attempt %d)", time.Since(back).Round(time.Millisecond), attempt)
			break
		}
		if time.Since(back) > time.Minute {
			t.Fatalf("still failing a minute after the broker was back: %v", last)
		}
		t.Logf("attempt %d: %v", attempt, last)
		pause(200 * time.Millisecond) // the caller's retry backoff, not a synchronisation
	}
	got := readAll(t, q, 2)
	for _, suffix := range []string{"-before", "-after"} {
		if got[q.Name()+suffix] == nil {
			t.Errorf("outcome %s%s missing after the restart", q.Name(), suffix)
		}
	}
}

func pause(d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	<-tm.C
}
