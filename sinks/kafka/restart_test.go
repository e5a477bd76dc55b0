package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller/kafka/kafkatest"
	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerOutage: with Kafka stopped, Deliver fails within its deadline;
// once Kafka is back, the same Producer delivers again by itself.
// Not parallel: it takes the broker away from the other tests.
func TestBrokerOutage(t *testing.T) {
	tp := kafkatest.New().CreateTopic(t, 1)
	s := newProducer(t).Sink(tp.Name())
	deliverWithin(t, s, outcome("before"), opTimeout) // connected, metadata cached

	// kafkatest's own cleanup deletes the topic over a connection the
	// restart killed, and fails: delete it here, once Kafka is back.
	t.Cleanup(func() { deleteTopic(t, tp.Name()) })
	t.Cleanup(func() { brokers.Start(t, brokers.Kafka) }) // even when the test fails
	brokers.Stop(t, brokers.Kafka)
	const deadline = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	start := time.Now()
	err := s.Deliver(ctx, outcome("down"))
	cancel()
	if err == nil {
		t.Fatal("Deliver with Kafka stopped succeeded")
	}
	if d := time.Since(start); d > deadline+time.Second {
		t.Errorf("Deliver with Kafka stopped took %v, deadline %v", d, deadline)
	}
	t.Logf("broker down: Deliver failed after %v: %v", time.Since(start).Round(time.Millisecond), err)

	brokers.Start(t, brokers.Kafka)
	restarted := time.Now()
	for attempt := 1; ; attempt++ { // Ferry's retries, condensed
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.Deliver(ctx, outcome("after"))
		cancel()
		if err == nil {
			t.Logf("delivered again %v after the restart (attempt %d)", time.Since(restarted).Round(time.Millisecond), attempt)
			break
		}
		if time.Since(restarted) > time.Minute {
			t.Fatalf("the Producer did not recover within a minute of the restart: %v", err)
		}
		t.Logf("attempt %d after the restart: %v", attempt, err)
		time.Sleep(200 * time.Millisecond) // a retry backoff, not synchronisation
	}
	got := map[string]bool{}
	for _, r := range readTopic(t, tp) {
		got[r.key] = true
	}
	if !got["before"] || !got["after"] {
		t.Errorf("topic holds %v, want before and after", got)
	}
}
