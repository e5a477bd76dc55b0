package config

import "fmt"

// RabbitMQ source defaults and limits.
const (
	DefaultRabbitPrefetch = 64
	MaxRabbitPrefetch     = 65535
)

// RabbitMQSource consumes a queue with manual acks.
type RabbitMQSource struct {
	URL   string `yaml:"url"`
	Queue string `yaml:"queue"`
	// Prefetch is the channel's QoS prefetch count. Defaults to 64, or
	// batch.size × concurrency when that is larger.
	Prefetch int `yaml:"prefetch"`
	// QueueType, when set, makes Ferry declare the queue (durable) with
	// this x-queue-type if it is missing, and refuse one of another type:
	// "quorum" (acks replicated and fsynced through Raft, so a broker
	// killed hard redelivers only what was in flight) or "classic".
	// Empty: the queue must exist and Ferry does not declare it.
	QueueType string `yaml:"queue_type"`
}

func (s *RabbitMQSource) applyDefaults(t *Trigger) {
	// Unacked deliveries beyond the prefetch are not sent, so a smaller
	// prefetch than the workers' batches would leave them waiting out
	// their window.
	setDefault(&s.Prefetch, min(max(DefaultRabbitPrefetch, t.Batch.Size*t.Concurrency), MaxRabbitPrefetch))
}

func (s *RabbitMQSource) validate(v *validator, p string) {
	v.brokerURL(p+".url", s.URL, "amqp", "amqps")
	v.required(p+".queue", s.Queue)
	v.atLeast(p+".prefetch", s.Prefetch, 1)
	if s.QueueType != "" {
		v.oneOf(p+".queue_type", s.QueueType, "quorum", "classic")
	}
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

func (r *RabbitMQSink) delivery() (*Duration, *Retry) { return &r.Timeout, &r.Retry }
func (*RabbitMQSink) applyDefaults()                  {}

func (r *RabbitMQSink) validate(v *validator, p string) {
	v.brokerURL(p+".url", r.URL, "amqp", "amqps")
	if r.Exchange == "" && r.RoutingKey == "" {
		v.report(p+".routing_key", nil, "is required with the default exchange (it names the queue)")
	}
}

func (r *RabbitMQSink) feeds(s Source) (string, bool) {
	if s.RabbitMQ == nil {
		return "", false
	}
	if sameServer(r.URL, s.RabbitMQ.URL) && r.RoutingKey == s.RabbitMQ.Queue {
		if r.Exchange == "" {
			return fmt.Sprintf("to rabbitmq queue %q", s.RabbitMQ.Queue), true
		}
		return fmt.Sprintf("to rabbitmq exchange %q with routing key %q (likely bound to queue %q)",
			r.Exchange, r.RoutingKey, s.RabbitMQ.Queue), true
	}
	return "", true
}
