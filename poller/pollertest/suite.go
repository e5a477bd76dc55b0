package pollertest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/wire"
)

// Redelivery says which messages a new Source on a group reads again after
// a Source closed with messages unacked.
type Redelivery int

const (
	// RedeliverUnacked: exactly the unacked messages come back (AMQP
	// requeue, a Redis stream's pending entries).
	RedeliverUnacked Redelivery = iota
	// RedeliverFromCommit: the group resumes at its committed position,
	// which never passes an unacked message: the unacked message comes
	// back first, and so may acked messages after it in its scope
	// (Kafka, RocketMQ commit positions, not single messages).
	RedeliverFromCommit
)

// Restart says how the suite takes the broker away.
type Restart int

const (
	// RestartInPlace restarts the broker (brokers.Restart) while the
	// Source holds unacked messages.
	RestartInPlace Restart = iota
	// RestartReadWhileDown stops the broker, checks that Read does not
	// hang but reports poller.ErrNotConnected (after the messages it had
	// already fetched), then starts it again.
	RestartReadWhileDown
)

// Features are the real differences between brokers that the Source
// contract allows for; everything else is asserted alike for every
// adapter.
type Features struct {
	// Broker is the test/brokers name the suite restarts.
	Broker string
	// Scopes is how many ordering scopes the suite's topics get where
	// the broker has several (Kafka partitions, RocketMQ queues); 1
	// elsewhere (a queue, a stream).
	Scopes int
	// Parallel runs the scenarios (all but BrokerRestart) in parallel.
	Parallel bool
	// Within bounds each phase (connect, read until a count). Zero means
	// 30s.
	Within time.Duration
	// ContentType: a "content-type" header produced sets
	// Message.ContentType (Kafka header, AMQP property, Redis field).
	ContentType bool
	// Redelivery: what a new Source reads again after unacked messages.
	Redelivery Redelivery
	// CommitOnClose: Close commits every acked message before it
	// returns, so the backlog is 0 at once; false: the broker shows it
	// later (RocketMQ persists offsets asynchronously), and the suite
	// polls.
	CommitOnClose bool
	// Restart is how the broker is taken away in BrokerRestart.
	Restart Restart
	// ReportsLoss: a restart is always seen: Read reports
	// poller.ErrNotConnected at least once. False: the client may ride
	// over a restart by itself.
	ReportsLoss bool
	// RefusesStaleAcks: acks of the messages held across a restart are
	// refused (AMQP delivery tags die with the channel), and the messages
	// come back. False: they may succeed.
	RefusesStaleAcks bool
	// CheckID checks the broker-specific shape of a message's ID, Scope
	// and Source on topic tp.
	CheckID func(t testing.TB, tp brokers.Topic, m *poller.Message)
}

// NewSource returns a Source, not connected, on tp for group; it closes
// the Source in t.Cleanup.
type NewSource func(t testing.TB, tp brokers.Topic, group string) poller.Source

// TestSource runs the Source contract against the adapter newSource
// builds, on b's real broker: every scenario, the same assertions, for
// every adapter (Watermill's TestPubSub habit). Call it from one test
// function per adapter that is not itself parallel: BrokerRestart takes
// the broker away and must not overlap the package's other tests.
func TestSource(t *testing.T, b brokers.Broker, feat Features, newSource NewSource) {
	if feat.Within == 0 {
		feat.Within = 30 * time.Second
	}
	feat.Scopes = max(feat.Scopes, 1)
	s := &suite{b: b, f: feat, newSource: newSource}
	t.Run("BrokerRestart", s.brokerRestart) // first: not parallel
	for _, c := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"ReadAckAll", s.readAckAll},
		{"MessageFields", s.messageFields},
		{"NackRedelivers", s.nackRedelivers},
		{"UnackedComeBack", s.unackedComeBack},
		{"CloseAfterAcksNoDuplicates", s.closeAfterAcks},
	} {
		t.Run(c.name, func(t *testing.T) {
			if feat.Parallel {
				t.Parallel()
			}
			c.fn(t)
		})
	}
}

type suite struct {
	b         brokers.Broker
	f         Features
	newSource NewSource
}

// group is a consumer group name unique to t (brokers without groups
// ignore it).
func group(t testing.TB) string {
	return "g-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
}

// connected produces n seq messages (SeqMsgs, hops "1") to a new topic
// and returns it, a new group and a Source connected to both.
func (s *suite) connected(t *testing.T, n int) (brokers.Topic, string, poller.Source) {
	t.Helper()
	tp := s.b.NewTopic(t, s.f.Scopes)
	g := group(t)
	tp.Produce(t, SeqMsgs(0, n, "1"))
	src := s.newSource(t, tp, g)
	ConnectRetry(t, src, s.f.Within)
	return tp, g, src
}

// SeqOf is the seq number in m's payload (see SeqMsgs); it fails t when
// the payload is not one.
func SeqOf(t testing.TB, m *poller.Message) int {
	t.Helper()
	n, err := strconv.Atoi(string(m.Payload))
	if err != nil {
		t.Fatalf("message %s has payload %q, not a seq", m.ID, m.Payload)
	}
	return n
}

