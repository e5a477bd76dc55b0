//go:build !race

package rocketmq_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerOutage stops RocketMQ (name server and broker): a Deliver
// fails within its deadline, and once RocketMQ is back the same Producer
// delivers again by itself (nobody calls anything but Deliver).
func TestBrokerOutage(t *testing.T) {
	const outageDeadline = 3 * time.Second
	tp, p := setup(t, 1)
	s := p.Sink(tp.Name(), "")
	deliver(t, s, newOutcome("before", 1))

	// Registered after setup's cleanups, so it runs before them: RocketMQ
	// is back before the topic is deleted and the Producer closed.
	t.Cleanup(func() { brokers.Start(t, brokers.RocketMQ) })
	brokers.Stop(t, brokers.RocketMQ)

	ctx, cancel := context.WithTimeout(context.Background(), outageDeadline)
	start := time.Now()
	err := s.Deliver(ctx, newOutcome("during", 1))
	took := time.Since(start)
	cancel()
	if err == nil {
		t.Fatal("Deliver succeeded with RocketMQ stopped")
	}
	if took > outageDeadline+time.Second {
		t.Fatalf("Deliver took %v with a %v deadline", took, outageDeadline)
	}
	t.Logf("Deliver during the outage (%v): %v", took.Round(time.Millisecond), err)

	brokers.Start(t, brokers.RocketMQ)
	back := time.Now()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.Deliver(ctx, newOutcome("after", 1))
		cancel()
		if err == nil {
			t.Logf("delivered again %v after RocketMQ was back (attempt %d)", time.Since(back).Round(time.Millisecond), attempt)
			break
		}
		if time.Since(back) > 2*time.Minute {
			t.Fatalf("still failing two minutes after RocketMQ was back: %v", err)
		}
		t.Logf("attempt %d: %v", attempt, err)
		pause(500 * time.Millisecond) // the caller's retry backoff, not a synchronisation
	}
	got := readAll(t, tp, 2)
	for _, id := range []string{"before", "after"} {
		if got[id] == nil {
			t.Errorf("outcome %s missing after the restart", id)
		}
	}
}

func pause(d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	<-tm.C
}
