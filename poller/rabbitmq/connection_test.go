package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/poller/rabbitmq"
)

// reconnect calls Connect with exponential backoff until it succeeds.
func reconnect(ctx context.Context, src *rabbitmq.Source) error {
	backoff := 100 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := src.Connect(cctx)
		cancel()
		if err == nil {
			return nil
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("reconnect: %w (last error: %v)", ctx.Err(), err)
		case <-timer.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// The broker closes the connection while Read is blocked on an empty
// queue: Read returns ErrNotConnected, acks of the old channel are refused,
// and after Connect the unacked message comes back.
func TestConnectionKilledDuringRead(t *testing.T) {
	t.Parallel()
	q := setup(t)
	produce(t, q, "k", 1, nil)
	src := sources.RabbitMQ(t, q, rabbitmq.Config{})
	pollertest.Connect(t, src, 20*time.Second)
	held := pollertest.ReadN(t, src, 1, 10*time.Second)[0]

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := src.Read(ctx) // blocks: nothing else in the queue
		errc <- err
	}()
	if n := q.KillConnections(t); n != 1 {
		t.Fatalf("closed %d connections, want 1", n)
	}
	if err := <-errc; !errors.Is(err, poller.ErrNotConnected) {
		t.Fatalf("blocked Read: %v, want ErrNotConnected", err)
	}
	if err := held.Ack(ctx, nil); !errors.Is(err, rabbitmq.ErrStaleDelivery) {
		t.Fatalf("Ack of the dead channel: %v, want ErrStaleDelivery", err)
	}
	if err := reconnect(ctx, src); err != nil {
		t.Fatal(err)
	}
	again := pollertest.ReadN(t, src, 1, 10*time.Second)[0]
	if again.ID != held.ID {
		t.Fatalf("redelivered %s, want %s", again.ID, held.ID)
	}
	pollertest.Ack(t, again, nil)
	pollertest.WaitBacklog(t, q, "", 0, 20*time.Second)
}
