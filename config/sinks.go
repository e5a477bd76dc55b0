package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// DefaultRocketMQProducerGroup is the producer group of RocketMQ sinks.
const DefaultRocketMQProducerGroup = "ferry-sink"

// Every sink below has Timeout (one delivery attempt; defaults to 10s) and
// Retry (redelivery; defaults: 10 attempts, 1s initial, 5m max interval,
// multiplier 2, max age 24h). When retries run out the delivery is
// recorded as failed (metric, log, the task's deliveries), never dropped
// silently.

// KafkaSink produces outcomes to a Kafka topic (acks=all), keyed by the
// outcome id, with the ferry-hops and traceparent headers.
type KafkaSink struct {
	Brokers []string `yaml:"brokers"`
	Topic   string   `yaml:"topic"`
	Timeout Duration `yaml:"timeout"`
	Retry   Retry    `yaml:"retry"`
}

// RocketMQSink sends outcomes to a RocketMQ topic (SendSync), with the
// ferry-hops and traceparent properties.
type RocketMQSink struct {
	NameServers []string `yaml:"nameservers"`
	Topic       string   `yaml:"topic"`
	// Tag is the message tag (optional).
	Tag string `yaml:"tag"`
	// Group is the producer group. Defaults to "ferry-sink".
	Group   string   `yaml:"group"`
	Timeout Duration `yaml:"timeout"`
	Retry   Retry    `yaml:"retry"`
}

// RabbitMQSink publishes outcomes as persistent messages with publisher
// confirms; an unroutable message is a failed delivery.
type RabbitMQSink struct {
	URL string `yaml:"url"`
	// Exchange is the exchange to publish to; "" is the default exchange,
	// where RoutingKey names the queue.
	Exchange   string   `yaml:"exchange"`
	RoutingKey string   `yaml:"routing_key"`
	Timeout    Duration `yaml:"timeout"`
	Retry      Retry    `yaml:"retry"`
}

// RedisSink appends outcomes to a Redis stream (XADD): field `data` is
// the outcome JSON, `ferry-hops` and `traceparent` are fields too.
type RedisSink struct {
	URL    string `yaml:"url"`
	Stream string `yaml:"stream"`
	// MaxLen trims the stream to about this many entries (XADD MAXLEN ~);
	// 0 keeps every entry.
	MaxLen  int64    `yaml:"maxlen"`
	Timeout Duration `yaml:"timeout"`
	Retry   Retry    `yaml:"retry"`
}

// destinationDefaults fills the sinks' timeouts and retry policies.
func destinationDefaults(ds []Destination) {
	for _, d := range ds {
		if timeout, retry := d.Delivery(); timeout != nil {
			setDefault(timeout, Duration(DefaultWebhookTimeout))
			retry.applyDefaults(DefaultSinkMaxAttempts, Duration(DefaultSinkMaxAge))
		}
		if r := d.RocketMQ; r != nil {
			setDefault(&r.Group, DefaultRocketMQProducerGroup)
		}
	}
}

func (v *validator) destinations(p string, ds []Destination) {
	for i, d := range ds {
		dp := fmt.Sprintf("%s[%d]", p, i)
		required := func(key, val string) {
			if val == "" {
				v.report(dp+"."+key, nil, "is required")
			}
		}
		switch {
		case d.Webhook != nil:
			v.httpURL(dp+".webhook.url", d.Webhook.URL)
			if err := checkSecret(d.Webhook.Secret); err != nil {
				v.report(dp+".webhook.secret", nil, "%v", err)
			}
		case d.Kafka != nil:
			if len(d.Kafka.Brokers) == 0 {
				v.report(dp+".kafka.brokers", nil, "at least one broker address is required")
			}
			required("kafka.topic", d.Kafka.Topic)
		case d.RocketMQ != nil:
			if len(d.RocketMQ.NameServers) == 0 {
				v.report(dp+".rocketmq.nameservers", nil, "at least one name server address is required")
			}
			required("rocketmq.topic", d.RocketMQ.Topic)
		case d.RabbitMQ != nil:
			v.brokerURL(dp+".rabbitmq.url", d.RabbitMQ.URL, "amqp", "amqps")
			if d.RabbitMQ.Exchange == "" && d.RabbitMQ.RoutingKey == "" {
				v.report(dp+".rabbitmq.routing_key", nil, "is required with the default exchange (it names the queue)")
			}
		case d.Redis != nil:
			v.brokerURL(dp+".redis.url", d.Redis.URL, "redis", "rediss")
			required("redis.stream", d.Redis.Stream)
			if d.Redis.MaxLen < 0 {
				v.report(dp+".redis.maxlen", nil, "must not be negative")
			}
		}
		if _, retry := d.Delivery(); retry != nil {
			v.retry(dp+"."+d.Kind()+".retry", *retry)
		}
		v.exactlyOne(dp, d.kinds(), "webhook", "kafka", "rocketmq", "rabbitmq", "redis", "log")
	}
}

