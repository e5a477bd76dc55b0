package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerRestart: Kafka restarts mid-stream; Read reports ErrNotConnected
// (or kafka-go recovers by itself), Connect succeeds again, and every
// message produced before and after the restart is read and acked.
// Not parallel: it takes the broker away from the other tests.
func TestBrokerRestart(t *testing.T) {
	const before, after = 100, 100
	tp, group := setup(t, 2)
	tp.Produce(t, pollertest.SeqMsgs(0, before, "1"))
	src := tp.Source(t, group)
	pollertest.ConnectRetry(t, src, 30*time.Second)

	acked := map[int]bool{}
	reads := 0
	pollertest.ReadUntil(t, src, 30*time.Second, func(m *poller.Message) {
		reads++
		acked[seqOf(t, m)] = true
		pollertest.Ack(t, m, nil)
	}, func() bool { return len(acked) >= before/2 }) // one Read may hand over them all
	start := time.Now()
	brokers.Stop(t, brokers.Kafka)
	// With the broker down, Read must not hang: after the messages it had
	// already fetched, it reports ErrNotConnected (unless another test's
	// up.sh brought Kafka back meanwhile).
	down := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), down)
		msgs, err := src.Read(ctx)
		cancel()
		if errors.Is(err, poller.ErrNotConnected) {
			t.Logf("broker down: Read returned ErrNotConnected after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if cerr := src.Connect(context.Background()); cerr == nil {
				t.Logf("Connect succeeded: Kafka was brought back by someone else")
			} else {
				t.Logf("Connect while down: %v", cerr)
			}
			break
		}
		if err != nil {
			t.Fatalf("Read with the broker down: %v, want ErrNotConnected", err)
		}
		for _, m := range msgs { // fetched before the stop
			reads++
			acked[seqOf(t, m)] = true
			pollertest.Ack(t, m, nil)
		}
	}
	brokers.Start(t, brokers.Kafka)
	t.Logf("kafka restarted in %v", time.Since(start).Round(time.Millisecond))
	tp.Produce(t, pollertest.SeqMsgs(before, after, "1"))

	lost := pollertest.ReadUntil(t, src, 120*time.Second, func(m *poller.Message) {
		reads++
		acked[seqOf(t, m)] = true
		pollertest.Ack(t, m, nil)
	}, func() bool { return len(acked) == before+after })
	waitBacklog(t, tp, group, 0, 30*time.Second)
	t.Logf("produced %d, acked %d unique (%d reads, %d duplicates), ErrNotConnected seen %d times, recovered in %v, lost 0",
		before+after, len(acked), reads, reads-len(acked), lost, time.Since(start).Round(time.Millisecond))
}
