package assemble

import (
	"log/slog"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/rocketmq"
	"github.com/ferrydev/ferry/sinks"
	rocketsink "github.com/ferrydev/ferry/sinks/rocketmq"
)

func rocketmqSource(c *config.RocketMQSource, t *config.Trigger, log *slog.Logger) (poller.Source, error) {
	return rocketmq.New(rocketmq.Config{
		NameServers: c.NameServers, Topic: c.Topic, Group: c.Group,
		Tags: c.Tags, Start: t.Start, Orderly: t.Concurrency == 1,
		// Fewer messages in flight than the workers' batches would leave
		// them waiting out their window.
		InFlight: t.Batch.Size * t.Concurrency, Logger: log,
	})
}

// rocketmqSink shares one producer per producer group and name servers.
func rocketmqSink(c *config.RocketMQSink, prods *Producers, log *slog.Logger) (sinks.Sink, error) {
	p, err := shared(prods, "rocketmq", c.Group+"@"+addrKey(c.NameServers), func() (*rocketsink.Producer, error) {
		return rocketsink.NewProducer(rocketsink.ProducerConfig{NameServers: c.NameServers, Group: c.Group, Logger: log})
	})
	if err != nil {
		return nil, err
	}
	return p.Sink(c.Topic, c.Tag), nil
}
