package assemble

import (
	"log/slog"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/kafka"
	"github.com/ferrydev/ferry/sinks"
	kafkasink "github.com/ferrydev/ferry/sinks/kafka"
)

func kafkaSource(c *config.KafkaSource, t *config.Trigger, log *slog.Logger) (poller.Source, error) {
	return kafka.New(kafka.Config{Brokers: c.Brokers, Topic: c.Topic, Group: c.Group, Start: t.Start, Logger: log})
}

// kafkaSink shares one producer per set of brokers.
func kafkaSink(c *config.KafkaSink, prods *Producers, log *slog.Logger) (sinks.Sink, error) {
	p, err := shared(prods, "kafka", addrKey(c.Brokers), func() (*kafkasink.Producer, error) {
		return kafkasink.NewProducer(kafkasink.ProducerConfig{Brokers: c.Brokers, Logger: log})
	})
	if err != nil {
		return nil, err
	}
	return p.Sink(c.Topic), nil
}
