package pollertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/test/brokers"
)

// brokerRestart: the broker goes away while the Source holds unacked
// messages mid-stream. Read reports poller.ErrNotConnected (or the client
// rides over the restart, unless ReportsLoss), Connect succeeds again
// once the broker is back (ReadUntil reconnects as the poller loop does),
// and every message produced before and after the restart is read and
// acked: none lost. Acks of the held messages may be refused (they are
// then delivered again); duplicates are reported, not failed.
func (s *suite) brokerRestart(t *testing.T) {
	const before, after = 150, 150
	tp, g, src := s.connected(t, before)

	acked := map[int]bool{}
	reads, refused := 0, 0
	ack := func(m *poller.Message) {
		reads++
		if err := m.Ack(context.Background(), nil); err != nil {
			refused++
			t.Logf("Ack %s after the restart: %v", m.ID, err)
			return
		}
		acked[SeqOf(t, m)] = true
	}
	// Ack a third, then hold what the next Read hands over.
	ReadUntil(t, src, 2*s.f.Within, ack, func() bool { return len(acked) >= before/3 })
	var held []*poller.Message
	if len(acked) < before {
		ReadUntil(t, src, s.f.Within, func(m *poller.Message) { held = append(held, m) }, func() bool { return len(held) > 0 })
	}

	start := time.Now()
	lost := 0
	switch s.f.Restart {
	case RestartReadWhileDown:
		brokers.Stop(t, s.f.Broker)
		t.Cleanup(func() { brokers.Start(t, s.f.Broker) }) // even when the test fails
		lost += s.readWhileDown(t, src, ack)
		brokers.Start(t, s.f.Broker)
	default:
		brokers.Restart(t, s.f.Broker)
	}
	t.Logf("%s back after %v, holding %d unacked messages", s.f.Broker, time.Since(start).Round(time.Millisecond), len(held))
	for _, m := range held {
		ack(m)
	}
	tp.Produce(t, SeqMsgs(before, after, "1"))
	lost += ReadUntil(t, src, 4*s.f.Within, ack, func() bool { return len(acked) == before+after })
	WaitBacklog(t, tp, g, 0, 2*s.f.Within)
	if s.f.ReportsLoss && lost == 0 {
		t.Errorf("Read never reported ErrNotConnected: the restart was not seen")
	}
	if s.f.RefusesStaleAcks && len(held) > 0 && refused == 0 {
		t.Errorf("all %d acks held across the restart succeeded, want them refused", len(held))
	}
	t.Logf("N=%d lost=0 duplicated=%d refused_acks=%d not_connected=%d recovered in %v",
		before+after, reads-refused-len(acked), refused, lost, time.Since(start).Round(time.Millisecond))
	Close(t, src)
}

// readWhileDown reads with the broker stopped: after the messages already
// fetched (acked through ack), Read must report poller.ErrNotConnected
// within the phase's deadline, not hang. It returns 1 (the loss seen).
func (s *suite) readWhileDown(t *testing.T, src poller.Source, ack func(*poller.Message)) int {
	t.Helper()
	start := time.Now()
	down := start.Add(s.f.Within)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), down)
		msgs, err := src.Read(ctx)
		cancel()
		if errors.Is(err, poller.ErrNotConnected) {
			t.Logf("broker down: Read reported ErrNotConnected after %v: %v", time.Since(start).Round(time.Millisecond), err)
			return 1
		}
		if err != nil {
			t.Fatalf("Read with the broker down: %v, want ErrNotConnected", err)
		}
		for _, m := range msgs { // fetched before the stop
			ack(m)
		}
	}
}
