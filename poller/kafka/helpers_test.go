package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/kafka"
	"github.com/ferrydev/ferry/poller/kafka/kafkatest"
	"github.com/ferrydev/ferry/test/conformance"
)

// setup creates a fresh topic with parts partitions and a unique group name.
func setup(t *testing.T, parts int) (*kafkatest.Topic, string) {
	t.Helper()
	tp := kafkatest.New().CreateTopic(t, parts)
	return tp, kafkatest.UniqueName(t)
}

// seqMsgs builds n messages with payload = seq (from first), spread over
// eight keys, each carrying its seq and a hop count as headers.
func seqMsgs(first, n int) []conformance.Msg {
	out := make([]conformance.Msg, n)
	for i := range out {
		seq := first + i
		out[i] = conformance.Msg{
			Key:     fmt.Sprintf("k%d", seq%8),
			Payload: []byte(strconv.Itoa(seq)),
			Headers: map[string]string{"seq": strconv.Itoa(seq), poller.HeaderHops: "1"},
		}
	}
	return out
}

func seqOf(t testing.TB, m *poller.Message) int {
	t.Helper()
	n, err := strconv.Atoi(string(m.Payload))
	if err != nil {
		t.Fatalf("message %s has payload %q", m.ID, m.Payload)
	}
	return n
}

// connect connects src, retrying until the deadline.
func connect(t testing.TB, src poller.Source, deadline time.Time) {
	t.Helper()
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := src.Connect(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect: %v", err)
		}
		t.Logf("connect: %v (retrying)", err)
		waitFor(ctx, 500*time.Millisecond)
	}
}

// waitFor waits d (a reconnect backoff, not a synchronisation) or until ctx ends.
func waitFor(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// readLoop reads from src until handle returns true, reconnecting on
// ErrNotConnected like the poller loop; it fails t at the deadline. It
// returns how many times Read reported ErrNotConnected.
func readLoop(t testing.TB, src poller.Source, deadline time.Time, handle func(*poller.Message) bool) int {
	t.Helper()
	lost := 0
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		msgs, err := src.Read(ctx)
		cancel()
		switch {
		case err == nil:
			for _, m := range msgs {
				if handle(m) {
					return lost
				}
			}
		case errors.Is(err, poller.ErrNotConnected):
			lost++
			t.Logf("read: %v; reconnecting", err)
			connect(t, src, deadline)
		case time.Now().After(deadline):
			t.Fatalf("read: timed out: %v", err)
		default:
			t.Fatalf("read: %v", err)
		}
	}
}

// waitBacklog polls the broker until the group's backlog is want.
func waitBacklog(t testing.TB, tp *kafkatest.Topic, group string, want int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := tp.Backlog(t, group)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog = %d, want %d (committed %v)", got, want, tp.Committed(t, group))
		}
		waitFor(context.Background(), 50*time.Millisecond)
	}
}

func ack(t testing.TB, m *poller.Message, err error) {
	t.Helper()
	if aerr := m.Ack(context.Background(), err); aerr != nil {
		t.Fatalf("ack %s: %v", m.ID, aerr)
	}
}

func closeSrc(t testing.TB, src poller.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := src.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

var _ poller.Source = (*kafka.Source)(nil)

func kafkaAddr() string { return kafkatest.New().Addr }

// partOf and offsetOf parse "kafka:<topic>/<partition>/<offset>".
func partOf(t testing.TB, m *poller.Message) int {
	t.Helper()
	return int(idField(t, m, 1))
}

func offsetOf(t testing.TB, m *poller.Message) int64 {
	t.Helper()
	return idField(t, m, 2)
}

func idField(t testing.TB, m *poller.Message, i int) int64 {
	t.Helper()
	f := strings.Split(m.ID, "/")
	if len(f) != 3 {
		t.Fatalf("bad id %q", m.ID)
	}
	n, err := strconv.ParseInt(f[i], 10, 64)
	if err != nil {
		t.Fatalf("bad id %q: %v", m.ID, err)
	}
	return n
}
