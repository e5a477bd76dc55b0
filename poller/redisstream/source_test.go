package redisstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/poller/redisstream"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  redisstream.Config
		want string
	}{
		{"MissingURL", redisstream.Config{Stream: "s"}, "URL is required"},
		{"BadURL", redisstream.Config{URL: "http://x", Stream: "s"}, "URL "},
		{"MissingStream", redisstream.Config{URL: "redis://127.0.0.1:6379/0"}, "Stream is required"},
		{"BadStart", redisstream.Config{URL: "redis://127.0.0.1:6379/0", Stream: "s", Start: "middle"}, "Start "},
		{"NegativeCount", redisstream.Config{URL: "redis://127.0.0.1:6379/0", Stream: "s", Count: -1}, "Count "},
		{"TinyClaimIdle", redisstream.Config{URL: "redis://127.0.0.1:6379/0", Stream: "s", ClaimIdle: time.Millisecond}, "ClaimIdle "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisstream.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	s, err := redisstream.New(redisstream.Config{URL: "redis://127.0.0.1:6379/0", Stream: "s"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	cfg := s.Config()
	if cfg.Group != "ferry" || cfg.Count != 100 || cfg.Block != 2*time.Second ||
		cfg.ClaimIdle != 30*time.Second || cfg.ClaimInterval != 15*time.Second ||
		cfg.Start != redisstream.StartEarliest || cfg.Consumer == "" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	// Close before Connect is fine, and idempotent.
	for range 2 {
		if err := s.Close(context.Background()); err != nil {
			t.Fatalf("Close before Connect: %v", err)
		}
	}
	if err := s.Connect(context.Background()); !errors.Is(err, redisstream.ErrClosed) {
		t.Fatalf("Connect after Close: %v, want ErrClosed", err)
	}
}

// TestSource runs the Source contract (poller/pollertest) on Redis
// Streams: one stream, one scope; a new consumer claims exactly the
// pending entries (after ClaimIdle); Redis restarts in place and keeps the
// stream, the group and its pending list (appendonly).
func TestSource(t *testing.T) {
	pollertest.TestSource(t, redisstreamtest.New(), pollertest.Features{
		Broker:        brokers.Redis,
		Parallel:      true,
		ContentType:   true,
		Redelivery:    pollertest.RedeliverUnacked,
		CommitOnClose: true,
		Restart:       pollertest.RestartInPlace,
		CheckID: func(t testing.TB, tp brokers.Topic, m *poller.Message) {
			t.Helper()
			if !strings.HasPrefix(m.ID, "redis:"+tp.Name()+"/") || m.Scope != "redis:"+tp.Name() {
				t.Errorf("bad ID %q / Scope %q", m.ID, m.Scope)
			}
			if want := "redis://127.0.0.1:6379/" + tp.Name(); m.Source != want {
				t.Errorf("Source = %q, want %q", m.Source, want)
			}
			if _, ok := m.Headers[redisstream.FieldData]; ok {
				t.Errorf("the payload field travels as a header too: %v", m.Headers)
			}
		},
	}, func(t testing.TB, tp brokers.Topic, group string) poller.Source {
		return sources.Redis(t, tp.(*redisstreamtest.Topic), group, nil)
	})
}

// The fields redisstreamtest writes are the ones the Source reads.
func TestFieldNames(t *testing.T) {
	if redisstreamtest.FieldData != redisstream.FieldData || redisstreamtest.FieldKey != redisstream.FieldKey {
		t.Fatalf("redisstreamtest writes %q/%q, the Source reads %q/%q",
			redisstreamtest.FieldData, redisstreamtest.FieldKey, redisstream.FieldData, redisstream.FieldKey)
	}
}

// TestLag: before anything is read the group's lag is every entry; once
// all are acked it is 0.
func TestLag(t *testing.T) {
	t.Parallel()
	const n = 20
	tp := setup(t)
	produce(t, tp, "l", n)
	src := sources.Redis(t, tp, "g", nil)
	pollertest.Connect(t, src, 20*time.Second)
	if lag, err := src.Lag(context.Background()); err != nil || lag != n {
		t.Fatalf("Lag before reading = %d, %v; want %d", lag, err, n)
	}
	pollertest.AckAll(t, pollertest.ReadN(t, src, n, 10*time.Second))
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)
	if lag, err := src.Lag(context.Background()); err != nil || lag != 0 {
		t.Fatalf("Lag after acking = %d, %v; want 0", lag, err)
	}
}

// TestEntryWithoutData: an entry without "data" is a JSON object of its
// fields, with content type application/json; its fields are headers too.
func TestEntryWithoutData(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	ctx := context.Background()
	id, err := tp.Client().XAdd(ctx, &redis.XAddArgs{Stream: tp.Name(), Values: []any{"user", "ann", "n", "5"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	src := sources.Redis(t, tp, "g", nil)
	pollertest.Connect(t, src, 20*time.Second)
	m := pollertest.ReadN(t, src, 1, 10*time.Second)[0]
	pollertest.Ack(t, m, nil)
	var fields map[string]string
	if err := json.Unmarshal(m.Payload, &fields); err != nil || fields["user"] != "ann" || fields["n"] != "5" || len(fields) != 2 {
		t.Fatalf("entry without data: payload %s (%v), want a JSON object of its fields", m.Payload, err)
	}
	if m.ContentType != "application/json" || m.ID != "redis:"+tp.Name()+"/"+id || m.Headers["user"] != "ann" {
		t.Fatalf("entry without data: %+v", m)
	}
}

// TestCloseDuringRead: Close while Read blocks in XREADGROUP ends the Read
// promptly with ErrClosed (no goroutine left on the connection).
func TestCloseDuringRead(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	src := sources.Redis(t, tp, "g", func(c *redisstream.Config) { c.Block = 5 * time.Second })
	pollertest.Connect(t, src, 20*time.Second)
	errc := make(chan error, 1)
	go func() {
		_, err := src.Read(context.Background())
		errc <- err
	}()
	// Let Read reach its blocking XREADGROUP: wait until Redis lists it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := tp.Client().Do(context.Background(), "INFO", "clients").Text()
		if err == nil && !strings.Contains(n, "blocked_clients:0") {
			break
		}
		if time.Now().After(deadline) {
			break // another test's blocked client may hide ours; go on anyway
		}
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
	start := time.Now()
	if err := src.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, redisstream.ErrClosed) {
			t.Fatalf("Read after Close: %v, want ErrClosed", err)
		}
		t.Logf("blocked Read ended %v after Close", time.Since(start))
	case <-time.After(3 * time.Second):
		t.Fatal("Read still blocked 3s after Close")
	}
}

// TestDeletedPendingEntry: an entry deleted from the stream while pending
// cannot be delivered; the re-read acknowledges it away and goes on.
func TestDeletedPendingEntry(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	produce(t, tp, "m", 3)
	named := func(c *redisstream.Config) { c.Consumer = "x" }
	a := sources.Redis(t, tp, "g", named)
	pollertest.Connect(t, a, 20*time.Second)
	got := pollertest.ReadN(t, a, 3, 10*time.Second)
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	entryID := strings.TrimPrefix(got[1].ID, "redis:"+tp.Name()+"/")
	if err := tp.Client().XDel(context.Background(), tp.Name(), entryID).Err(); err != nil {
		t.Fatal(err)
	}
	b := sources.Redis(t, tp, "g", named)
	pollertest.Connect(t, b, 20*time.Second)
	back := pollertest.ReadN(t, b, 2, 10*time.Second)
	if want := []string{"m-0", "m-2"}; !slices.Equal(payloads(back), want) {
		t.Fatalf("resumed %v, want %v", payloads(back), want)
	}
	pollertest.AckAll(t, back)
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)
}
