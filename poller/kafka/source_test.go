package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/kafka"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
)

// TestSource runs the Source contract (poller/pollertest) on Kafka: four
// partitions, commit positions, and a broker stop during which Read must
// report ErrNotConnected.
func TestSource(t *testing.T) {
	pollertest.TestSource(t, kafkatest.New(), pollertest.Features{
		Broker:        brokers.Kafka,
		Scopes:        4,
		Parallel:      true,
		ContentType:   true,
		Redelivery:    pollertest.RedeliverFromCommit,
		CommitOnClose: true,
		Restart:       pollertest.RestartReadWhileDown,
		ReportsLoss:   true,
		CheckID: func(t testing.TB, tp brokers.Topic, m *poller.Message) {
			t.Helper()
			parts := strings.Split(strings.TrimPrefix(m.ID, "kafka:"), "/")
			if len(parts) != 3 || parts[0] != tp.Name() || !strings.HasPrefix(m.ID, m.Scope+"/") {
				t.Errorf("bad ID %q / Scope %q", m.ID, m.Scope)
			}
			if want := "kafka://" + tp.(*kafkatest.Topic).Addr() + "/" + tp.Name(); m.Source != want {
				t.Errorf("Source = %q, want %q", m.Source, want)
			}
		},
	}, func(t testing.TB, tp brokers.Topic, group string) poller.Source {
		return sources.Kafka(t, tp.(*kafkatest.Topic), kafka.Config{Group: group})
	})
}

// TestCloseCommitsAcked: a graceful Close commits what was acked even when
// the commit interval has not passed, so a new Source sees no duplicates.
func TestCloseCommitsAcked(t *testing.T) {
	t.Parallel()
	const n = 100
	tp, group := setup(t, 2)
	tp.Produce(t, pollertest.SeqMsgs(0, n, "1"))
	src := sources.Kafka(t, tp, kafka.Config{Group: group, CommitInterval: time.Hour})
	pollertest.ConnectRetry(t, src, 30*time.Second)
	got := 0
	pollertest.ReadUntil(t, src, 30*time.Second, func(m *poller.Message) {
		pollertest.Ack(t, m, nil)
		got++
	}, func() bool { return got == n })
	if b := tp.Backlog(t, group); b != n {
		t.Fatalf("backlog %d before Close, want %d: committed before the interval", b, n)
	}
	lag := src.PartitionLag
	if parts, err := lag(context.Background()); err != nil || len(parts) != 2 || parts["0"]+parts["1"] != n {
		t.Fatalf("PartitionLag before Close = %v, %v; want partitions 0 and 1 summing to %d", parts, err, n)
	}
	pollertest.Close(t, src)
	if b := tp.Backlog(t, group); b != 0 {
		t.Fatalf("backlog %d after Close, want 0", b)
	}
	if parts, err := lag(context.Background()); err != nil || parts["0"] != 0 || parts["1"] != 0 {
		t.Fatalf("PartitionLag after Close = %v, %v; want 0 on both", parts, err)
	}
	t.Logf("%d acked, Close committed them (interval 1h)", n)
}

// TestOutOfOrderAckCommitsContiguous: acks in reverse order with one
// message left unacked never commit past it: the group's committed offset
// on its partition is the unacked offset after Close.
func TestOutOfOrderAckCommitsContiguous(t *testing.T) {
	t.Parallel()
	const n = 40
	tp, group := setup(t, 2)
	tp.Produce(t, pollertest.SeqMsgs(0, n, "1"))
	src := sources.Kafka(t, tp, kafka.Config{Group: group, CommitInterval: 20 * time.Millisecond})
	pollertest.ConnectRetry(t, src, 30*time.Second)

	var all []*poller.Message
	pollertest.ReadUntil(t, src, 30*time.Second, func(m *poller.Message) { all = append(all, m) },
		func() bool { return len(all) == n })
	held := all[3]
	after := 0 // acked past held on its partition, not committable
	for i := len(all) - 1; i >= 0; i-- {
		if m := all[i]; m != held {
			if m.Scope == held.Scope && offsetOf(t, m) > offsetOf(t, held) {
				after++
			}
			pollertest.Ack(t, m, nil)
		}
	}
	waitBacklog(t, tp, group, int64(1+after), 10*time.Second)
	pollertest.Close(t, src)
	if got := tp.Committed(t, group)[partOf(t, held)]; got != offsetOf(t, held) {
		t.Fatalf("partition %d committed %d, want %d (the unacked offset)", partOf(t, held), got, offsetOf(t, held))
	}
}

// TestReadHandsOverRuns: with a backlog, one Read returns a run of the
// messages the reader holds (not one message per call), in partition order
// and never more than its cap.
func TestReadHandsOverRuns(t *testing.T) {
	t.Parallel()
	const n = 600
	tp, group := setup(t, 1)
	tp.Produce(t, pollertest.SeqMsgs(0, n, "1"))
	src := sources.Kafka(t, tp, kafka.Config{Group: group})
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
			if seq := pollertest.SeqOf(t, m); seq != next {
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
