package rocketmq

import (
	"log/slog"

	brokerrmq "github.com/ferrydev/ferry/internal/brokers/rocketmq"
)

// SetClientLogger routes the RocketMQ client library's process-wide
// logging to l: its errors become warnings, its warnings debug records, and
// its info and debug chatter is dropped. New calls it with the Source's
// Logger (and sinks/rocketmq's NewProducer with its own); call it earlier
// to silence the library's admin clients too.
func SetClientLogger(l *slog.Logger) { brokerrmq.SetClientLogger(l) }
