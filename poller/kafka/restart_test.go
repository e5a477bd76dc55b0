package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerRestart: Kafka restarts mid-stream; Read reports ErrNotConnected
// (or kafka-go recovers by itself), Connect succeeds again, and every
// message produced before and after the restart is read and acked.
// Not parallel: it takes the broker away from the other tests.
func TestBrokerRestart(t *testing.T) {
	const before, after = 100, 100
	tp, group := setup(t, 2)
	tp.Produce(t, seqMsgs(0, before))
	src := tp.Source(t, group)
	connect(t, src, time.Now().Add(30*time.Second))

	acked := map[int]bool{}
	reads := 0
	readLoop(t, src, time.Now().Add(30*time.Second), func(m *poller.Message) bool {
		reads++
		acked[seqOf(t, m)] = true
		ack(t, m, nil)
		return len(acked) == before/2
	})
	start := time.Now()
	brokers.Stop(t, brokers.Kafka)
	// With the broker down, Read must not hang: it reports ErrNotConnected
	// (unless another test's up.sh brought Kafka back meanwhile).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	msgs, err := src.Read(ctx)
	cancel()
	switch {
	case errors.Is(err, poller.ErrNotConnected):
		t.Logf("broker down: Read returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case err == nil:
		t.Logf("broker came back before Read noticed; got %d message(s)", len(msgs))
		for _, m := range msgs {
			reads++
			acked[seqOf(t, m)] = true
			ack(t, m, nil)
		}
	default:
		t.Fatalf("Read with the broker down: %v, want ErrNotConnected", err)
	}
	if err := src.Connect(context.Background()); err == nil && brokers.Addr(brokers.Kafka) != "" {
		t.Logf("Connect succeeded while stopped (broker restarted by someone else?)")
	}
	brokers.Start(t, brokers.Kafka)
	t.Logf("kafka restarted in %v", time.Since(start).Round(time.Millisecond))
	tp.Produce(t, seqMsgs(before, after))

	lost := readLoop(t, src, time.Now().Add(120*time.Second), func(m *poller.Message) bool {
		reads++
		acked[seqOf(t, m)] = true
		ack(t, m, nil)
		return len(acked) == before+after
	})
	waitBacklog(t, tp, group, 0, 30*time.Second)
	t.Logf("produced %d, acked %d unique (%d reads, %d duplicates), ErrNotConnected seen %d times, recovered in %v, lost 0",
		before+after, len(acked), reads, reads-len(acked), lost, time.Since(start).Round(time.Millisecond))
}
