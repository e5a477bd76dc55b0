package rabbitmq_test

import (
	"fmt"
	"testing"

	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/rabbitmqtest"
)

// setup declares a fresh durable queue on the real broker.
func setup(t *testing.T) *rabbitmqtest.Topic {
	t.Helper()
	return rabbitmqtest.New().NewTopic(t, 1).(*rabbitmqtest.Topic)
}

// produce publishes n messages with payloads "<prefix>-<i>" (i from 0).
func produce(t *testing.T, q *rabbitmqtest.Topic, prefix string, n int, headers map[string]string) []string {
	t.Helper()
	msgs := make([]brokers.Msg, n)
	payloads := make([]string, n)
	for i := range msgs {
		payloads[i] = fmt.Sprintf("%s-%d", prefix, i)
		msgs[i] = brokers.Msg{Payload: []byte(payloads[i]), Headers: headers}
	}
	q.Produce(t, msgs)
	return payloads
}