// selfLoops warns about destinations that send a function's outcomes to
// the source of a trigger of the same function: each outcome triggers the
// function again. It is a warning, not an error: a bounded self-requeue
// can be intended, and the loop guard stops an unbounded one.
func (v *validator) selfLoops(c *Config) {
	for i := range c.Triggers {
		t := &c.Triggers[i]
		f := c.FunctionOf(t)
		if f == nil {
			continue
		}
		fi := slices.IndexFunc(c.Functions, func(g Function) bool { return g.Name == f.Name && g.Tenant == f.Tenant })
		lists := []struct {
			path string
			ds   []Destination
		}{
			{fmt.Sprintf("functions[%d].destinations.on_success", fi), f.Destinations.OnSuccess},
			{fmt.Sprintf("triggers[%d].destinations.on_failure", i), t.Destinations.OnFailure},
		}
		if len(t.Destinations.OnFailure) == 0 { // the trigger's own on_failure replaces the function's
			lists[1].path, lists[1].ds = fmt.Sprintf("functions[%d].destinations.on_failure", fi), f.Destinations.OnFailure
		}
		for _, l := range lists {
			for j, d := range l.ds {
				if what := feeds(d, t.Source); what != "" {
					p := fmt.Sprintf("%s[%d]", l.path, j)
					v.warn(p, "sends %s, which trigger %q reads: function %q triggers itself; the loop guard stops the chain after loop_guard.max_hops (%d) invocations",
						what, t.Name, f.Name, c.LoopGuard.MaxHops)
				}
			}
		}
	}
}

// feeds describes what d sends to when that is where s reads from, else "".
func feeds(d Destination, s Source) string {
	switch {
	case d.Kafka != nil && s.Kafka != nil:
		if d.Kafka.Topic == s.Kafka.Topic && overlap(d.Kafka.Brokers, s.Kafka.Brokers) {
			return fmt.Sprintf("to kafka topic %q", d.Kafka.Topic)
		}
	case d.RocketMQ != nil && s.RocketMQ != nil:
		if d.RocketMQ.Topic == s.RocketMQ.Topic && overlap(d.RocketMQ.NameServers, s.RocketMQ.NameServers) {
			return fmt.Sprintf("to rocketmq topic %q", d.RocketMQ.Topic)
		}
	case d.RabbitMQ != nil && s.RabbitMQ != nil:
		if sameServer(d.RabbitMQ.URL, s.RabbitMQ.URL) && d.RabbitMQ.RoutingKey == s.RabbitMQ.Queue {
			if d.RabbitMQ.Exchange == "" {
				return fmt.Sprintf("to rabbitmq queue %q", s.RabbitMQ.Queue)
			}
			return fmt.Sprintf("to rabbitmq exchange %q with routing key %q (likely bound to queue %q)",
				d.RabbitMQ.Exchange, d.RabbitMQ.RoutingKey, s.RabbitMQ.Queue)
		}
	case d.Redis != nil && s.Redis != nil:
		if d.Redis.Stream == s.Redis.Stream && sameServer(d.Redis.URL, s.Redis.URL) {
			return fmt.Sprintf("to redis stream %q", d.Redis.Stream)
		}
	}
	return ""
}

// overlap reports whether two address lists share an address.
func overlap(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// sameServer reports whether two broker URLs name the same host and path
// (credentials aside).
func sameServer(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return strings.EqualFold(ua.Host, ub.Host) && strings.TrimSuffix(ua.Path, "/") == strings.TrimSuffix(ub.Path, "/")
}
