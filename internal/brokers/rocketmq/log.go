package rocketmq

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// The client library logs through a process-wide logrus logger at info
// level by default (several lines per second per queue). SetClientLogger
// replaces it once with clientLog, which forwards the client's errors as
// warnings and its warnings as debug records to the logger given last
// (the most recently created Source or Producer), and drops its info and
// debug chatter.
var (
	clientLogOnce sync.Once
	clientLogger  atomic.Pointer[slog.Logger]
)

// SetClientLogger routes the client library's process-wide logging to l:
// its errors become warnings, its warnings debug records, and its info and
// debug chatter is dropped. The logging is process-wide: poller/rocketmq's
// New and sinks/rocketmq's NewProducer call it with their Logger.
func SetClientLogger(l *slog.Logger) {
	clientLogger.Store(l.With("component", "rocketmq-client"))
	clientLogOnce.Do(func() { rlog.SetLogger(clientLog{}) })
}

// clientLog implements rlog.Logger.
type clientLog struct{}

func (clientLog) log(level slog.Level, msg string, fields map[string]any) {
	l := clientLogger.Load()
	if l == nil || !l.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		attrs = append(attrs, k, v)
	}
	l.Log(context.Background(), level, msg, attrs...)
}

func (clientLog) Debug(string, map[string]any) {}
func (clientLog) Info(string, map[string]any)  {}
func (c clientLog) Warning(msg string, fields map[string]any) {
	c.log(slog.LevelDebug, msg, fields)
}
func (c clientLog) Error(msg string, fields map[string]any) { c.log(slog.LevelWarn, msg, fields) }

// Fatal only logs: logrus' Fatal would exit the process.
func (c clientLog) Fatal(msg string, fields map[string]any) { c.log(slog.LevelError, msg, fields) }
func (clientLog) Level(string)                              {}
func (clientLog) OutputPath(string) error                   { return nil }
