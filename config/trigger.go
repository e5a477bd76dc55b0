package config

import (
	"fmt"
	"net/url"
	"time"
)

// Trigger defaults.
const (
	DefaultBatchSize      = 1
	DefaultTriggerConc    = 1
	DefaultRabbitPrefetch = 64
	MaxRabbitPrefetch     = 65535
	DefaultRedisClaimIdle = 30 * time.Second
	DefaultStart          = "earliest"
	DefaultRedisGroup     = "ferry"
	MaxBatchSize          = 10000
)

// StringList is a list of strings that may be written as one scalar.
type StringList []string

// Trigger consumes a broker and pushes its messages to a function.
type Trigger struct {
	Name string `yaml:"name"`
	// Function names the function to invoke; Tenant picks its tenant when
	// several tenants have a function of that name.
	Function string `yaml:"function"`
	Tenant   string `yaml:"tenant"`
	Source   Source `yaml:"source"`
	// Start is where a new consumer group begins: earliest or latest.
	// Defaults to earliest (nothing already in the topic is skipped).
	Start string `yaml:"start"`
	Batch Batch  `yaml:"batch"`
	// Concurrency is how many invocations the trigger runs at once. With 1,
	// order is kept per partition / queue / stream; above 1, per message
	// key where the broker has keys. Defaults to 1.
	Concurrency int `yaml:"concurrency"`
	// Filter: messages that do not match are committed without invoking.
	Filter *Filter `yaml:"filter"`
	// Retry defaults to the function's retry policy.
	Retry        *Retry              `yaml:"retry"`
	Destinations TriggerDestinations `yaml:"destinations"`
}

// Source is exactly one broker source.
type Source struct {
	Kafka    *KafkaSource    `yaml:"kafka"`
	RocketMQ *RocketMQSource `yaml:"rocketmq"`
	RabbitMQ *RabbitMQSource `yaml:"rabbitmq"`
	Redis    *RedisSource    `yaml:"redis"`
}

// Kind returns the source's broker kind ("" when none is set).
func (s Source) Kind() string {
	if k := s.kinds(); len(k) > 0 {
		return k[0]
	}
	return ""
}

// kinds lists every broker kind set.
func (s Source) kinds() []string {
	var k []string
	for _, c := range []struct {
		set  bool
		name string
	}{{s.Kafka != nil, "kafka"}, {s.RocketMQ != nil, "rocketmq"}, {s.RabbitMQ != nil, "rabbitmq"}, {s.Redis != nil, "redis"}} {
		if c.set {
			k = append(k, c.name)
		}
	}
	return k
}

// KafkaSource reads a topic with a consumer group.
type KafkaSource struct {
	Brokers []string `yaml:"brokers"`
	Topic   string   `yaml:"topic"`
	Group   string   `yaml:"group"`
}

// RocketMQSource reads a topic with a clustering consumer group.
type RocketMQSource struct {
	NameServers []string `yaml:"nameservers"`
	Topic       string   `yaml:"topic"`
	Group       string   `yaml:"group"`
	// Tags is the subscription expression ("*" for all). Defaults to "*".
	Tags string `yaml:"tags"`
}

// RabbitMQSource consumes a queue with manual acks.
type RabbitMQSource struct {
	URL   string `yaml:"url"`
	Queue string `yaml:"queue"`
	// Prefetch is the channel's QoS prefetch count. Defaults to 64, or
	// batch.size × concurrency when that is larger.
	Prefetch int `yaml:"prefetch"`
}

// RedisSource reads a stream with a consumer group.
type RedisSource struct {
	URL    string `yaml:"url"`
	Stream string `yaml:"stream"`
	// Group defaults to "ferry".
	Group string `yaml:"group"`
	// Consumer names this process in the group. Defaults to host-pid.
	Consumer string `yaml:"consumer"`
	// ClaimIdle: entries pending longer than this with a dead consumer are
	// claimed (XAUTOCLAIM). Defaults to 30s.
	ClaimIdle Duration `yaml:"claim_idle"`
}

// Batch groups messages into one invocation.
type Batch struct {
	// Size is the most messages per invocation. Defaults to 1.
	Size int `yaml:"size"`
	// Window is how long a batch waits to fill. Defaults to 0 (send what
	// has arrived).
	Window Duration `yaml:"window"`
	// BisectOnError splits a failing batch without a per-item report in
	// halves to find the failing messages, without spending their retries.
	BisectOnError bool `yaml:"bisect_on_error"`
}

// Filter selects the messages to invoke: every listed header and every
// listed top-level JSON field must equal one of its values.
type Filter struct {
	Headers map[string]StringList `yaml:"headers"`
	JSON    map[string]StringList `yaml:"json"`
}

// TriggerDestinations receive a trigger's failed messages.
type TriggerDestinations struct {
	// OnFailure defaults to the function's on_failure destinations.
	OnFailure []Destination `yaml:"on_failure"`
}

