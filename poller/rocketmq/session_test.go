package rocketmq

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
)

// fakeClient stands in for the push consumer: it calls the session's
// callback like the client does (one goroutine per batch) and records the
// offset the client would commit for each ConsumeSuccess, unless shut down.
type fakeClient struct {
	sess *session

	mu      sync.Mutex
	commit  map[primitive.MessageQueue]int64
	down    bool
	results []consumer.ConsumeResult
	wg      sync.WaitGroup
}

func newFake(t *testing.T, orderly bool) (*fakeClient, *Source) {
	f := &fakeClient{commit: map[primitive.MessageQueue]int64{}}
	f.sess = newSession("rocketmq://h:1/t", slog.New(slog.DiscardHandler), orderly)
	f.sess.shutdown = func() error {
		f.mu.Lock()
		f.down = true
		f.mu.Unlock()
		return nil
	}
	f.sess.progress = func() map[primitive.MessageQueue]mqProgress {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := map[primitive.MessageQueue]mqProgress{}
		for mq, c := range f.commit {
			out[mq] = mqProgress{commit: c}
		}
		return out
	}
	src := &Source{uri: f.sess.source, sess: f.sess}
	t.Cleanup(func() {
		_ = src.Close(context.Background()) // releases callbacks left waiting by a failed test
		f.wg.Wait()
	})
	return f, src
}

// deliver runs the callback for offsets first..last of queue q.
func (f *fakeClient) deliver(q int, first, last int64) {
	mq := primitive.MessageQueue{Topic: "t", BrokerName: "b", QueueId: q}
	var msgs []*primitive.MessageExt
	for off := first; off <= last; off++ {
		m := &primitive.MessageExt{QueueOffset: off}
		m.Topic, m.Queue = "t", &mq
		msgs = append(msgs, m)
	}
	f.mu.Lock()
	if _, ok := f.commit[mq]; !ok {
		f.commit[mq] = first
	}
	f.mu.Unlock()
	f.wg.Go(func() {
		res, _ := f.sess.consume(context.Background(), msgs...)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.results = append(f.results, res)
		if res == consumer.ConsumeSuccess && !f.down {
			f.commit[mq] = max(f.commit[mq], last+1) // batches here settle in order
		}
	})
}

// TestSessionSettlesAndCloses drives the hand-off under -race: batches of
// two queues arrive concurrently and out of order, are read in order per
// queue, acked out of order, one nacked and redelivered; Close waits for
// the settled offsets, shuts the client down, and only then releases the
// callback still waiting, with a failure the client ignores.
func TestSessionSettlesAndCloses(t *testing.T) {
	f, src := newFake(t, false)
	f.deliver(0, 0, 15)
	got := pollertest.ReadN(t, src, 16, 5*time.Second)
	f.deliver(0, 32, 47) // ahead of 16-31: held back until it comes
	f.deliver(1, 0, 15)
	f.deliver(0, 16, 31)
	got = append(got, pollertest.ReadN(t, src, 48, 5*time.Second)...)
	last := map[string]int64{}
	for _, m := range got {
		o := offsetFromID(t, m.ID)
		if prev, ok := last[m.Scope]; ok && o != prev+1 {
			t.Fatalf("scope %s: offset %d after %d", m.Scope, o, prev)
		}
		last[m.Scope] = o
	}
	// Ack out of order; nack one message of queue 0's second batch.
	var nacked *poller.Message
	for i := len(got) - 1; i >= 0; i-- {
		m := got[i]
		err := error(nil)
		if m.ID == "rocketmq:t/b/0/20" {
			err, nacked = errors.New("lost"), m
		}
		if aerr := m.Ack(context.Background(), err); aerr != nil {
			t.Fatal(aerr)
		}
	}
	again := pollertest.ReadN(t, src, 1, 5*time.Second)
	if again[0].ID != nacked.ID {
		t.Fatalf("redelivered %s, want %s", again[0].ID, nacked.ID)
	}
	if err := again[0].Ack(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := again[0].Ack(context.Background(), nil); err == nil {
		t.Fatal("a second Ack of one message succeeded")
	}

	f.deliver(1, 16, 31) // read, never acked
	pending := pollertest.ReadN(t, src, 16, 5*time.Second)
	if err := src.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	q0 := primitive.MessageQueue{Topic: "t", BrokerName: "b", QueueId: 0}
	q1 := primitive.MessageQueue{Topic: "t", BrokerName: "b", QueueId: 1}
	if f.commit[q0] != 48 || f.commit[q1] != 16 {
		t.Fatalf("commits at shutdown %v, want queue 0 at 48 and queue 1 at 16", f.commit)
	}
	fails := 0
	for _, r := range f.results {
		if r != consumer.ConsumeSuccess {
			fails++
		}
	}
	if fails != 1 {
		t.Fatalf("results %v: want one failure (the unacked batch, after shutdown)", f.results)
	}
	if err := pending[0].Ack(context.Background(), nil); !errors.Is(err, errSessionEnded) {
		t.Fatalf("Ack after Close: %v, want errSessionEnded", err)
	}
	if _, err := src.Read(context.Background()); !errors.Is(err, poller.ErrNotConnected) {
		t.Fatalf("Read after Close: %v, want ErrNotConnected", err)
	}
	if err := src.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestReadTakesTheWindow: one Read hands the poller up to InFlight
// messages (at least 256), so that its workers' batches can fill at once.
func TestReadTakesTheWindow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inFlight int
		want     int
	}{
		{"Default", 0, 256},
		{"Batch100Concurrency8", 800, 800},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, src := newFake(t, false)
			src.cfg.InFlight = tc.inFlight
			const queues, perQueue = 4, 320 // 1280 messages, 20 callbacks of 16 per queue
			for q := range queues {
				for first := int64(0); first < perQueue; first += consumeBatch {
					f.deliver(q, first, first+consumeBatch-1)
				}
			}
			waitInbox(t, f.sess.in, queues*perQueue)
			msgs, err := src.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != tc.want {
				t.Fatalf("Read returned %d messages, want %d", len(msgs), tc.want)
			}
		})
	}
}

// waitInbox waits until in holds n messages.
func waitInbox(t *testing.T, in *inbox, n int) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for {
		in.mu.Lock()
		got := len(in.items)
		in.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("inbox holds %d messages, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func offsetFromID(t *testing.T, id string) int64 {
	t.Helper()
	off, err := strconv.ParseInt(id[strings.LastIndexByte(id, '/')+1:], 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return off
}
