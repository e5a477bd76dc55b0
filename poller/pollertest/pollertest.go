// Package pollertest holds the Source contract every broker adapter runs
// (TestSource, with Features for the real differences between brokers:
// Watermill's TestPubSub habit) and the helpers the adapters' tests share:
// building numbered messages, connecting a poller.Source, reading from it
// until a count or a condition is reached, checking that nothing arrives,
// acking, closing, and waiting for a topic's backlog (as the broker
// reports it) to reach a value. The topics come from the test/brokers
// helpers; poller/pollertest/sources builds Ferry's Sources on them.
//
// Every helper runs on the calling test's goroutine, marks itself with
// t.Helper, bounds each broker call with a deadline, and fails t with
// t.Fatalf. Do not call them from other goroutines: a helper that fails
// there would call t.Fatalf off the test's goroutine. Waiting is done by
// polling a condition until a deadline, never by sleeping a fixed time.
package pollertest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/wire"
)

// CloseTimeout bounds Close.
const CloseTimeout = 30 * time.Second

// retryPause is how long ConnectRetry (and ReadUntil's reconnect) waits
// between two failed Connect calls: a backoff, not a synchronisation.
const retryPause = 500 * time.Millisecond

// Backlog polling pauses start at pollMin and double up to pollMax.
const (
	pollMin = 20 * time.Millisecond
	pollMax = 200 * time.Millisecond
)

// SeqMsgs builds n messages numbered seq = first .. first+n-1: the payload
// and the "seq" header are the decimal seq, the key is k<seq%8> (eight
// keys, so eight ordering scopes at most), and the poller.HeaderHops
// header is hops.
func SeqMsgs(first, n int, hops string) []brokers.Msg {
	out := make([]brokers.Msg, n)
	for i := range out {
		seq := first + i
		out[i] = brokers.Msg{
			Key:     fmt.Sprintf("k%d", seq%8),
			Payload: []byte(strconv.Itoa(seq)),
			Headers: map[string]string{"seq": strconv.Itoa(seq), wire.HeaderHops: hops},
		}
	}
	return out
}

// Connect calls src.Connect once, bounded by within, and fails t on error.
func Connect(t testing.TB, src poller.Source, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
}

// ConnectRetry calls src.Connect until it succeeds, pausing between
// attempts as the poller loop backs off; it fails t once within has passed.
func ConnectRetry(t testing.TB, src poller.Source, within time.Duration) {
	t.Helper()
	connectUntil(t, src, time.Now().Add(within))
}

func connectUntil(t testing.TB, src poller.Source, deadline time.Time) {
	t.Helper()
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := src.Connect(ctx)
		cancel()
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("Connect: %v", err)
		}
		t.Logf("Connect: %v (retrying)", err)
		pause(retryPause, deadline)
	}
}

// ReadN reads from src until n messages arrived and returns them in the
// order read. It fails t when a Read fails (also at the deadline, within
// from now) or when more than n messages arrive.
func ReadN(t testing.TB, src poller.Source, n int, within time.Duration) []*poller.Message {
	t.Helper()
	return readN(t, src, n, within, func(*poller.Message) {})
}

// ReadAck is ReadN acking (with a nil error) each message as it is read,
// for sources that deliver more only once earlier messages are settled.
func ReadAck(t testing.TB, src poller.Source, n int, within time.Duration) []*poller.Message {
	t.Helper()
	return readN(t, src, n, within, func(m *poller.Message) { Ack(t, m, nil) })
}

func readN(t testing.TB, src poller.Source, n int, within time.Duration, each func(*poller.Message)) []*poller.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var got []*poller.Message
	for len(got) < n {
		msgs, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d of %d messages: %v", len(got), n, err)
		}
		for _, m := range msgs {
			each(m)
		}
		got = append(got, msgs...)
	}
	if len(got) > n {
		t.Fatalf("read %d messages, want %d", len(got), n)
	}
	return got
}

// ReadUntil reads from src, calling handle for each message, until done
// reports true (done is checked before each Read, so after a whole batch
// was handled). When Read reports poller.ErrNotConnected it connects again,
// retrying as the poller loop does. It fails t on any other Read error and
// when done is not reached within. It returns how many times Read
// reported ErrNotConnected.
func ReadUntil(t testing.TB, src poller.Source, within time.Duration, handle func(*poller.Message), done func() bool) (lost int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !done() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		msgs, err := src.Read(ctx)
		cancel()
		switch {
		case err == nil:
			for _, m := range msgs {
				handle(m)
			}
		case errors.Is(err, poller.ErrNotConnected):
			lost++
			t.Logf("Read: %v; connecting again", err)
			connectUntil(t, src, deadline)
		case !time.Now().Before(deadline):
			t.Fatalf("condition not reached within %v (Read: %v)", within, err)
		default:
			t.Fatalf("Read: %v", err)
		}
	}
	return lost
}

// ReadNone checks that nothing arrives from src within d: Read must end
// with the context's deadline and no message.
func ReadNone(t testing.TB, src poller.Source, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	msgs, err := src.Read(ctx)
	if len(msgs) > 0 {
		t.Fatalf("read %d unexpected messages, first %q (%s)", len(msgs), msgs[0].Payload, msgs[0].ID)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read: %v, want the context deadline", err)
	}
}

// Ack settles m with cause (nil: done; non-nil: deliver again) and fails t
// when the source refuses the ack.
func Ack(t testing.TB, m *poller.Message, cause error) {
	t.Helper()
	if err := m.Ack(context.Background(), cause); err != nil {
		t.Fatalf("Ack %s: %v", m.ID, err)
	}
}

// AckAll acks each of msgs with a nil error.
func AckAll(t testing.TB, msgs []*poller.Message) {
	t.Helper()
	for _, m := range msgs {
		Ack(t, m, nil)
	}
}

// Close closes src, bounded by CloseTimeout, and fails t on error.
func Close(t testing.TB, src poller.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
	defer cancel()
	if err := src.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// WaitBacklog polls topic.Backlog(group) until it equals want; it fails t
// if it does not within.
func WaitBacklog(t testing.TB, topic brokers.Topic, group string, want int64, within time.Duration) {
	t.Helper()
	if got, ok := PollBacklog(t, topic, group, func(n int64) bool { return n == want }, within); !ok {
		t.Fatalf("backlog of %q is %d after %v, want %d", group, got, within, want)
	}
}

// PollBacklog polls topic.Backlog(group) until ok accepts it or within has
// passed, and returns the last backlog read and whether ok accepted it. It
// does not fail t itself (topic.Backlog may), so that a caller can report
// a broker-specific detail.
func PollBacklog(t testing.TB, topic brokers.Topic, group string, ok func(int64) bool, within time.Duration) (int64, bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for wait := pollMin; ; wait = min(2*wait, pollMax) {
		n := topic.Backlog(t, group)
		if ok(n) {
			return n, true
		}
		if !time.Now().Before(deadline) {
			return n, false
		}
		pause(wait, deadline)
	}
}

// pause waits d, or less if deadline comes first: the interval between two
// polls of a condition.
func pause(d time.Duration, deadline time.Time) {
	tm := time.NewTimer(min(d, max(time.Until(deadline), 0)))
	defer tm.Stop()
	<-tm.C
}
