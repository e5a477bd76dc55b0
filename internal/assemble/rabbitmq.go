package assemble

import (
	"log/slog"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/rabbitmq"
	"github.com/ferrydev/ferry/sinks"
	rabbitsink "github.com/ferrydev/ferry/sinks/rabbitmq"
)

func rabbitmqSource(c *config.RabbitMQSource, _ *config.Trigger, log *slog.Logger) (poller.Source, error) {
	return rabbitmq.New(rabbitmq.Config{URL: c.URL, Queue: c.Queue, Prefetch: c.Prefetch, QueueType: c.QueueType, Logger: log})
}

// rabbitmqSink shares one publisher (connection) per URL.
func rabbitmqSink(c *config.RabbitMQSink, prods *Producers, log *slog.Logger) (sinks.Sink, error) {
	p, err := shared(prods, "rabbitmq", c.URL, func() (*rabbitsink.Publisher, error) {
		return rabbitsink.NewPublisher(rabbitsink.PublisherConfig{URL: c.URL, Logger: log})
	})
	if err != nil {
		return nil, err
	}
	return p.Sink(c.Exchange, c.RoutingKey), nil
}
