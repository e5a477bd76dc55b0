package assemble

import (
	"log/slog"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/redisstream"
	"github.com/ferrydev/ferry/sinks"
	redissink "github.com/ferrydev/ferry/sinks/redis"
)

func redisSource(c *config.RedisSource, t *config.Trigger, log *slog.Logger) (poller.Source, error) {
	return redisstream.New(redisstream.Config{
		URL: c.URL, Stream: c.Stream, Group: c.Group, Consumer: c.Consumer,
		Start: t.Start, ClaimIdle: c.ClaimIdle.D(), Logger: log,
	})
}

// redisSink shares one client (connection pool) per URL.
func redisSink(c *config.RedisSink, prods *Producers, log *slog.Logger) (sinks.Sink, error) {
	cl, err := shared(prods, "redis", c.URL, func() (*redissink.Client, error) {
		return redissink.NewClient(redissink.ClientConfig{URL: c.URL, Logger: log})
	})
	if err != nil {
		return nil, err
	}
	return cl.Sink(c.Stream, c.MaxLen), nil
}
