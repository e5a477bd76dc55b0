package config

import "fmt"

// KafkaSource reads a topic with a consumer group.
type KafkaSource struct {
	Brokers []string `yaml:"brokers"`
	Topic   string   `yaml:"topic"`
	Group   string   `yaml:"group"`
}

func (*KafkaSource) applyDefaults(*Trigger) {}

func (s *KafkaSource) validate(v *validator, p string) {
	v.addresses(p+".brokers", s.Brokers, "broker")
	v.required(p+".topic", s.Topic)
	v.required(p+".group", s.Group)
}

// KafkaSink produces outcomes to a Kafka topic (acks=all), keyed by the
// outcome id, with the ferry-hops and traceparent headers.
type KafkaSink struct {
	Brokers []string `yaml:"brokers"`
	Topic   string   `yaml:"topic"`
	Timeout Duration `yaml:"timeout"`
	Retry   Retry    `yaml:"retry"`
}

func (k *KafkaSink) delivery() (*Duration, *Retry) { return &k.Timeout, &k.Retry }
func (*KafkaSink) applyDefaults()                  {}

func (k *KafkaSink) validate(v *validator, p string) {
	v.addresses(p+".brokers", k.Brokers, "broker")
	v.required(p+".topic", k.Topic)
}

func (k *KafkaSink) feeds(s Source) (string, bool) {
	if s.Kafka == nil {
		return "", false
	}
	if k.Topic == s.Kafka.Topic && overlap(k.Brokers, s.Kafka.Brokers) {
		return fmt.Sprintf("to kafka topic %q", k.Topic), true
	}
	return "", true
}
