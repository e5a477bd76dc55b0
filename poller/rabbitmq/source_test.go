package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/rabbitmq"
	"github.com/ferrydev/ferry/poller/rabbitmq/rabbitmqtest"
	"github.com/ferrydev/ferry/wire"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  rabbitmq.Config
		want []string
	}{
		{"Empty", rabbitmq.Config{}, []string{"missing URL", "missing Queue"}},
		{"Prefetch", rabbitmq.Config{URL: rabbitmqtest.URLDefault, Queue: "q", Prefetch: 70000}, []string{"Prefetch 70000"}},
		{"Scheme", rabbitmq.Config{URL: "http://u:hunter22@h/", Queue: "q"}, []string{"bad URL"}},
		{"BadURLHidesPassword", rabbitmq.Config{URL: "amqp://u:hunter22@h:5672/%zz", Queue: "q"}, []string{"bad URL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rabbitmq.New(tc.cfg)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

func TestCloseBeforeConnectAndTwice(t *testing.T) {
	t.Parallel()
	src, err := rabbitmq.New(rabbitmq.Config{URL: rabbitmqtest.URLDefault, Queue: "q"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Read(context.Background()); !errors.Is(err, poller.ErrNotConnected) {
		t.Fatalf("Read before Connect: %v, want ErrNotConnected", err)
	}
	pollertest.Close(t, src)
	pollertest.Close(t, src)
	if err := src.Connect(context.Background()); !errors.Is(err, rabbitmq.ErrClosed) {
		t.Fatalf("Connect after Close: %v, want ErrClosed", err)
	}
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	q := setup(t)

	t.Run("MissingQueue", func(t *testing.T) {
		bad, err := rabbitmq.New(rabbitmq.Config{URL: rabbitmqtest.URLDefault, Queue: q.Name() + "-missing"})
		if err != nil {
			t.Fatal(err)
		}
		err = bad.Connect(context.Background())
		if !errors.Is(err, rabbitmq.ErrQueueNotFound) || !strings.Contains(err.Error(), q.Name()+"-missing") {
			t.Fatalf("Connect to a missing queue: %v, want ErrQueueNotFound naming the queue", err)
		}
		pollertest.Close(t, bad)
	})
	t.Run("NoBrokerHidesPassword", func(t *testing.T) {
		src, err := rabbitmq.New(rabbitmq.Config{URL: "amqp://u:hunter22@127.0.0.1:1/", Queue: "q", DialTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = src.Connect(context.Background())
		if err == nil || strings.Contains(err.Error(), "hunter22") {
			t.Fatalf("Connect to a closed port: %v", err)
		}
		t.Logf("closed port: %v", err)
	})
	t.Run("WrongPasswordHidden", func(t *testing.T) {
		src, err := rabbitmq.New(rabbitmq.Config{URL: "amqp://guest:hunter22@127.0.0.1:5672/", Queue: q.Name()})
		if err != nil {
			t.Fatal(err)
		}
		err = src.Connect(context.Background())
		if err == nil || strings.Contains(err.Error(), "hunter22") {
			t.Fatalf("Connect with a wrong password: %v", err)
		}
		t.Logf("wrong password: %v", err)
	})
}

// (1) Read and ack everything: each message once, in order, backlog 0.
func TestReadAckAll(t *testing.T) {
	t.Parallel()
	const n = 300
	q := setup(t)
	want := produce(t, q, "m", n, map[string]string{
		"Ferry-Hops":   "2",
		"traceparent":  "00-4bf92f3577b34da6a3ce929d0e0736-00f067aa0ba902b7-01",
		"content-type": "text/plain",
		"ferry-key":    "k1",
	})
	src := q.NewSource(t, rabbitmq.Config{})
	pollertest.Connect(t, src, 20*time.Second)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]int{}
	var got []string
	reads := 0
	for len(got) < n {
		msgs, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d messages: %v", len(got), err)
		}
		reads++
		for _, m := range msgs {
			seen[m.ID]++
			got = append(got, string(m.Payload))
			pollertest.Ack(t, m, nil)
		}
	}
	elapsed := time.Since(start)
	t.Logf("read+acked %d messages in %d reads, %s (%.0f msg/s)", n, reads, elapsed, float64(n)/elapsed.Seconds())

	if len(got) != n || len(seen) != n {
		t.Fatalf("got %d messages with %d distinct ids, want %d", len(got), len(seen), n)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d is %q, want %q (queue order broken)", i, got[i], want[i])
		}
	}
	pollertest.WaitBacklog(t, q, "", 0, 20*time.Second)
	pollertest.Close(t, src)
}

func TestMessageFields(t *testing.T) {
	t.Parallel()
	q := setup(t)
	produce(t, q, "f", 1, map[string]string{
		"Ferry-Hops":   "2",
		"traceparent":  "00-4bf92f3577b34da6a3ce929d0e0736-00f067aa0ba902b7-01",
		"content-type": "text/plain",
		"ferry-key":    "k1",
		"x-other":      "v",
	})
	src := q.NewSource(t, rabbitmq.Config{})
	pollertest.Connect(t, src, 20*time.Second)
	m := pollertest.ReadN(t, src, 1, 10*time.Second)[0]
	defer pollertest.Ack(t, m, nil)

	checks := []struct{ field, got, want string }{
		{"ID", m.ID, q.Name() + "-1"},
		{"Scope", m.Scope, "rabbitmq:" + q.Name()},
		{"Key", m.Key, "k1"},
		{"Source", m.Source, "amqp://127.0.0.1:5672/" + q.Name()},
		{"ContentType", m.ContentType, "text/plain"},
		{"Payload", string(m.Payload), "f-0"},
		{"Headers[ferry-hops]", m.Headers[wire.HeaderHops], "2"},
		{"Headers[traceparent]", m.Headers[wire.HeaderTraceParent], "00-4bf92f3577b34da6a3ce929d0e0736-00f067aa0ba902b7-01"},
		{"Headers[content-type]", m.Headers["content-type"], "text/plain"},
		{"Headers[x-other]", m.Headers["x-other"], "v"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if d := time.Since(m.Time); d < 0 || d > time.Minute {
		t.Errorf("Time = %s, want about now", m.Time)
	}
	if strings.Contains(m.Source, "guest") {
		t.Errorf("Source %q carries credentials", m.Source)
	}
}

// (2) Acks out of order with two left unacked: after Close, a new Source
// gets exactly those two back.
func TestUnackedComeBack(t *testing.T) {
	t.Parallel()
	const n = 20
	q := setup(t)
	produce(t, q, "u", n, nil)
	src := q.NewSource(t, rabbitmq.Config{})
	pollertest.Connect(t, src, 20*time.Second)
	msgs := pollertest.ReadN(t, src, n, 10*time.Second)
	left := map[string]bool{"u-3": true, "u-11": true}
	ids := map[string]string{}
	for i := len(msgs) - 1; i >= 0; i-- { // reverse order
		m := msgs[i]
		if left[string(m.Payload)] {
			ids[string(m.Payload)] = m.ID
			continue
		}
		pollertest.Ack(t, m, nil)
	}
	pollertest.Close(t, src)
	if got := q.Backlog(t, ""); got != 2 {
		t.Fatalf("backlog after Close = %d, want 2", got)
	}
	if err := msgs[3].Ack(context.Background(), nil); !errors.Is(err, rabbitmq.ErrStaleDelivery) {
		t.Fatalf("Ack after Close: %v, want ErrStaleDelivery", err)
	}

	src2 := q.NewSource(t, rabbitmq.Config{})
	pollertest.Connect(t, src2, 20*time.Second)
	back := pollertest.ReadN(t, src2, 2, 10*time.Second)
	for i, want := range []string{"u-3", "u-11"} {
		if string(back[i].Payload) != want || back[i].ID != ids[want] {
			t.Errorf("redelivered %d: %q id %s, want %q id %s", i, back[i].Payload, back[i].ID, want, ids[want])
		}
		pollertest.Ack(t, back[i], nil)
	}
	t.Logf("%d read, %d acked out of order, %d redelivered after Close", n, n-2, len(back))
	pollertest.WaitBacklog(t, q, "", 0, 20*time.Second)
}

// (3) A nack requeues: the same message comes again.
func TestNackRedelivers(t *testing.T) {
	t.Parallel()
	q := setup(t)
	produce(t, q, "n", 3, nil)
	src := q.NewSource(t, rabbitmq.Config{})
	pollertest.Connect(t, src, 20*time.Second)
	msgs := pollertest.ReadN(t, src, 3, 10*time.Second)
	pollertest.Ack(t, msgs[0], nil)
	pollertest.Ack(t, msgs[1], errors.New("backend failed"))
	pollertest.Ack(t, msgs[2], nil)
	if err := msgs[1].Ack(context.Background(), nil); !errors.Is(err, rabbitmq.ErrAlreadySettled) {
		t.Fatalf("second Ack: %v, want ErrAlreadySettled", err)
	}
	again := pollertest.ReadN(t, src, 1, 10*time.Second)[0]
	if again.ID != msgs[1].ID || string(again.Payload) != "n-1" {
		t.Fatalf("redelivered %s %q, want %s %q", again.ID, again.Payload, msgs[1].ID, "n-1")
	}
	pollertest.Ack(t, again, nil)
	pollertest.WaitBacklog(t, q, "", 0, 20*time.Second)
	t.Logf("nacked %s came back and was acked", again.ID)
}

// (4) Close right after the acks: nothing acked comes back.
func TestCloseAfterAcksNoDuplicates(t *testing.T) {
	t.Parallel()
	const n = 100
	q := setup(t)
	produce(t, q, "c", n, nil)
	src := q.NewSource(t, rabbitmq.Config{})
	pollertest.Connect(t, src, 20*time.Second)
	pollertest.ReadAck(t, src, n, 20*time.Second)
	pollertest.Close(t, src) // no wait between the last Ack and Close
	if got := q.Backlog(t, ""); got != 0 {
		t.Fatalf("backlog right after Close = %d, want 0 (acks lost on close)", got)
	}
	src2 := q.NewSource(t, rabbitmq.Config{})
	pollertest.Connect(t, src2, 20*time.Second)
	pollertest.ReadNone(t, src2, time.Second)
	t.Logf("%d acked then closed: backlog 0, nothing redelivered", n)
}

// Close while messages sit in the prefetch buffer, never read: they stay
// in the queue.
func TestCloseWithBufferedDeliveries(t *testing.T) {
	t.Parallel()
	const n = 50
	q := setup(t)
	produce(t, q, "b", n, nil)
	src := q.NewSource(t, rabbitmq.Config{Prefetch: 10})
	pollertest.Connect(t, src, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := src.Read(ctx) // one or more; only the first is acked
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	pollertest.Ack(t, msgs[0], nil)
	pollertest.Close(t, src)
	if got := q.Backlog(t, ""); got != n-1 {
		t.Fatalf("backlog after Close = %d, want %d", got, n-1)
	}
}

func TestLag(t *testing.T) {
	t.Parallel()
	q := setup(t)
	produce(t, q, "l", 5, nil)
	src := q.NewSource(t, rabbitmq.Config{Prefetch: 1})
	if _, err := src.Lag(context.Background()); !errors.Is(err, poller.ErrNotConnected) {
		t.Fatalf("Lag before Connect: %v, want ErrNotConnected", err)
	}
	pollertest.Connect(t, src, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		lag, err := src.Lag(context.Background())
		if err != nil {
			t.Fatalf("Lag: %v", err)
		}
		if lag == 4 { // one delivered (prefetch 1), four ready
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lag = %d, want 4", lag)
		}
	}
	for i := range 5 {
		m := pollertest.ReadN(t, src, 1, 10*time.Second)[0]
		if string(m.Payload) != fmt.Sprintf("l-%d", i) {
			t.Fatalf("message %d is %q", i, m.Payload)
		}
		pollertest.Ack(t, m, nil)
	}
}

// The broker cancels the consumer when the queue is deleted: Read reports
// ErrNotConnected and Connect names the missing queue.
func TestQueueDeleted(t *testing.T) {
	t.Parallel()
	q := setup(t)
	src := q.NewSource(t, rabbitmq.Config{})
	pollertest.Connect(t, src, 20*time.Second)
	q.Delete(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := src.Read(ctx); !errors.Is(err, poller.ErrNotConnected) {
		t.Fatalf("Read after queue deletion: %v, want ErrNotConnected", err)
	}
	if err := src.Connect(ctx); !errors.Is(err, rabbitmq.ErrQueueNotFound) {
		t.Fatalf("Connect after queue deletion: %v, want ErrQueueNotFound", err)
	}
}

// Acks that finish out of order wait until every older delivery is
// settled, then leave in one multiple ack, which skips a delivery nacked in
// between (the broker would close the channel on a bad tag).
func TestOutOfOrderAcksCoalesce(t *testing.T) {
	t.Parallel()
	const n = 10
	q := setup(t)
	produce(t, q, "g", n, nil)
	var logs strings.Builder
	src := q.NewSource(t, rabbitmq.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rabbitmq.SetAckPatience(src, time.Hour) // the backlog check is slower than the default
	pollertest.Connect(t, src, 20*time.Second)
	msgs := pollertest.ReadN(t, src, n, 10*time.Second)

	pollertest.Ack(t, msgs[5], errors.New("backend failed"))
	for i := n - 1; i > 0; i-- {
		if i != 5 {
			pollertest.Ack(t, msgs[i], nil)
		}
	}
	// Nothing acked yet: msgs[0] is outstanding; the nacked one is back
	// (delivered again, as prefetch allows).
	if got := q.Backlog(t, ""); got != n {
		t.Fatalf("backlog with the oldest delivery outstanding = %d, want %d (acks must wait)", got, n)
	}
	pollertest.Ack(t, msgs[0], nil)
	again := pollertest.ReadN(t, src, 1, 10*time.Second)[0] // the channel is still open
	if string(again.Payload) != "g-5" {
		t.Fatalf("redelivered %q, want g-5", again.Payload)
	}
	pollertest.Ack(t, again, nil)
	pollertest.WaitBacklog(t, q, "", 0, 20*time.Second)
	pollertest.Close(t, src)
	if want := "multiple_acks=2 single_acks=0 nacks=1"; !strings.Contains(logs.String(), want) {
		t.Fatalf("close log does not say %q:\n%s", want, logs.String())
	}
}
