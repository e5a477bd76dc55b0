package config

import "fmt"

// DefaultRocketMQProducerGroup is the producer group of RocketMQ sinks.
const DefaultRocketMQProducerGroup = "ferry-sink"

// RocketMQSource reads a topic with a clustering consumer group.
type RocketMQSource struct {
	NameServers []string `yaml:"nameservers"`
	Topic       string   `yaml:"topic"`
	Group       string   `yaml:"group"`
	// Tags is the subscription expression ("*" for all). Defaults to "*".
	Tags string `yaml:"tags"`
}

func (s *RocketMQSource) applyDefaults(*Trigger) { setDefault(&s.Tags, "*") }

func (s *RocketMQSource) validate(v *validator, p string) {
	v.addresses(p+".nameservers", s.NameServers, "name server")
	v.required(p+".topic", s.Topic)
	v.required(p+".group", s.Group)
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

func (r *RocketMQSink) delivery() (*Duration, *Retry) { return &r.Timeout, &r.Retry }
func (r *RocketMQSink) applyDefaults()                { setDefault(&r.Group, DefaultRocketMQProducerGroup) }

func (r *RocketMQSink) validate(v *validator, p string) {
	v.addresses(p+".nameservers", r.NameServers, "name server")
	v.required(p+".topic", r.Topic)
}

func (r *RocketMQSink) feeds(s Source) (string, bool) {
	if s.RocketMQ == nil {
		return "", false
	}
	if r.Topic == s.RocketMQ.Topic && overlap(r.NameServers, s.RocketMQ.NameServers) {
		return fmt.Sprintf("to rocketmq topic %q", r.Topic), true
	}
	return "", true
}