// FunctionOf returns the function a trigger invokes, or nil when there is
// none or the name is ambiguous without a tenant.
func (c *Config) FunctionOf(t *Trigger) *Function {
	var found *Function
	for i := range c.Functions {
		f := &c.Functions[i]
		if f.Name != t.Function || (t.Tenant != "" && f.Tenant != t.Tenant) {
			continue
		}
		if found != nil {
			return nil
		}
		found = f
	}
	return found
}

func (t *Trigger) applyDefaults() {
	setDefault(&t.Start, DefaultStart)
	setDefault(&t.Batch.Size, DefaultBatchSize)
	setDefault(&t.Concurrency, DefaultTriggerConc)
	if s := t.Source.RabbitMQ; s != nil {
		// Unacked deliveries beyond the prefetch are not sent, so a smaller
		// prefetch than the workers' batches would leave them waiting out
		// their window.
		setDefault(&s.Prefetch, min(max(DefaultRabbitPrefetch, t.Batch.Size*t.Concurrency), MaxRabbitPrefetch))
	}
	if s := t.Source.Redis; s != nil {
		setDefault(&s.Group, DefaultRedisGroup)
		setDefault(&s.ClaimIdle, Duration(DefaultRedisClaimIdle))
	}
	if s := t.Source.RocketMQ; s != nil {
		setDefault(&s.Tags, "*")
	}
	if t.Retry != nil {
		t.Retry.applyDefaults(DefaultMaxAttempts, Duration(DefaultMaxAge))
	}
	destinationDefaults(t.Destinations.OnFailure)
}

func (v *validator) triggers(c *Config) {
	seen := map[string]int{}
	for i := range c.Triggers {
		t := &c.Triggers[i]
		p := fmt.Sprintf("triggers[%d]", i)
		if v.name(p+".name", t.Name) {
			if j, dup := seen[t.Name]; dup {
				v.report(p+".name", nil, "trigger %q is already defined at line %d", t.Name, v.line(fmt.Sprintf("triggers[%d].name", j)))
			}
			seen[t.Name] = i
		}
		if t.Function == "" {
			v.report(p+".function", nil, "is required")
		} else if c.FunctionOf(t) == nil {
			v.report(p+".function", []string{"functions"}, "function %q is not defined%s", t.Function, ambiguity(c, t))
		}
		v.exactlyOne(p+".source", t.Source.kinds(), "kafka", "rocketmq", "rabbitmq", "redis")
		v.source(p+".source", t.Source)
		v.oneOf(p+".start", t.Start, "earliest", "latest")
		if t.Batch.Size < 1 || t.Batch.Size > MaxBatchSize {
			v.report(p+".batch.size", nil, "must be from 1 to %d", MaxBatchSize)
		}
		v.atLeast(p+".concurrency", t.Concurrency, 1)
		if t.Retry != nil {
			v.retry(p+".retry", *t.Retry)
		}
		v.destinations(p+".destinations.on_failure", t.Destinations.OnFailure)
	}
}

func ambiguity(c *Config, t *Trigger) string {
	if t.Tenant != "" {
		return fmt.Sprintf(" for tenant %q", t.Tenant)
	}
	n := 0
	for _, f := range c.Functions {
		if f.Name == t.Function {
			n++
		}
	}
	if n > 1 {
		return fmt.Sprintf(" unambiguously: %d tenants have it; set triggers[].tenant", n)
	}
	return ""
}

func (v *validator) source(p string, s Source) {
	required := func(path, val string) {
		if val == "" {
			v.report(path, nil, "is required")
		}
	}
	switch {
	case s.Kafka != nil:
		if len(s.Kafka.Brokers) == 0 {
			v.report(p+".kafka.brokers", nil, "at least one broker address is required")
		}
		required(p+".kafka.topic", s.Kafka.Topic)
		required(p+".kafka.group", s.Kafka.Group)
	case s.RocketMQ != nil:
		if len(s.RocketMQ.NameServers) == 0 {
			v.report(p+".rocketmq.nameservers", nil, "at least one name server address is required")
		}
		required(p+".rocketmq.topic", s.RocketMQ.Topic)
		required(p+".rocketmq.group", s.RocketMQ.Group)
	case s.RabbitMQ != nil:
		v.brokerURL(p+".rabbitmq.url", s.RabbitMQ.URL, "amqp", "amqps")
		required(p+".rabbitmq.queue", s.RabbitMQ.Queue)
		v.atLeast(p+".rabbitmq.prefetch", s.RabbitMQ.Prefetch, 1)
	case s.Redis != nil:
		v.brokerURL(p+".redis.url", s.Redis.URL, "redis", "rediss")
		required(p+".redis.stream", s.Redis.Stream)
	}
}

// brokerURL checks a broker URL's scheme without echoing it (it may carry
// credentials).
func (v *validator) brokerURL(p, s string, schemes ...string) {
	u, err := url.Parse(s)
	if err == nil {
		for _, sc := range schemes {
			if u.Scheme == sc && u.Host != "" {
				return
			}
		}
	}
	v.report(p, nil, "must be a URL with a host and the scheme %s://", schemes[0])
}
