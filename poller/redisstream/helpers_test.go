package redisstream_test

import (
	"fmt"
	"testing"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
	"github.com/ferrydev/ferry/wire"
)

// setup creates a fresh stream on the real Redis.
func setup(t *testing.T) *redisstreamtest.Topic {
	t.Helper()
	return redisstreamtest.New().NewTopic(t, 1).(*redisstreamtest.Topic)
}

// produce appends n entries with payloads "<prefix>-<i>" (i from 0) and keys
// "k<i%3>".
func produce(t *testing.T, tp *redisstreamtest.Topic, prefix string, n int) []string {
	t.Helper()
	msgs, payloads := batch(prefix, 0, n)
	tp.Produce(t, msgs)
	return payloads
}

// batch builds entries prefix-from .. prefix-(from+n-1).
func batch(prefix string, from, n int) ([]brokers.Msg, []string) {
	msgs := make([]brokers.Msg, n)
	payloads := make([]string, n)
	for i := range msgs {
		payloads[i] = fmt.Sprintf("%s-%d", prefix, from+i)
		msgs[i] = brokers.Msg{
			Key:     fmt.Sprintf("k%d", (from+i)%3),
			Payload: []byte(payloads[i]),
			Headers: map[string]string{wire.HeaderHops: "2"},
		}
	}
	return msgs, payloads
}

// payloads lists the payloads of msgs as strings.
func payloads(msgs []*poller.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}
