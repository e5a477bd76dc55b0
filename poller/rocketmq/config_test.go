package rocketmq

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/wire"
)

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"ok", Config{NameServers: []string{"127.0.0.1:9876"}, Topic: "t", Group: "g"}, ""},
		{"no name server", Config{Topic: "t", Group: "g"}, "nameservers"},
		{"bad name server", Config{NameServers: []string{"localhost"}, Topic: "t", Group: "g"}, "nameservers[0]"},
		{"no topic", Config{NameServers: []string{"h:1"}, Group: "g"}, "topic: required"},
		{"bad group", Config{NameServers: []string{"h:1"}, Topic: "t", Group: "a b"}, "group:"},
		{"bad start", Config{NameServers: []string{"h:1"}, Topic: "t", Group: "g", Start: "now"}, "start:"},
		{"negative in flight", Config{NameServers: []string{"h:1"}, Topic: "t", Group: "g", InFlight: -1}, "inflight:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("New: %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// TestFlow: the client's window follows InFlight (the trigger's batch size
// × concurrency), never below the defaults nor above the client's limits.
func TestFlow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inFlight int
		orderly  bool
		want     flow
	}{
		{"Default", 0, false, flow{consumeBatch: 16, goroutines: 16, queueCache: 256, maxSpan: 1000, maxRead: 256}},
		{"BelowTheDefault", 8, false, flow{consumeBatch: 16, goroutines: 16, queueCache: 256, maxSpan: 1000, maxRead: 256}},
		{"Batch100Concurrency8", 800, false, flow{consumeBatch: 16, goroutines: 50, queueCache: 800, maxSpan: 1600, maxRead: 800}},
		{"RoundsUpToCallbacks", 1000, false, flow{consumeBatch: 16, goroutines: 63, queueCache: 1000, maxSpan: 2000, maxRead: 1000}},
		{"Capped", 10000 * 100, false, flow{consumeBatch: 16, goroutines: 4096, queueCache: 65535, maxSpan: 65535, maxRead: 65535}},
		{"OrderlyDefault", 0, true, flow{consumeBatch: 16, goroutines: 16, queueCache: 128, maxSpan: 1000, maxRead: 256}},
		{"OrderlyBatch1", 1, true, flow{consumeBatch: 16, goroutines: 16, queueCache: 128, maxSpan: 1000, maxRead: 256}},
		{"OrderlyBatch100", 100, true, flow{consumeBatch: 100, goroutines: 16, queueCache: 200, maxSpan: 1000, maxRead: 256}},
		{"OrderlyBatch5000", 5000, true, flow{consumeBatch: 1024, goroutines: 313, queueCache: 2048, maxSpan: 4096, maxRead: 5000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{InFlight: tc.inFlight, Orderly: tc.orderly}
			if got := c.flow(); got != tc.want {
				t.Fatalf("flow() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestSequencerRestoresQueueOrder: batches of one queue that reach the
// callback out of order are passed on in offset order; a gap that never
// fills is given up after the window.
func TestSequencerRestoresQueueOrder(t *testing.T) {
	out := make(chan []*poller.Message, 10)
	s := newSequencer(func(m []*poller.Message) { out <- m }, 50*time.Millisecond)
	defer s.stop()
	mq := primitive.MessageQueue{Topic: "t", BrokerName: "b", QueueId: 0}
	batch := func(id string) []*poller.Message { return []*poller.Message{{ID: id}} }

	s.add(mq, 0, 15, batch("0-15"))
	s.add(mq, 32, 47, batch("32-47")) // ahead of 16-31: held
	s.add(mq, 16, 31, batch("16-31"))
	s.add(mq, 64, 79, batch("64-79")) // 48-63 never comes: released after the window
	for _, want := range []string{"0-15", "16-31", "32-47", "64-79"} {
		select {
		case got := <-out:
			if got[0].ID != want {
				t.Fatalf("got batch %s, want %s", got[0].ID, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("batch %s not passed on", want)
		}
	}
}

func TestMessageIDAndHeaders(t *testing.T) {
	mq := primitive.MessageQueue{Topic: "orders", BrokerName: "broker-a", QueueId: 3}
	m := &primitive.MessageExt{QueueOffset: 42, BornTimestamp: 1700000000000}
	m.Topic = "orders"
	m.Body = []byte("x")
	m.WithProperties(map[string]string{"KEYS": "k1", "UNIQ_KEY": "u", "user": "v", wire.HeaderHops: "1"})
	got := toMessage("rocketmq://h:1/orders", mq, m)
	if got.ID != "rocketmq:orders/broker-a/3/42" || got.Scope != "rocketmq:orders/broker-a/3" || got.Key != "k1" {
		t.Fatalf("id %q scope %q key %q", got.ID, got.Scope, got.Key)
	}
	if len(got.Headers) != 2 || got.Headers["user"] != "v" || got.Headers[wire.HeaderHops] != "1" {
		t.Fatalf("headers %v, want only the user properties", got.Headers)
	}
	if !got.Time.Equal(time.UnixMilli(1700000000000)) {
		t.Fatalf("time %v", got.Time)
	}
	retry := primitive.MessageQueue{Topic: "%RETRY%g", BrokerName: "broker-a", QueueId: 0}
	m.WithProperty("ORIGIN_MESSAGE_ID", "AC11000100002A9F0000000000000042")
	if id := messageID(retry, m); id != "rocketmq:orders/retry/AC11000100002A9F0000000000000042" {
		t.Fatalf("retry id %q", id)
	}
}
