package config

import (
	"fmt"
	"net/url"
)

// Trigger defaults.
const (
	DefaultBatchSize   = 1
	DefaultTriggerConc = 1
	DefaultStart       = "earliest"
	MaxBatchSize       = 10000
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
	// CatchUp (timer triggers only) says which ticks missed while Ferry
	// was down or the trigger paused run once it is back: none, last (the
	// latest within MaxLateness) or all (every one within MaxLateness,
	// oldest first). Defaults to last.
	CatchUp string `yaml:"catch_up"`
	// MaxLateness (timer triggers only) is how late a missed tick may
	// still run; at most 24h and store.retention. Defaults to 1h.
	MaxLateness Duration `yaml:"max_lateness"`
}

// Source is exactly one broker source, or a timer. Each field is a kind
// (see kinds.go): its yaml name is the kind, its type the kind's config.
type Source struct {
	Kafka    *KafkaSource    `yaml:"kafka"`
	RocketMQ *RocketMQSource `yaml:"rocketmq"`
	RabbitMQ *RabbitMQSource `yaml:"rabbitmq"`
	Redis    *RedisSource    `yaml:"redis"`
	Timer    *TimerSource    `yaml:"timer"`
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
	_, sources := t.Source.kinds()
	for _, s := range sources {
		s.applyDefaults(t)
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
		kinds, sources := t.Source.kinds()
		v.exactlyOne(p+".source", kinds, SourceKinds()...)
		if len(sources) > 0 {
			sources[0].validate(v, p+".source."+kinds[0])
		}
		switch {
		case len(kinds) != 1:
		case t.Source.Timer != nil:
			v.timerTrigger(c, p, t)
		default:
			v.brokerTrigger(p, t)
		}
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