// readAckAll: every message is read once, in order per scope and per key,
// from every scope, with its fields; the backlog (and Lag) reach 0.
func (s *suite) readAckAll(t *testing.T) {
	const n = 300
	tp, g, src := s.connected(t, n)

	seen := map[int]int{}
	lastScope, lastKey := map[string]int{}, map[string]int{}
	start := time.Now()
	ReadUntil(t, src, 2*s.f.Within, func(m *poller.Message) {
		seq := SeqOf(t, m)
		if seen[seq]++; seen[seq] > 1 {
			t.Errorf("%s (seq %d) read %d times", m.ID, seq, seen[seq])
		}
		if last, ok := lastScope[m.Scope]; ok && seq <= last {
			t.Errorf("order broken in scope %s: %d after %d", m.Scope, seq, last)
		}
		if last, ok := lastKey[m.Key]; ok && seq <= last {
			t.Errorf("order broken for key %s: %d after %d", m.Key, seq, last)
		}
		lastScope[m.Scope], lastKey[m.Key] = seq, seq
		if want := "k" + strconv.Itoa(seq%8); m.Key != want || m.Headers["seq"] != string(m.Payload) || m.Headers[wire.HeaderHops] != "1" {
			t.Errorf("%s: key %q (want %q), headers %v", m.ID, m.Key, want, m.Headers)
		}
		s.f.CheckID(t, tp, m)
		Ack(t, m, nil)
	}, func() bool { return len(seen) == n })
	elapsed := time.Since(start)
	if len(lastScope) != s.f.Scopes {
		t.Errorf("messages came from %d scopes, want %d", len(lastScope), s.f.Scopes)
	}
	WaitBacklog(t, tp, g, 0, s.f.Within)
	if l, ok := src.(poller.Lagger); ok {
		if lag, err := l.Lag(context.Background()); err != nil || lag != 0 {
			t.Errorf("Lag = %d, %v; want 0", lag, err)
		}
	}
	t.Logf("read+acked %d messages from %d scopes in %v (%.0f msg/s), backlog 0",
		n, len(lastScope), elapsed.Round(time.Millisecond), n/elapsed.Seconds())
	Close(t, src)
}

// messageFields: id, scope, source, key, payload, headers (ferry-hops,
// traceparent, others), content type and time of a message; a second Ack
// of a message is an error.
func (s *suite) messageFields(t *testing.T) {
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0736ab-00f067aa0ba902b7-01"
	tp := s.b.NewTopic(t, 1)
	g := group(t)
	tp.Produce(t, []brokers.Msg{{Key: "order-7", Payload: []byte(`{"a":1}`), Headers: map[string]string{
		wire.HeaderHops: "3", wire.HeaderTraceParent: traceparent, "content-type": "application/json", "x-other": "v",
	}}})
	src := s.newSource(t, tp, g)
	ConnectRetry(t, src, s.f.Within)
	var m *poller.Message
	ReadUntil(t, src, s.f.Within, func(got *poller.Message) { m = got }, func() bool { return m != nil })
	defer func() {
		Ack(t, m, nil)
		if err := m.Ack(context.Background(), nil); err == nil {
			t.Errorf("a second Ack of %s succeeded, want an error", m.ID)
		}
	}()

	s.f.CheckID(t, tp, m)
	checks := []struct{ field, got, want string }{
		{"Key", m.Key, "order-7"},
		{"Payload", string(m.Payload), `{"a":1}`},
		{"Headers[ferry-hops]", m.Headers[wire.HeaderHops], "3"},
		{"Headers[traceparent]", m.Headers[wire.HeaderTraceParent], traceparent},
		{"Headers[x-other]", m.Headers["x-other"], "v"},
	}
	if s.f.ContentType {
		checks = append(checks, struct{ field, got, want string }{"ContentType", m.ContentType, "application/json"})
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if d := time.Since(m.Time); d < -time.Minute || d > time.Minute {
		t.Errorf("Time = %v, want about now", m.Time)
	}
	if strings.Contains(m.Source, "guest") || strings.Contains(m.Source, "@") {
		t.Errorf("Source %q carries credentials", m.Source)
	}
}

// nackRedelivers: a nacked message is read again by the same Source with
// the same id, and again when its redelivery is nacked; the acked ones are
// not (the next read after it is a new
// message), and the backlog reaches 0.
func (s *suite) nackRedelivers(t *testing.T) {
	const n, nacked = 10, 3
	tp := s.b.NewTopic(t, 1)
	g := group(t)
	tp.Produce(t, SeqMsgs(0, n, "1"))
	src := s.newSource(t, tp, g)
	ConnectRetry(t, src, s.f.Within)

	reads := map[int]int{}
	var nackedID string
	start := time.Now()
	ReadUntil(t, src, 2*s.f.Within, func(m *poller.Message) {
		seq := SeqOf(t, m)
		reads[seq]++
		switch {
		case seq == nacked && reads[seq] == 1:
			nackedID = m.ID
			Ack(t, m, errors.New("backend failed"))
		case seq == nacked && reads[seq] <= 3:
			if m.ID != nackedID {
				t.Errorf("redelivered as %s, first read as %s: the id changed", m.ID, nackedID)
			}
			var err error
			if reads[seq] == 2 {
				err = errors.New("failed again") // a redelivery can be nacked too
			}
			Ack(t, m, err)
		case reads[seq] > 1:
			t.Errorf("%s (seq %d) read again although it was acked", m.ID, seq)
			Ack(t, m, nil)
		default:
			Ack(t, m, nil)
		}
	}, func() bool { return len(reads) == n && reads[nacked] == 3 })
	took := time.Since(start)
	WaitBacklog(t, tp, g, 0, s.f.Within)
	tp.Produce(t, SeqMsgs(n, 1, "1")) // a marker: the next message read
	var next *poller.Message
	ReadUntil(t, src, s.f.Within, func(m *poller.Message) {
		if next == nil {
			next = m
		}
		Ack(t, m, nil)
	}, func() bool { return next != nil })
	if seq := SeqOf(t, next); seq != n {
		t.Errorf("after the redelivery read %s (seq %d), want the new message %d", next.ID, seq, n)
	}
	t.Logf("nacked %s twice, read it three times; all %d read and acked in %v", nackedID, n, took.Round(time.Millisecond))
	Close(t, src)
}
