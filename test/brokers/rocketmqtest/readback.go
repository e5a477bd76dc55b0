package rocketmqtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/ferrydev/ferry/test/brokers"
)

var _ brokers.Reader = (*Topic)(nil)

// ReadBack reads the topic with a push consumer of the client library in a
// group of its own (from the first offset) until it has read want
// distinct messages (by message id), shuts it down and returns them in the
// order read. Key is the message's keys, Headers its user properties;
// ContentType stays empty (RocketMQ has no such field).
func (tp *Topic) ReadBack(t testing.TB, want int, within time.Duration) []brokers.Msg {
	t.Helper()
	group := UniqueName(t, "readback")
	tp.use(group)
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		out  []brokers.Msg
		done = make(chan struct{})
	)
	c, err := consumer.NewPushConsumer(
		consumer.WithNameServer([]string{tp.broker.NameServer}),
		consumer.WithGroupName(group),
		consumer.WithInstance(group),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatalf("rocketmqtest: consumer: %v", err)
	}
	err = c.Subscribe(tp.name, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if seen[m.MsgId] {
				continue
			}
			seen[m.MsgId] = true
			props := m.GetProperties()
			h := make(map[string]string, len(props))
			for k, v := range props {
				h[k] = v
			}
			out = append(out, brokers.Msg{Key: m.GetKeys(), Payload: m.Body, Headers: h})
			if len(out) == want {
				close(done)
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatalf("rocketmqtest: subscribe: %v", err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("rocketmqtest: start consumer: %v", err)
	}
	defer func() { _ = c.Shutdown() }()
	select {
	case <-done:
	case <-time.After(within):
		mu.Lock()
		n := len(out)
		mu.Unlock()
		t.Fatalf("rocketmqtest: read %d of %d messages of %s within %v", n, want, tp.name, within)
	}
	mu.Lock()
	defer mu.Unlock()
	return append([]brokers.Msg(nil), out...)
}
