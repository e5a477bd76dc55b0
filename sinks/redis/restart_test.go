package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerOutage: with Redis stopped, Deliver fails within its deadline;
// once Redis is back, the same Client delivers again by itself.
// Not parallel: it takes the broker away from the other tests.
func TestBrokerOutage(t *testing.T) {
	tp, c := setup(t)
	s := c.Sink(tp.Name(), 0)
	deliverWithin(t, s, outcome("before"), opTimeout) // a pooled connection exists

	t.Cleanup(func() { brokers.Start(t, brokers.Redis) }) // even when the test fails
	brokers.Stop(t, brokers.Redis)
	const deadline = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	start := time.Now()
	err := s.Deliver(ctx, outcome("down"))
	cancel()
	if err == nil {
		t.Fatal("Deliver with Redis stopped succeeded")
	}
	if d := time.Since(start); d > deadline+time.Second {
		t.Errorf("Deliver with Redis stopped took %v, deadline %v", d, deadline)
	}
	t.Logf("broker down: Deliver failed after %v: %v", time.Since(start).Round(time.Millisecond), err)

	brokers.Start(t, brokers.Redis)
	restarted := time.Now()
	for attempt := 1; ; attempt++ { // Ferry's retries, condensed
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.Deliver(ctx, outcome("after"))
		cancel()
		if err == nil {
			t.Logf("delivered again %v after the restart (attempt %d)", time.Since(restarted).Round(time.Millisecond), attempt)
			break
		}
		if time.Since(restarted) > 30*time.Second {
			t.Fatalf("the Client did not recover within 30s of the restart: %v", err)
		}
		t.Logf("attempt %d after the restart: %v", attempt, err)
		time.Sleep(200 * time.Millisecond) // a retry backoff, not synchronisation
	}
	got := map[string]bool{}
	for _, m := range entries(t, tp) {
		id, _ := m.Values["ferry-id"].(string)
		got[id] = true
	}
	if !got["before"] || !got["after"] {
		t.Errorf("stream holds %v, want before and after (Redis keeps the stream across a restart: appendonly)", got)
	}
}
