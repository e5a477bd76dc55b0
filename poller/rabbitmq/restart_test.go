package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/rabbitmq"
	"github.com/ferrydev/ferry/test/brokers"
)

// restartReport is what the consumer goroutine saw.
type restartReport struct {
	acked      map[string]int // payload → successful acks
	stale      int            // acks refused with ErrStaleDelivery
	reconnects int
	reconnect  time.Duration // first ErrNotConnected → connected again
	err        error
}

// (5) The broker restarts while the Source holds unacked deliveries: Read
// reports ErrNotConnected, Connect succeeds once the broker is back, and
// every message produced before and after the restart is acked: none lost.
// Not parallel: it restarts the shared broker (the parallel tests of this
// package wait until it is done).
func TestBrokerRestart(t *testing.T) {
	const before, after, gateAt = 150, 150, 30
	q := setup(t)
	produce(t, q, "before", before, nil)
	expected := map[string]bool{}
	for i := range before {
		expected[fmt.Sprintf("before-%d", i)] = true
	}
	for i := range after {
		expected[fmt.Sprintf("after-%d", i)] = true
	}
	src := q.NewSource(t, rabbitmq.Config{Prefetch: 20})
	pollertest.Connect(t, src, 20*time.Second)

	held := make(chan struct{})      // the consumer holds unacked messages
	restarted := make(chan struct{}) // the broker is back
	done := make(chan restartReport, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go func() { done <- consumeThroughRestart(ctx, src, expected, gateAt, held, restarted) }()

	select {
	case <-held:
	case r := <-done:
		t.Fatalf("consumer ended before the restart: %v", r.err)
	}
	t0 := time.Now()
	brokers.Restart(t, "rabbitmq")
	restartTook := time.Since(t0)
	produce(t, q, "after", after, nil)
	close(restarted)

	r := <-done
	if r.err != nil {
		t.Fatalf("consumer: %v", r.err)
	}
	lost, dup, unexpected := 0, 0, 0
	for p := range expected {
		if r.acked[p] == 0 {
			lost++
		}
	}
	for p, n := range r.acked {
		if !expected[p] {
			unexpected++
		}
		dup += n - 1
	}
	t.Logf("N=%d lost=%d duplicated=%d unexpected=%d stale_acks=%d reconnects=%d restart_s=%.1f reconnect_s=%.2f",
		len(expected), lost, dup, unexpected, r.stale, r.reconnects, restartTook.Seconds(), r.reconnect.Seconds())
	if lost != 0 || unexpected != 0 {
		t.Fatalf("lost %d, unexpected %d", lost, unexpected)
	}
	if r.reconnects == 0 || r.stale == 0 {
		t.Fatalf("reconnects %d, stale acks %d: the restart was not seen mid-stream", r.reconnects, r.stale)
	}
	pollertest.WaitBacklog(t, q, "", 0, 30*time.Second)
}

// consumeThroughRestart reads and acks until every expected payload was
// acked. After gateAt acks it signals held and waits for restarted with
// the batch it just read still unacked. It reconnects with backoff on
// ErrNotConnected, as the poller loop does.
func consumeThroughRestart(ctx context.Context, src *rabbitmq.Source, expected map[string]bool,
	gateAt int, held chan<- struct{}, restarted <-chan struct{}) restartReport {
	r := restartReport{acked: map[string]int{}}
	done, total, gated := 0, 0, false
	var lostAt time.Time
	for done < len(expected) {
		msgs, err := src.Read(ctx)
		if errors.Is(err, poller.ErrNotConnected) {
			if lostAt.IsZero() {
				lostAt = time.Now()
			}
			if err := reconnect(ctx, src); err != nil {
				r.err = err
				return r
			}
			r.reconnects++
			if r.reconnect == 0 {
				r.reconnect = time.Since(lostAt)
			}
			continue
		}
		if err != nil {
			r.err = fmt.Errorf("Read after %d acks: %w", total, err)
			return r
		}
		if !gated && total >= gateAt {
			gated = true
			close(held)
			select {
			case <-restarted:
			case <-ctx.Done():
				r.err = ctx.Err()
				return r
			}
		}
		for _, m := range msgs {
			err := m.Ack(ctx, nil)
			switch {
			case err == nil:
				p := string(m.Payload)
				if r.acked[p] == 0 && expected[p] {
					done++
				}
				r.acked[p]++
				total++
			case errors.Is(err, rabbitmq.ErrStaleDelivery):
				r.stale++
			default:
				r.err = fmt.Errorf("Ack %s: %w", m.ID, err)
				return r
			}
		}
	}
	return r
}

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
	src := q.NewSource(t, rabbitmq.Config{})
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
