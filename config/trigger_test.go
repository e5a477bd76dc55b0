package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const triggerBase = `tenants:
  - { name: a, api_keys: [key-aaaaaaaa] }
  - { name: b, api_keys: [key-bbbbbbbb] }
functions:
  - { name: f, tenant: a, backend: { exec: { command: [cat] } } }
  - { name: g, tenant: a, backend: { exec: { command: [cat] } } }
  - { name: g, tenant: b, backend: { exec: { command: [cat] } } }
triggers:
`

func TestTriggerDefaults(t *testing.T) {
	src := triggerBase + `  - name: r
    function: f
    source: { rabbitmq: { url: "amqp://guest:guest@127.0.0.1:5672/", queue: q } }
    batch: { size: 100 }
    concurrency: 8
  - name: s
    function: g
    tenant: b
    source: { redis: { url: "redis://127.0.0.1:6379/0", stream: s } }
`
	c, err := Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, s := c.Triggers[0], c.Triggers[1]
	if r.Start != "earliest" || r.Source.RabbitMQ.Prefetch != 800 || r.Batch.Window != 0 {
		t.Errorf("rabbitmq trigger defaults: start %q prefetch %d window %s; want earliest, 800 (batch × concurrency), 0s",
			r.Start, r.Source.RabbitMQ.Prefetch, r.Batch.Window.D())
	}
	if s.Source.Redis.Group != "ferry" || s.Source.Redis.ClaimIdle.D() != 30*time.Second || s.Concurrency != 1 || s.Batch.Size != 1 {
		t.Errorf("redis trigger defaults: %+v", s)
	}
	if f := c.FunctionOf(&c.Triggers[1]); f == nil || f.Tenant != "b" {
		t.Errorf("FunctionOf(tenant b, g) = %+v", f)
	}
}

func TestTriggerProblems(t *testing.T) {
	tests := []struct {
		name, trigger, want string
	}{
		{"UnknownFunction", `  - { name: t1, function: nope, source: { redis: { url: "redis://h:6379", stream: s } } }`,
			`t.yaml:9: triggers[0].function: function "nope" is not defined`},
		{"AmbiguousFunction", `  - { name: t1, function: g, source: { redis: { url: "redis://h:6379", stream: s } } }`,
			`t.yaml:9: triggers[0].function: function "g" is not defined unambiguously: 2 tenants have it; set triggers[].tenant`},
		{"TwoSources", `  - { name: t1, function: f, source: { redis: { url: "redis://h:6379", stream: s }, kafka: { brokers: [h:9092], topic: t, group: g } } }`,
			`t.yaml:9: triggers[0].source: set exactly one of kafka, rocketmq, rabbitmq, redis, timer, not kafka and redis`},
		{"KafkaWithoutGroup", `  - { name: t1, function: f, source: { kafka: { brokers: [h:9092], topic: t } } }`,
			`t.yaml:9: triggers[0].source.kafka.group: is required`},
		{"BadStart", `  - { name: t1, function: f, start: middle, source: { redis: { url: "redis://h:6379", stream: s } } }`,
			`t.yaml:9: triggers[0].start: `},
		{"BatchTooLarge", `  - { name: t1, function: f, batch: { size: 20000 }, source: { redis: { url: "redis://h:6379", stream: s } } }`,
			`t.yaml:9: triggers[0].batch.size: must be from 1 to 10000`},
		{"BadBrokerURLNotEchoed", `  - { name: t1, function: f, source: { rabbitmq: { url: "http://user:secret@h/", queue: q } } }`,
			`t.yaml:9: triggers[0].source.rabbitmq.url: must be a URL with a host and the scheme amqp://`},
		{"BadQueueType", `  - { name: t1, function: f, source: { rabbitmq: { url: "amqp://h/", queue: q, queue_type: stream } } }`,
			`t.yaml:9: triggers[0].source.rabbitmq.queue_type: "stream" is not one of quorum, classic`},
		{"UnknownKey", `  - { name: t1, function: f, sauce: {}, source: { redis: { url: "redis://h:6379", stream: s } } }`,
			`t.yaml:9: triggers[0].sauce: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(triggerBase+tt.trigger+"\n"), nil)
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v, want Problems", err)
			}
			if !strings.Contains(probs.Error(), tt.want) {
				t.Fatalf("problems:\n%s\nwant a line containing %q", probs.Error(), tt.want)
			}
			if strings.Contains(probs.Error(), "secret") {
				t.Fatalf("a problem echoes a credential:\n%s", probs.Error())
			}
		})
	}
}
