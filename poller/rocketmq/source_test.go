//go:build !race

// The tests against the real broker run in the non-race build: the client
// library (rocketmq-client-go v2.1.2) races in its own goroutines, which
// the race detector reports as a test failure whatever the test does:
// pushConsumer.messageQueueChanged writes SubscriptionData.SubVersion while
// the route updater clones it (consumer/push_consumer.go:505 vs
// internal/model.go:70), and the orderly consumer polls its process queue
// without the lock (consumer/process_queue.go:313). The adapter's own
// concurrency is covered under -race by session_test.go, with a fake client.
// Run: go test -count=1 -p 1 ./poller/rocketmq/...

package rocketmq_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/poller/rocketmq"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/rocketmqtest"
	"github.com/ferrydev/ferry/wire"
)

// deadline bounds each phase: push consumer start-up and rebalancing take
// seconds in RocketMQ.
const deadline = 60 * time.Second

func newTopic(t *testing.T, scopes int) *rocketmqtest.Topic {
	t.Helper()
	return sources.RocketMQBroker().NewTopic(t, scopes).(*rocketmqtest.Topic)
}

// produce sends n messages numbered from first, keyed k0..k7.
func produce(t *testing.T, tp *rocketmqtest.Topic, first, n int) {
	t.Helper()
	tp.Produce(t, pollertest.SeqMsgs(first, n, "2"))
}

// offsetOf is the queue offset at the end of a message id.
func offsetOf(t *testing.T, id string) int64 {
	t.Helper()
	off, err := strconv.ParseInt(id[strings.LastIndexByte(id, '/')+1:], 10, 64)
	if err != nil {
		t.Fatalf("id %q does not end with an offset: %v", id, err)
	}
	return off
}

// order checks that each scope's offsets and each key's sequence numbers
// only grow.
type order struct {
	t       *testing.T
	lastOff map[string]int64
	lastSeq map[string]int
}

func newOrder(t *testing.T) *order {
	return &order{t: t, lastOff: map[string]int64{}, lastSeq: map[string]int{}}
}

func (o *order) see(m *poller.Message) {
	o.t.Helper()
	off := offsetOf(o.t, m.ID)
	if last, ok := o.lastOff[m.Scope]; ok && off <= last {
		o.t.Errorf("scope %s: offset %d read after %d", m.Scope, off, last)
	}
	o.lastOff[m.Scope] = off
	seq, _ := strconv.Atoi(m.Headers["seq"])
	if last, ok := o.lastSeq[m.Key]; ok && seq <= last {
		o.t.Errorf("key %s: seq %d read after %d", m.Key, seq, last)
	}
	o.lastSeq[m.Key] = seq
}

// TestSource runs the Source contract (poller/pollertest) on RocketMQ
// with concurrent consumption: four queues, commit positions persisted
// asynchronously, and a client that rides over a broker restart by
// itself. The orderly consumer's reads and nacks are checked below.
func TestSource(t *testing.T) {
	pollertest.TestSource(t, sources.RocketMQBroker(), pollertest.Features{
		Broker:     brokers.RocketMQ,
		Scopes:     4,
		Within:     deadline,
		Redelivery: pollertest.RedeliverFromCommit,
		Restart:    pollertest.RestartInPlace,
		CheckID: func(t testing.TB, tp brokers.Topic, m *poller.Message) {
			t.Helper()
			if !strings.HasPrefix(m.Scope, "rocketmq:"+tp.Name()+"/") || !strings.HasPrefix(m.ID, m.Scope+"/") {
				t.Errorf("bad ID %q / Scope %q", m.ID, m.Scope)
			}
			if want := "rocketmq://" + brokers.Addr(brokers.RocketMQ) + "/" + tp.Name(); m.Source != want {
				t.Errorf("Source = %q, want %q", m.Source, want)
			}
		},
	}, func(t testing.TB, tp brokers.Topic, group string) poller.Source {
		rtp := tp.(*rocketmqtest.Topic)
		return sources.RocketMQ(t, rtp, sources.RocketMQConfig(rtp, group))
	})
}

func TestReadAckAllOrderly(t *testing.T) { readAckAll(t, true) }

// readAckAll reads and acks 300 messages of a 4-queue topic: each is read
// once, in order per queue and per key, and the backlog reaches 0.
func readAckAll(t *testing.T, orderly bool) {
	const n = 300
	tp := newTopic(t, 4)
	produce(t, tp, 0, n)
	group := rocketmqtest.UniqueName(t, "g")
	cfg := sources.RocketMQConfig(tp, group)
	cfg.Orderly = orderly
	src := sources.RocketMQ(t, tp, cfg)
	began := time.Now()
	pollertest.Connect(t, src, deadline)

	seen := map[string]int{}
	ord := newOrder(t)
	var start time.Time
	pollertest.ReadUntil(t, src, deadline, func(m *poller.Message) {
		if start.IsZero() {
			start = time.Now()
		}
		seen[m.ID]++
		if seen[m.ID] > 1 {
			t.Errorf("message %s read %d times", m.ID, seen[m.ID])
		}
		ord.see(m)
		if want := "rocketmq://" + brokers.Addr("rocketmq") + "/" + tp.Name(); m.Source != want {
			t.Errorf("Source = %q, want %q", m.Source, want)
		}
		if m.Headers[wire.HeaderHops] != "2" || m.Key == "" || m.Time.IsZero() {
			t.Errorf("message %s: headers %v, key %q, time %v", m.ID, m.Headers, m.Key, m.Time)
		}
		pollertest.Ack(t, m, nil)
	}, func() bool { return len(seen) == n })
	elapsed := time.Since(start)
	t.Logf("first message %v after Connect (group join, rebalance); then read and acked %d messages in %v (%.0f msg/s) over %d scopes",
		start.Sub(began).Round(time.Millisecond), n, elapsed.Round(time.Millisecond), n/elapsed.Seconds(), len(ord.lastOff))
	if len(ord.lastOff) != 4 {
		t.Errorf("messages came from %d scopes, want 4", len(ord.lastOff))
	}

	pollertest.WaitBacklog(t, tp, group, 0, deadline)
	lag, err := src.Lag(context.Background())
	if err != nil || lag != 0 {
		t.Errorf("Lag = %d, %v; want 0", lag, err)
	}
	if parts, err := src.PartitionLag(context.Background()); err != nil || len(parts) != 4 {
		t.Errorf("PartitionLag = %v, %v; want 4 queues", parts, err)
	}
	pollertest.Close(t, src)
}

