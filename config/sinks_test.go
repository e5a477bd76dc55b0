package config

import (
	"strings"
	"testing"
)

// sinkBase is a valid config on lines 1-9 with a trigger on kafka topic
// "orders", amqp queue "jobs" and redis stream "events"; cases append the
// function's destinations from line 10.
const sinkBase = `tenants: [ { name: demo, api_keys: [k] } ]
triggers:
  - { name: k, function: echo, source: { kafka: { brokers: ["127.0.0.1:9092"], topic: orders, group: g } } }
  - { name: r, function: echo, source: { rabbitmq: { url: "amqp://guest:guest@127.0.0.1:5672/", queue: jobs } } }
  - { name: s, function: echo, source: { redis: { url: "redis://127.0.0.1:6379/0", stream: events } } }
functions:
  - name: echo
    tenant: demo
    backend: { exec: { command: [cat] } }
`

func TestSinkProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dest, want string
	}{
		{"KafkaNoTopic", `{ kafka: { brokers: [b:9092] } }`, "x.yaml:10: functions[0].destinations.on_success[0].kafka.topic: is required"},
		{"KafkaNoBrokers", `{ kafka: { topic: t } }`, "x.yaml:10: functions[0].destinations.on_success[0].kafka.brokers: at least one broker address is required"},
		{"RocketMQNoNameServers", `{ rocketmq: { topic: t } }`, "functions[0].destinations.on_success[0].rocketmq.nameservers: at least one name server address is required"},
		{"RabbitMQBadURL", `{ rabbitmq: { url: "http://x", routing_key: q } }`, "functions[0].destinations.on_success[0].rabbitmq.url: must be a URL with a host and the scheme amqp://"},
		{"RabbitMQNoQueue", `{ rabbitmq: { url: "amqp://h/" } }`, "functions[0].destinations.on_success[0].rabbitmq.routing_key: is required with the default exchange"},
		{"RedisNoStream", `{ redis: { url: "redis://h:6379/0" } }`, "functions[0].destinations.on_success[0].redis.stream: is required"},
		{"RedisNegativeMaxLen", `{ redis: { url: "redis://h:6379/0", stream: s, maxlen: -1 } }`, "functions[0].destinations.on_success[0].redis.maxlen: must not be negative"},
		{"SinkRetry", `{ kafka: { brokers: [b:9092], topic: t, retry: { max_attempts: -1 } } }`, "functions[0].destinations.on_success[0].kafka.retry.max_attempts: must be at least 1, got -1"},
		{"UnknownSinkKey", `{ kafka: { brokers: [b:9092], topic: t, partition: 3 } }`, "functions[0].destinations.on_success[0].kafka.partition: unknown key"},
		{"BadRate", "", "functions[0].rate: must be a number of invocations per second"},
		{"BurstWithoutRate", "", "functions[0].burst: has no effect without rate"},
		{"NegativeTraceWindow", "", `x.yaml:10: loop_guard.trace_window: "-1m" is negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := sinkBase + "    destinations: { on_success: [ " + tt.dest + " ] }\n"
			switch tt.name {
			case "BadRate":
				src = sinkBase + "    rate: -5\n"
			case "BurstWithoutRate":
				src = sinkBase + "    burst: 5\n"
			case "NegativeTraceWindow":
				src = sinkBase + "loop_guard: { trace_window: -1m }\n"
			}
			_, err := Parse("x.yaml", []byte(src), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestSinkDefaults(t *testing.T) {
	t.Parallel()
	src := sinkBase + "    rate: 50\n    destinations: { on_failure: [ { rocketmq: { nameservers: [n:9876], topic: dlq } } ] }\n"
	c, err := Parse("x.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := c.Functions[0]
	if f.Burst != 5 {
		t.Errorf("burst = %d, want 5 (a tenth of rate 50)", f.Burst)
	}
	r := f.Destinations.OnFailure[0].RocketMQ
	if r.Group != DefaultRocketMQProducerGroup || r.Timeout.D() != DefaultWebhookTimeout || r.Retry.MaxAttempts != DefaultSinkMaxAttempts {
		t.Errorf("rocketmq sink defaults = %+v", r)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings = %v, want none", c.Warnings)
	}
}

func TestSelfLoopWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dests string
		want        string // "" for no warning
	}{
		{"KafkaSameTopic", `on_success: [ { kafka: { brokers: ["127.0.0.1:9092"], topic: orders } } ]`,
			`x.yaml:10: warning: functions[0].destinations.on_success[0]: sends to kafka topic "orders", which trigger "k" reads: function "echo" triggers itself; the loop guard stops the chain after loop_guard.max_hops (16) invocations`},
		{"KafkaOtherTopic", `on_success: [ { kafka: { brokers: ["127.0.0.1:9092"], topic: shipped } } ]`, ""},
		{"KafkaOtherCluster", `on_success: [ { kafka: { brokers: ["10.0.0.1:9092"], topic: orders } } ]`, ""},
		{"RabbitQueue", `on_failure: [ { rabbitmq: { url: "amqp://other:pw@127.0.0.1:5672/", routing_key: jobs } } ]`,
			`functions[0].destinations.on_failure[0]: sends to rabbitmq queue "jobs", which trigger "r" reads`},
		{"RabbitExchange", `on_success: [ { rabbitmq: { url: "amqp://guest:guest@127.0.0.1:5672/", exchange: x, routing_key: jobs } } ]`,
			`sends to rabbitmq exchange "x" with routing key "jobs" (likely bound to queue "jobs")`},
		{"RedisStream", `on_success: [ { redis: { url: "redis://127.0.0.1:6379/0", stream: events } } ]`,
			`sends to redis stream "events", which trigger "s" reads`},
		{"RedisOtherDB", `on_success: [ { redis: { url: "redis://127.0.0.1:6379/1", stream: events } } ]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("x.yaml", []byte(sinkBase+"    destinations: { "+tt.dests+" }\n"), nil)
			if err != nil {
				t.Fatalf("a self-loop is a warning, not an error: %v", err)
			}
			got := c.Warnings.Error()
			if tt.want == "" && len(c.Warnings) != 0 || !strings.Contains(got, tt.want) {
				t.Errorf("warnings:\n%s\nwant: %q", got, tt.want)
			}
		})
	}
}
