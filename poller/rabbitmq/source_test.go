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
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/poller/rabbitmq"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/rabbitmqtest"
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

// TestSource runs the Source contract (poller/pollertest) on RabbitMQ:
// one queue, one scope; requeued deliveries come back exactly; a restart
// kills the channel, so the held deliveries' acks are refused.
func TestSource(t *testing.T) {
	pollertest.TestSource(t, rabbitmqtest.New(), pollertest.Features{
		Broker:           brokers.RabbitMQ,
		Parallel:         true,
		ContentType:      true,
		Redelivery:       pollertest.RedeliverUnacked,
		CommitOnClose:    true,
		Restart:          pollertest.RestartInPlace,
		ReportsLoss:      true,
		RefusesStaleAcks: true,
		CheckID: func(t testing.TB, tp brokers.Topic, m *poller.Message) {
			t.Helper()
			if !strings.HasPrefix(m.ID, tp.Name()+"-") || m.Scope != "rabbitmq:"+tp.Name() {
				t.Errorf("bad ID %q / Scope %q", m.ID, m.Scope)
			}
			if want := "amqp://127.0.0.1:5672/" + tp.Name(); m.Source != want {
				t.Errorf("Source = %q, want %q", m.Source, want)
			}
		},
	}, func(t testing.TB, tp brokers.Topic, _ string) poller.Source {
		return sources.RabbitMQ(t, tp.(*rabbitmqtest.Topic), rabbitmq.Config{})
	})
}

// The key header rabbitmqtest produces is the one the Source reads.
func TestHeaderKey(t *testing.T) {
	if rabbitmqtest.HeaderKey != rabbitmq.HeaderKey {
		t.Fatalf("rabbitmqtest.HeaderKey %q, rabbitmq.HeaderKey %q", rabbitmqtest.HeaderKey, rabbitmq.HeaderKey)
	}
}

// Acks of a closed Source are refused with ErrStaleDelivery, and a second
// ack of a delivery with ErrAlreadySettled; the unacked delivery is back
// in the queue.
func TestAckAfterCloseAndTwice(t *testing.T) {
	t.Parallel()
	q := setup(t)
	produce(t, q, "a", 2, nil)
	src := sources.RabbitMQ(t, q, rabbitmq.Config{})
	pollertest.Connect(t, src, 20*time.Second)
	msgs := pollertest.ReadN(t, src, 2, 10*time.Second)
	pollertest.Ack(t, msgs[0], nil)
	if err := msgs[0].Ack(context.Background(), nil); !errors.Is(err, rabbitmq.ErrAlreadySettled) {
		t.Fatalf("second Ack: %v, want ErrAlreadySettled", err)
	}
	pollertest.Close(t, src)
	if err := msgs[1].Ack(context.Background(), nil); !errors.Is(err, rabbitmq.ErrStaleDelivery) {
		t.Fatalf("Ack after Close: %v, want ErrStaleDelivery", err)
	}
	if got := q.Backlog(t, ""); got != 1 {
		t.Fatalf("backlog after Close = %d, want 1", got)
	}
}

// Header names are matched without regard to case: a "Ferry-Hops" header
// is the hop count.
func TestHeaderNamesFolded(t *testing.T) {
	t.Parallel()
	q := setup(t)
	produce(t, q, "h", 1, map[string]string{"Ferry-Hops": "2", "TraceParent": "00-4bf92f3577b34da6a3ce929d0e0736ab-00f067aa0ba902b7-01"})
	src := sources.RabbitMQ(t, q, rabbitmq.Config{})
	pollertest.Connect(t, src, 20*time.Second)
	m := pollertest.ReadN(t, src, 1, 10*time.Second)[0]
	pollertest.Ack(t, m, nil)
	if m.Headers[wire.HeaderHops] != "2" || m.Headers[wire.HeaderTraceParent] == "" {
		t.Fatalf("headers %v: want %s and %s found whatever their case", m.Headers, wire.HeaderHops, wire.HeaderTraceParent)
	}
}

// Close while messages sit in the prefetch buffer, never read: they stay
// in the queue.
func TestCloseWithBufferedDeliveries(t *testing.T) {
	t.Parallel()
	const n = 50
	q := setup(t)
	produce(t, q, "b", n, nil)
	src := sources.RabbitMQ(t, q, rabbitmq.Config{Prefetch: 10})
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
	src := sources.RabbitMQ(t, q, rabbitmq.Config{Prefetch: 1})
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
	src := sources.RabbitMQ(t, q, rabbitmq.Config{})
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
	src := sources.RabbitMQ(t, q, rabbitmq.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
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