// TestInFlightWindow: with InFlight 800 (batch 100 × concurrency 8) the
// client hands over more than the default 256 messages that are not
// settled yet, at most 800 (callbacks may carry fewer than 16 messages, so
// the window is an upper bound), and the rest once they are settled.
func TestInFlightWindow(t *testing.T) {
	const n, window = 1200, 800
	tp := newTopic(t, 4)
	produce(t, tp, 0, n)
	group := rocketmqtest.UniqueName(t, "g")
	cfg := sources.RocketMQConfig(tp, group)
	cfg.InFlight = window
	src := sources.RocketMQ(t, tp, cfg)
	pollertest.Connect(t, src, deadline)

	// Hold everything handed over, until nothing more comes for 1 s.
	var held []*poller.Message
	for end := time.Now().Add(deadline); time.Now().Before(end); {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		msgs, err := src.Read(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && len(held) > 0 {
			break
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Read after %d messages: %v", len(held), err)
		}
		held = append(held, msgs...)
	}
	if len(held) <= rocketmq.DefaultInFlight || len(held) > window {
		t.Fatalf("held %d unsettled messages, want more than %d and at most %d", len(held), rocketmq.DefaultInFlight, window)
	}
	for _, m := range held {
		pollertest.Ack(t, m, nil)
	}
	rest := pollertest.ReadAck(t, src, n-len(held), deadline)
	t.Logf("held %d unsettled messages, then read the other %d once they were acked", len(held), len(rest))
	pollertest.WaitBacklog(t, tp, group, 0, deadline)
}

func TestNackRedeliversOrderly(t *testing.T) { nackRedelivers(t, true) }

// nackRedelivers nacks one message once: it is read again, with the same
// id, and everything is committed in the end.
func nackRedelivers(t *testing.T, orderly bool) {
	const n, nacked = 10, 3
	tp := newTopic(t, 1)
	produce(t, tp, 0, n)
	group := rocketmqtest.UniqueName(t, "g")
	cfg := sources.RocketMQConfig(tp, group)
	cfg.Orderly = orderly
	src := sources.RocketMQ(t, tp, cfg)
	pollertest.Connect(t, src, deadline)

	reads := map[string]int{}
	var nackedID string
	pollertest.ReadUntil(t, src, deadline, func(m *poller.Message) {
		reads[m.ID]++
		if offsetOf(t, m.ID) == nacked && reads[m.ID] == 1 {
			nackedID = m.ID
			pollertest.Ack(t, m, errors.New("handler lost"))
			return
		}
		pollertest.Ack(t, m, nil)
	}, func() bool { return len(reads) == n && nackedID != "" && reads[nackedID] == 2 })
	t.Logf("nacked %s, read it %d times; %d distinct messages", nackedID, reads[nackedID], len(reads))
	pollertest.WaitBacklog(t, tp, group, 0, deadline)
}

// TestTwoSourcesShareAGroup: two Sources in one group split a 4-queue
// topic; when one closes, the other takes its queues and nothing is lost.
func TestTwoSourcesShareAGroup(t *testing.T) {
	const n = 200
	tp := newTopic(t, 4)
	group := rocketmqtest.UniqueName(t, "g")
	a := sources.RocketMQ(t, tp, sources.RocketMQConfig(tp, group))
	b := sources.RocketMQ(t, tp, sources.RocketMQConfig(tp, group))
	pollertest.Connect(t, a, deadline)
	pollertest.Connect(t, b, deadline)
	produce(t, tp, 0, n/2)

	seen := map[string]int{}
	scopes := map[*rocketmq.Source]map[string]bool{a: {}, b: {}}
	handle := func(src *rocketmq.Source) func(*poller.Message) {
		return func(m *poller.Message) {
			seen[m.Headers["seq"]]++
			scopes[src][m.Scope] = true
			pollertest.Ack(t, m, nil)
		}
	}
	// Both read (in turns, on this goroutine) until the first half is in.
	end := time.Now().Add(deadline)
	for len(seen) < n/2 {
		if time.Now().After(end) {
			t.Fatalf("only %d of %d messages read", len(seen), n/2)
		}
		for _, src := range []*rocketmq.Source{a, b} {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			msgs, err := src.Read(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Read: %v", err)
			}
			for _, m := range msgs {
				handle(src)(m)
			}
		}
	}
	t.Logf("before Close: A read scopes %d, B read scopes %d", len(scopes[a]), len(scopes[b]))
	pollertest.Close(t, a)
	produce(t, tp, n/2, n/2)
	pollertest.ReadUntil(t, b, deadline, handle(b), func() bool { return len(seen) == n })
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("after A closed, B read %d scopes; %d distinct messages, %d duplicates, lost 0", len(scopes[b]), len(seen), dups)
	if len(scopes[b]) != 4 {
		t.Errorf("B read %d scopes, want all 4", len(scopes[b]))
	}
	pollertest.WaitBacklog(t, tp, group, 0, deadline)
}
