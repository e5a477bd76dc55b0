package redisstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/redisstream"
	"github.com/ferrydev/ferry/poller/redisstream/redisstreamtest"
	"github.com/ferrydev/ferry/wire"
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

// TestReadAckAll: 300 entries read and acked, each once, in stream order;
// the group's backlog and lag reach 0.
func TestReadAckAll(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	const n = 300
	want := produce(t, tp, "m", n)
	src := tp.NewSource(t, "g", nil)
	pollertest.Connect(t, src, 20*time.Second)
	if lag, err := src.Lag(context.Background()); err != nil || lag != n {
		t.Fatalf("Lag before reading = %d, %v; want %d", lag, err, n)
	}

	start := time.Now()
	got := pollertest.ReadN(t, src, n, 30*time.Second)
	pollertest.AckAll(t, got)
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)
	elapsed := time.Since(start)
	t.Logf("read+acked %d entries in %v (%.0f msg/s, backlog 0 confirmed by Redis)", n, elapsed, float64(n)/elapsed.Seconds())

	if diff := slices.Compare(payloads(got), want); diff != 0 {
		t.Fatalf("order or content differs:\n got %v\nwant %v", payloads(got), want)
	}
	ids := map[string]bool{}
	for i, m := range got {
		if ids[m.ID] {
			t.Fatalf("duplicate ID %s", m.ID)
		}
		ids[m.ID] = true
		if !strings.HasPrefix(m.ID, "redis:"+tp.Name()+"/") || m.Scope != "redis:"+tp.Name() {
			t.Fatalf("message %d: ID %q, Scope %q", i, m.ID, m.Scope)
		}
		if wantKey := fmt.Sprintf("k%d", i%3); m.Key != wantKey {
			t.Fatalf("message %d: key %q, want %q", i, m.Key, wantKey)
		}
		if m.Headers[wire.HeaderHops] != "2" {
			t.Fatalf("message %d: headers %v lack %s", i, m.Headers, wire.HeaderHops)
		}
	}
	if lag, err := src.Lag(context.Background()); err != nil || lag != 0 {
		t.Fatalf("Lag after acking = %d, %v; want 0", lag, err)
	}
}

