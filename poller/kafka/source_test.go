package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/kafka"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/wire"
)

// TestReadAckAll: every message read once, in order per partition, and the
// group's committed backlog reaches 0.
func TestReadAckAll(t *testing.T) {
	t.Parallel()
	const n = 300
	tp, group := setup(t, 4)
	tp.Produce(t, pollertest.SeqMsgs(0, n, "1"))
	src := tp.Source(t, group)
	pollertest.ConnectRetry(t, src, 30*time.Second)

	seen := map[int]int{}
	lastPerScope := map[string]int{}
	start := time.Now()
	pollertest.ReadUntil(t, src, 60*time.Second, func(m *poller.Message) {
		seq := seqOf(t, m)
		seen[seq]++
		if last, ok := lastPerScope[m.Scope]; ok && seq <= last {
			t.Errorf("order broken in %s: %d after %d", m.Scope, seq, last)
		}
		lastPerScope[m.Scope] = seq
		checkFields(t, tp.Name(), m)
		pollertest.Ack(t, m, nil)
	}, func() bool { return len(seen) == n })
	elapsed := time.Since(start)
	waitBacklog(t, tp, group, 0, 10*time.Second)
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	if dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	if len(lastPerScope) != 4 {
		t.Errorf("messages came from %d scopes, want 4", len(lastPerScope))
	}
	t.Logf("read+acked %d messages from %d partitions in %v (%.0f msg/s), duplicates %d, backlog 0",
		len(seen), len(lastPerScope), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), dups)
	if lag, err := src.(poller.Lagger).Lag(context.Background()); err != nil || lag != 0 {
		t.Errorf("Lag = %d, %v; want 0", lag, err)
	}
}

func checkFields(t testing.TB, topic string, m *poller.Message) {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(m.ID, "kafka:"), "/")
	if len(parts) != 3 || parts[0] != topic || !strings.HasPrefix(m.ID, m.Scope+"/") {
		t.Fatalf("bad ID %q / scope %q", m.ID, m.Scope)
	}
	if want := "kafka://" + kafkaAddr() + "/" + topic; m.Source != want {
		t.Fatalf("Source = %q, want %q", m.Source, want)
	}
	if m.Headers["seq"] != string(m.Payload) || m.Headers[wire.HeaderHops] != "1" {
		t.Fatalf("headers %v for payload %q", m.Headers, m.Payload)
	}
	if !strings.HasPrefix(m.Key, "k") || m.Time.IsZero() || time.Since(m.Time) > time.Hour {
		t.Fatalf("key %q time %v", m.Key, m.Time)
	}
}

// TestOutOfOrderAckLeavesUnacked: acks in reverse order with one message
// left unacked never commit past it; a new Source on the group gets it
// back first (and, Kafka committing positions, the messages after it on
// its partition), and nothing from the fully acked partition.
func TestOutOfOrderAckLeavesUnacked(t *testing.T) {
	t.Parallel()
	const n = 40
	tp, group := setup(t, 2)
	tp.Produce(t, pollertest.SeqMsgs(0, n, "1"))
	src := tp.KafkaSource(t, kafka.Config{Group: group, CommitInterval: 20 * time.Millisecond})
	pollertest.ConnectRetry(t, src, 30*time.Second)

	var all []*poller.Message
	pollertest.ReadUntil(t, src, 30*time.Second, func(m *poller.Message) { all = append(all, m) },
		func() bool { return len(all) == n })
	// Leave the 4th message of the first message's partition unacked.
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
	var after []string // IDs past held on its partition: acked, but not committable
	for i := len(all) - 1; i >= 0; i-- {
		m := all[i]
		if m == held {
			continue
		}
		if m.Scope == scope && offsetOf(t, m) > offsetOf(t, held) {
			after = append(after, m.ID)
		}
		pollertest.Ack(t, m, nil)
	}
	heldPart, heldOff := partOf(t, held), offsetOf(t, held)
	waitBacklog(t, tp, group, int64(1+len(after)), 10*time.Second)
	pollertest.Close(t, src)
	committed := tp.Committed(t, group)
	if committed[heldPart] != heldOff {
		t.Fatalf("partition %d committed %d, want %d (the unacked offset)", heldPart, committed[heldPart], heldOff)
	}

	src2 := tp.Source(t, group)
	pollertest.ConnectRetry(t, src2, 30*time.Second)
	var back []*poller.Message
	pollertest.ReadUntil(t, src2, 30*time.Second, func(m *poller.Message) {
		back = append(back, m)
		pollertest.Ack(t, m, nil)
	}, func() bool { return len(back) == 1+len(after) })
	if back[0].ID != held.ID {
		t.Fatalf("first redelivered %s, want the unacked %s", back[0].ID, held.ID)
	}
	for _, m := range back {
		if m.Scope != scope {
			t.Fatalf("redelivered %s from the fully acked partition", m.ID)
		}
	}
	waitBacklog(t, tp, group, 0, 10*time.Second)
	t.Logf("unacked %s came back first; %d acked messages past it on its partition came back too (Kafka commits positions); 0 from the other partition",
		held.ID, len(after))
}

