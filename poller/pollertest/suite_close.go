package pollertest

import (
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
)

// unackedComeBack: messages acked in reverse order with one left unacked;
// after Close a new Source on the group reads the unacked one again, with
// the same id, first in its scope, and nothing from a scope that was
// fully acked. With RedeliverUnacked nothing else comes back.
func (s *suite) unackedComeBack(t *testing.T) {
	const n = 40
	tp := s.b.NewTopic(t, s.f.Scopes)
	g := group(t)
	tp.Produce(t, SeqMsgs(0, n, "1"))
	src := s.newSource(t, tp, g)
	ConnectRetry(t, src, s.f.Within)
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
	// message, and with commit positions every message after it in its
	// scope (a scope keeps the produced order, so those with a higher seq).
	want := int64(1)
	if s.f.Redelivery == RedeliverFromCommit {
		for _, m := range all {
			if m.Scope == scope && SeqOf(t, m) > SeqOf(t, held) {
				want++
			}
		}
	}
	Close(t, src)
	WaitBacklog(t, tp, g, want, s.f.Within)
	after := want

	src2 := s.newSource(t, tp, g)
	ConnectRetry(t, src2, s.f.Within)
	var back []*poller.Message
	ReadUntil(t, src2, 2*s.f.Within, func(m *poller.Message) {
		back = append(back, m)
		Ack(t, m, nil)
	}, func() bool { return int64(len(back)) >= after })
	if back[0].ID != held.ID {
		t.Errorf("first redelivered %s, want the unacked %s", back[0].ID, held.ID)
	}
	found := false
	for _, m := range back {
		found = found || m.ID == held.ID
		if m.Scope != scope {
			t.Errorf("redelivered %s from the fully acked scope %s", m.ID, m.Scope)
		}
	}
	if !found {
		t.Errorf("the unacked %s did not come back", held.ID)
	}
	WaitBacklog(t, tp, g, 0, s.f.Within)
	if s.f.Redelivery == RedeliverUnacked {
		ReadNone(t, src2, time.Second)
	}
	t.Logf("unacked %s came back first; %d message(s) redelivered in all, none from other scopes", held.ID, len(back))
}

// closeAfterAcks: Close right after the last ack (no wait) commits every
// ack; a new Source on the group reads only what is produced next.
func (s *suite) closeAfterAcks(t *testing.T) {
	const n = 100
	tp := s.b.NewTopic(t, s.f.Scopes)
	g := group(t)
	tp.Produce(t, SeqMsgs(0, n, "1"))
	src := s.newSource(t, tp, g)
	ConnectRetry(t, src, s.f.Within)
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
