package assemble

import (
	"log/slog"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/sinks"
	logsink "github.com/ferrydev/ferry/sinks/log"
	"github.com/ferrydev/ferry/sinks/webhook"
)

// webhookSink builds a webhook sink without a timeout of its own: the
// destination's timeout (dispatcher.Destination.Timeout) bounds each
// attempt.
func webhookSink(c *config.WebhookSink, _ *Producers, _ *slog.Logger) (sinks.Sink, error) {
	return webhook.New(webhook.Config{URL: c.URL, Secret: c.Secret})
}

func logSink(_ *config.LogSink, _ *Producers, log *slog.Logger) (sinks.Sink, error) {
	return logsink.New(log), nil
}