// TestNackRedelivers: a nacked message is read again by the same Source;
// messages acked meanwhile are not delivered again.
func TestNackRedelivers(t *testing.T) {
	t.Parallel()
	const n = 10
	tp, group := setup(t, 1)
	tp.Produce(t, pollertest.SeqMsgs(0, n, "1"))
	src := tp.Source(t, group)
	pollertest.ConnectRetry(t, src, 30*time.Second)

	var first []*poller.Message
	pollertest.ReadUntil(t, src, 30*time.Second, func(m *poller.Message) { first = append(first, m) },
		func() bool { return len(first) == n })
	for i, m := range first {
		var err error
		if i == 3 {
			err = fmt.Errorf("backend failed")
		}
		pollertest.Ack(t, m, err)
	}
	start := time.Now()
	var again *poller.Message
	pollertest.ReadUntil(t, src, 30*time.Second, func(m *poller.Message) { again = m },
		func() bool { return again != nil })
	if again.ID != first[3].ID {
		t.Fatalf("after nack of %s got %s", first[3].ID, again.ID)
	}
	pollertest.Ack(t, again, nil)
	waitBacklog(t, tp, group, 0, 10*time.Second)
	// Nothing else comes: the next message read is a new one.
	tp.Produce(t, pollertest.SeqMsgs(n, 1, "1"))
	next := 0
	pollertest.ReadUntil(t, src, 30*time.Second, func(m *poller.Message) {
		if seqOf(t, m) != n {
			t.Fatalf("redelivered %s (seq %s) although it was acked", m.ID, m.Payload)
		}
		pollertest.Ack(t, m, nil)
		next++
	}, func() bool { return next > 0 })
	t.Logf("nacked %s redelivered after %v; acked messages not redelivered", again.ID, time.Since(start).Round(time.Millisecond))
}

// TestCloseCommitsAcked: a graceful Close commits what was acked even when
// the commit interval has not passed, so a new Source sees no duplicates.
func TestCloseCommitsAcked(t *testing.T) {
	t.Parallel()
	const n = 100
	tp, group := setup(t, 2)
	tp.Produce(t, pollertest.SeqMsgs(0, n, "1"))
	src := tp.KafkaSource(t, kafka.Config{Group: group, CommitInterval: time.Hour})
	pollertest.ConnectRetry(t, src, 30*time.Second)
	got := 0
	pollertest.ReadUntil(t, src, 30*time.Second, func(m *poller.Message) {
		pollertest.Ack(t, m, nil)
		got++
	}, func() bool { return got == n })
	if b := tp.Backlog(t, group); b != n {
		t.Fatalf("backlog %d before Close, want %d: committed before the interval", b, n)
	}
	pollertest.Close(t, src)
	if b := tp.Backlog(t, group); b != 0 {
		t.Fatalf("backlog %d after Close, want 0", b)
	}
	// A new Source gets only what is produced next.
	tp.Produce(t, pollertest.SeqMsgs(n, 1, "1"))
	src2 := tp.Source(t, group)
	pollertest.ConnectRetry(t, src2, 30*time.Second)
	next := 0
	pollertest.ReadUntil(t, src2, 30*time.Second, func(m *poller.Message) {
		if seqOf(t, m) != n {
			t.Fatalf("duplicate after graceful Close: %s", m.ID)
		}
		pollertest.Ack(t, m, nil)
		next++
	}, func() bool { return next > 0 })
	t.Logf("%d acked, Close committed them (interval 1h), new Source saw 0 duplicates", n)
}

// TestReadHandsOverRuns: with a backlog, one Read returns a run of the
// messages the reader holds (not one message per call), in partition order
// and never more than its cap.
func TestReadHandsOverRuns(t *testing.T) {
	t.Parallel()
	const n = 600
	tp, group := setup(t, 1)
	tp.Produce(t, pollertest.SeqMsgs(0, n, "1"))
	src := tp.Source(t, group)
	pollertest.ConnectRetry(t, src, 30*time.Second)
	defer pollertest.Close(t, src)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next, reads, longest := 0, 0, 0
	for next < n {
		msgs, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d messages: %v", next, err)
		}
		reads++
		longest = max(longest, len(msgs))
		if len(msgs) > 256 {
			t.Fatalf("Read returned %d messages, more than its cap of 256", len(msgs))
		}
		for _, m := range msgs {
			if seq := seqOf(t, m); seq != next {
				t.Fatalf("got message %d, want %d", seq, next)
			}
			next++
			pollertest.Ack(t, m, nil)
		}
	}
	if longest < 2 {
		t.Errorf("every Read returned one message (%d reads for %d messages); want runs", reads, n)
	}
	t.Logf("%d messages in %d reads, longest run %d", n, reads, longest)
	waitBacklog(t, tp, group, 0, 10*time.Second)
}
