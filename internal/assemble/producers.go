package assemble

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/sinks"
	kafkasink "github.com/ferrydev/ferry/sinks/kafka"
	rabbitsink "github.com/ferrydev/ferry/sinks/rabbitmq"
	redissink "github.com/ferrydev/ferry/sinks/redis"
	rocketsink "github.com/ferrydev/ferry/sinks/rocketmq"
)

// Producers holds the long-lived broker clients of the MQ destinations:
// one per broker connection, shared by every destination that uses it
// (a producer is never made per message, nor per destination).
type Producers struct {
	log      *slog.Logger
	kafka    map[string]*kafkasink.Producer
	rocketmq map[string]*rocketsink.Producer
	rabbitmq map[string]*rabbitsink.Publisher
	redis    map[string]*redissink.Client
	opened   []opened // in opening order
}

// NewProducers returns an empty set of producers logging to log.
func NewProducers(log *slog.Logger) *Producers {
	return &Producers{
		log:      log,
		kafka:    map[string]*kafkasink.Producer{},
		rocketmq: map[string]*rocketsink.Producer{},
		rabbitmq: map[string]*rabbitsink.Publisher{},
		redis:    map[string]*redissink.Client{},
	}
}

// addrKey names a set of broker addresses independently of their order.
func addrKey(addrs []string) string {
	s := slices.Clone(addrs)
	slices.Sort(s)
	return strings.Join(s, ",")
}

// sink returns the MQ sink of d, sharing the producer of its connection;
// nil, nil when d is not an MQ destination.
func (p *Producers) sink(d config.Destination) (sinks.Sink, error) {
	switch {
	case d.Kafka != nil:
		k := addrKey(d.Kafka.Brokers)
		if p.kafka[k] == nil {
			c, err := kafkasink.NewProducer(kafkasink.ProducerConfig{Brokers: d.Kafka.Brokers, Logger: p.log})
			if err != nil {
				return nil, err
			}
			p.kafka[k] = c
			p.opened = append(p.opened, opened{"kafka", c})
		}
		return p.kafka[k].Sink(d.Kafka.Topic), nil
	case d.RocketMQ != nil:
		k := d.RocketMQ.Group + "@" + addrKey(d.RocketMQ.NameServers)
		if p.rocketmq[k] == nil {
			c, err := rocketsink.NewProducer(rocketsink.ProducerConfig{
				NameServers: d.RocketMQ.NameServers, Group: d.RocketMQ.Group, Logger: p.log,
			})
			if err != nil {
				return nil, err
			}
			p.rocketmq[k] = c
			p.opened = append(p.opened, opened{"rocketmq", c})
		}
		return p.rocketmq[k].Sink(d.RocketMQ.Topic, d.RocketMQ.Tag), nil
	case d.RabbitMQ != nil:
		k := d.RabbitMQ.URL
		if p.rabbitmq[k] == nil {
			c, err := rabbitsink.NewPublisher(rabbitsink.PublisherConfig{URL: d.RabbitMQ.URL, Logger: p.log})
			if err != nil {
				return nil, err
			}
			p.rabbitmq[k] = c
			p.opened = append(p.opened, opened{"rabbitmq", c})
		}
		return p.rabbitmq[k].Sink(d.RabbitMQ.Exchange, d.RabbitMQ.RoutingKey), nil
	case d.Redis != nil:
		k := d.Redis.URL
		if p.redis[k] == nil {
			c, err := redissink.NewClient(redissink.ClientConfig{URL: d.Redis.URL, Logger: p.log})
			if err != nil {
				return nil, err
			}
			p.redis[k] = c
			p.opened = append(p.opened, opened{"redis", c})
		}
		return p.redis[k].Sink(d.Redis.Stream, d.Redis.MaxLen), nil
	}
	return nil, nil
}

// Close closes every producer (after the outbox and the triggers stopped).
func (p *Producers) Close() error {
	var errs []error
	for _, c := range p.opened {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s producer: %w", c.kind, err))
		}
	}
	p.opened = nil
	return errors.Join(errs...)
}

// opened is a producer to close, with its kind for the error message.
type opened struct {
	kind string
	io.Closer
}
