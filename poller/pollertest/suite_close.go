package pollertest

import (
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
)

// unackedComeBack: messages acked in reverse order with one left unacked;
// Close commits nothing past it, and a new Source on the group reads it
// again with the same id, nothing from a scope that was fully acked, and
// (RedeliverFromCommit) its scope from a position at or before it, or
// (RedeliverUnacked) only that message.
func (s *suite) unackedComeBack(t *testing.T) {
	const n = 40
	tp, g, src := s.connected(t, n)
	var all []*poller.Message
	ReadUntil(t, src, 2*s.f.Within, func(m *poller.Message) { all = append(all, m) }, func() bool { return len(all) == n })

	// Leave the 4th message of the first message's scope unacked.
	scope := all[0].Scope
	var held *poller.Message
	k := 0
	for _, m := range all {
		if m.Scope == scope {
			if k == 3 {
				held = m
			}
			k++
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i] != held {
			Ack(t, all[i], nil)
		}
	}
	// What the group has not committed once Close is done: the held
	// message, and with commit positions at least every message after it
	// in its scope (a scope keeps the produced order: a higher seq).
	rest := map[int]bool{} // seqs after held in its scope
	for _, m := range all {
		if m.Scope == scope && SeqOf(t, m) > SeqOf(t, held) {
			rest[SeqOf(t, m)] = true
		}
	}
	Close(t, src)
	if s.f.Redelivery == RedeliverUnacked {
		WaitBacklog(t, tp, g, 1, s.f.Within)
	} else if b := tp.Backlog(t, g); b < int64(1+len(rest)) {
		t.Fatalf("backlog after Close = %d, want at least %d: committed past the unacked message", b, 1+len(rest))
	}

	src2 := s.newSource(t, tp, g)
	ConnectRetry(t, src2, s.f.Within)
	var back []*poller.Message
	sawHeld, restSeen := false, 0
	ReadUntil(t, src2, 2*s.f.Within, func(m *poller.Message) {
		back = append(back, m)
		sawHeld = sawHeld || m.ID == held.ID
		if m.Scope == scope && rest[SeqOf(t, m)] {
			restSeen++
		}
		Ack(t, m, nil)
	}, func() bool { return sawHeld && (s.f.Redelivery == RedeliverUnacked || restSeen >= len(rest)) })
	if s.f.Redelivery == RedeliverUnacked && back[0].ID != held.ID {
		t.Errorf("first redelivered %s, want the unacked %s", back[0].ID, held.ID)
	}
	if back[0].Scope == scope && SeqOf(t, back[0]) > SeqOf(t, held) {
		t.Errorf("redelivery of scope %s starts at %s, after the unacked %s", scope, back[0].ID, held.ID)
	}
	for _, m := range back {
		if m.Scope != scope {
			t.Errorf("redelivered %s from the fully acked scope %s", m.ID, m.Scope)
		}
	}
	WaitBacklog(t, tp, g, 0, s.f.Within)
	if s.f.Redelivery == RedeliverUnacked {
		ReadNone(t, src2, time.Second)
	}
	t.Logf("unacked %s came back; %d message(s) redelivered in all, none from other scopes", held.ID, len(back))
}

// closeAfterAcks: Close right after the last ack (no wait) commits every
// ack; a new Source on the group reads only what is produced next.
func (s *suite) closeAfterAcks(t *testing.T) {
	const n = 100
	tp, g, src := s.connected(t, n)
	got := 0
	ReadUntil(t, src, 2*s.f.Within, func(m *poller.Message) {
		Ack(t, m, nil)
		got++
	}, func() bool { return got == n })
	Close(t, src)
	if s.f.CommitOnClose {
		if b := tp.Backlog(t, g); b != 0 {
			t.Fatalf("backlog right after Close = %d, want 0 (acks lost on Close)", b)
		}
	} else {
		WaitBacklog(t, tp, g, 0, s.f.Within)
	}

	tp.Produce(t, SeqMsgs(n, 1, "1")) // a marker after the acked messages
	src2 := s.newSource(t, tp, g)
	ConnectRetry(t, src2, s.f.Within)
	var seqs []int
	ReadUntil(t, src2, 2*s.f.Within, func(m *poller.Message) {
		seqs = append(seqs, SeqOf(t, m))
		Ack(t, m, nil)
	}, func() bool { return len(seqs) > 0 && seqs[len(seqs)-1] == n })
	if len(seqs) != 1 {
		t.Fatalf("after a graceful Close the new Source read seqs %v, want only the marker %d", seqs, n)
	}
	t.Logf("%d acked, closed at once: backlog 0, the new Source read only the marker", n)
}
