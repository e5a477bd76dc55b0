package rocketmq

import (
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// FuzzToMessage: any message properties (as the broker encodes them:
// name\x01value\x02...) become headers without a panic; RocketMQ's own
// properties never do, and the id of a retried message stays stable.
func FuzzToMessage(f *testing.F) {
	f.Add([]byte("KEYS\x01k1\x02ferry-hops\x013\x02UNIQ_KEY\x01AC11\x02"), []byte("body"), "orders", false)
	f.Add([]byte("ORIGIN_MESSAGE_ID\x01abc\x02traceparent\x0100-x\x02"), []byte{}, "%RETRY%group", true)
	f.Add([]byte("\x01\x02\x01\x01\x02"), []byte("\xff"), "", false)
	f.Add([]byte("novalue"), []byte(nil), "t", true)
	f.Fuzz(func(t *testing.T, props, body []byte, topic string, retry bool) {
		m := &primitive.MessageExt{Message: primitive.Message{Topic: topic, Body: body}, MsgId: "m1", QueueOffset: 7}
		m.UnmarshalProperties(props)
		mq := primitive.MessageQueue{Topic: topic, BrokerName: "b", QueueId: 1}
		if retry {
			mq.Topic = retryTopicPrefix + topic
		}
		msg := toMessage("rocketmq://h/"+topic, mq, m)
		for k := range msg.Headers {
			if systemProperties[k] {
				t.Fatalf("system property %q became a header", k)
			}
		}
		if string(msg.Payload) != string(body) {
			t.Fatalf("payload %q, want %q", msg.Payload, body)
		}
		if retry && !strings.Contains(msg.ID, "/retry/") {
			t.Fatalf("retried message id %q", msg.ID)
		}
	})
}