// TestMessageFields: payload, key, content type, headers, ID, time and
// source; an entry without "data" is a JSON object of its fields.
func TestMessageFields(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	ctx := context.Background()
	id1, err := tp.Client().XAdd(ctx, &redis.XAddArgs{Stream: tp.Name(), Values: []any{
		"data", `{"a":1}`, "key", "order-7", "content-type", "application/json",
		wire.HeaderHops, "3", wire.HeaderTraceParent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	id2, err := tp.Client().XAdd(ctx, &redis.XAddArgs{Stream: tp.Name(), Values: []any{"user", "ann", "n", "5"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	src := tp.NewSource(t, "g", nil)
	pollertest.Connect(t, src, 20*time.Second)
	got := pollertest.ReadN(t, src, 2, 10*time.Second)
	pollertest.AckAll(t, got)

	m := got[0]
	if m.ID != "redis:"+tp.Name()+"/"+id1 || m.Scope != "redis:"+tp.Name() ||
		m.Source != "redis://127.0.0.1:6379/"+tp.Name() || string(m.Payload) != `{"a":1}` ||
		m.Key != "order-7" || m.ContentType != "application/json" ||
		m.Headers[wire.HeaderHops] != "3" || m.Headers[wire.HeaderTraceParent] == "" || m.Headers["key"] != "order-7" {
		t.Fatalf("first message: %+v", m)
	}
	if _, ok := m.Headers["data"]; ok {
		t.Fatalf("the payload field travels as a header too: %v", m.Headers)
	}
	if d := time.Since(m.Time); d < 0 || d > time.Minute {
		t.Fatalf("Time %v is not the entry's time", m.Time)
	}

	m = got[1]
	var fields map[string]string
	if err := json.Unmarshal(m.Payload, &fields); err != nil || fields["user"] != "ann" || fields["n"] != "5" || len(fields) != 2 {
		t.Fatalf("entry without data: payload %s (%v), want a JSON object of its fields", m.Payload, err)
	}
	if m.ContentType != "application/json" || m.ID != "redis:"+tp.Name()+"/"+id2 || m.Headers["user"] != "ann" {
		t.Fatalf("second message: %+v", m)
	}
	if err := m.Ack(ctx, nil); err == nil {
		t.Fatal("a second Ack succeeded")
	}
}

// TestUnackedComeBack: acks out of order, one left unacked; after Close a
// new Source on the group gets exactly the unacked entries (claimed after
// ClaimIdle, since it runs under a new consumer name as a restarted process
// does), and nothing else.
func TestUnackedComeBack(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	const n = 40
	produce(t, tp, "m", n)
	src := tp.NewSource(t, "g", nil)
	pollertest.Connect(t, src, 20*time.Second)
	got := pollertest.ReadN(t, src, n, 20*time.Second)

	skip := map[int]bool{7: true, 23: true}
	order := rand.Perm(n)
	for _, i := range order {
		if !skip[i] {
			if err := got[i].Ack(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	pollertest.WaitBacklog(t, tp, "g", int64(len(skip)), 10*time.Second)
	if err := src.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if tp.Backlog(t, "g") != int64(len(skip)) {
		t.Fatalf("backlog after Close = %d, want %d", tp.Backlog(t, "g"), len(skip))
	}

	start := time.Now()
	src2 := tp.NewSource(t, "g", nil)
	pollertest.Connect(t, src2, 20*time.Second)
	back := pollertest.ReadN(t, src2, len(skip), 20*time.Second)
	t.Logf("%d unacked entries came back after %v (ClaimIdle %v)", len(back), time.Since(start), src2.Config().ClaimIdle)
	if want := []string{"m-7", "m-23"}; !slices.Equal(payloads(back), want) {
		t.Fatalf("came back: %v, want %v", payloads(back), want)
	}
	if back[0].ID != got[7].ID || back[1].ID != got[23].ID {
		t.Fatalf("IDs changed across redelivery: %s %s vs %s %s", back[0].ID, back[1].ID, got[7].ID, got[23].ID)
	}
	pollertest.AckAll(t, back)
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)
	pollertest.ReadNone(t, src2, src2.Config().ClaimIdle+time.Second)
}

// TestNackRedelivered: a nacked entry comes back to the same Source, with
// the same ID, while the acked ones do not.
func TestNackRedelivered(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	produce(t, tp, "m", 5)
	src := tp.NewSource(t, "g", nil)
	pollertest.Connect(t, src, 20*time.Second)
	got := pollertest.ReadN(t, src, 5, 10*time.Second)
	for i, m := range got {
		var err error
		if i == 2 {
			err = errors.New("function failed")
		}
		if aerr := m.Ack(context.Background(), err); aerr != nil {
			t.Fatal(aerr)
		}
	}
	start := time.Now()
	again := pollertest.ReadN(t, src, 1, 10*time.Second)
	t.Logf("nacked entry redelivered after %v", time.Since(start))
	if string(again[0].Payload) != "m-2" || again[0].ID != got[2].ID {
		t.Fatalf("redelivered %s (%s), want m-2 (%s)", again[0].Payload, again[0].ID, got[2].ID)
	}
	// Nack once more: it comes back again.
	if err := again[0].Ack(context.Background(), errors.New("again")); err != nil {
		t.Fatal(err)
	}
	again = pollertest.ReadN(t, src, 1, 10*time.Second)
	if string(again[0].Payload) != "m-2" {
		t.Fatalf("second redelivery: %s", again[0].Payload)
	}
	pollertest.AckAll(t, again)
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)
	pollertest.ReadNone(t, src, time.Second)
}

// TestCloseAfterAcksNoDuplicates: Close right after the acks flushes the
// XACKs: a new Source on the group sees none of the acked entries.
func TestCloseAfterAcksNoDuplicates(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	const n = 100
	produce(t, tp, "m", n)
	src := tp.NewSource(t, "g", nil)
	pollertest.Connect(t, src, 20*time.Second)
	pollertest.AckAll(t, pollertest.ReadN(t, src, n, 20*time.Second))
	if err := src.Close(context.Background()); err != nil { // no wait: Close must flush
		t.Fatalf("Close: %v", err)
	}
	if b := tp.Backlog(t, "g"); b != 0 {
		t.Fatalf("backlog right after Close = %d, want 0", b)
	}
	if err := got0Ack(src); err == nil {
		t.Fatal("Read after Close succeeded")
	}
	src2 := tp.NewSource(t, "g", nil)
	pollertest.Connect(t, src2, 20*time.Second)
	pollertest.ReadNone(t, src2, redisstreamtest.ClaimIdle+time.Second)
}

// got0Ack reads from a closed source.
func got0Ack(src *redisstream.Source) error {
	_, err := src.Read(context.Background())
	return err
}

// TestCloseDuringRead: Close while Read blocks in XREADGROUP ends the Read
// promptly with ErrClosed (no goroutine left on the connection).
func TestCloseDuringRead(t *testing.T) {
	t.Parallel()
	tp := setup(t)
	src := tp.NewSource(t, "g", func(c *redisstream.Config) { c.Block = 5 * time.Second })
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
	a := tp.NewSource(t, "g", named)
	pollertest.Connect(t, a, 20*time.Second)
	got := pollertest.ReadN(t, a, 3, 10*time.Second)
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	entryID := strings.TrimPrefix(got[1].ID, "redis:"+tp.Name()+"/")
	if err := tp.Client().XDel(context.Background(), tp.Name(), entryID).Err(); err != nil {
		t.Fatal(err)
	}
	b := tp.NewSource(t, "g", named)
	pollertest.Connect(t, b, 20*time.Second)
	back := pollertest.ReadN(t, b, 2, 10*time.Second)
	if want := []string{"m-0", "m-2"}; !slices.Equal(payloads(back), want) {
		t.Fatalf("resumed %v, want %v", payloads(back), want)
	}
	pollertest.AckAll(t, back)
	pollertest.WaitBacklog(t, tp, "g", 0, 10*time.Second)
}
