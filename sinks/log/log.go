// Package log is the sink that writes outcomes to a structured log: useful
// as a destination of last resort and in development. It never fails.
package log

import (
	"context"
	"log/slog"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/wire"
)

// Sink logs each outcome as one record: at info for a success, at warn for
// a failure (type ferry.task.failed, or any outcome carrying an error).
type Sink struct {
	l *slog.Logger
}

var _ sinks.Sink = (*Sink)(nil)

// New returns a Sink writing to l. A nil l means slog.Default().
func New(l *slog.Logger) *Sink {
	if l == nil {
		l = slog.Default()
	}
	return &Sink{l: l}
}

// Deliver logs o with the attributes type, id, tenant, function, status,
// attempts, hops and, on failure, error_code. It always returns nil.
func (s *Sink) Deliver(ctx context.Context, o *wire.Outcome) error {
	if o == nil {
		return nil
	}
	level := slog.LevelInfo
	if o.Type == wire.TypeFailed || o.Error != nil {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("type", o.Type),
		slog.String("id", o.ID),
		slog.String("tenant", o.Tenant),
		slog.String("function", o.Function),
		slog.String("status", o.Status),
		slog.Int("attempts", o.Attempts),
		slog.Int("hops", o.Hops),
	}
	if o.Error != nil {
		attrs = append(attrs, slog.String("error_code", o.Error.Code))
	}
	s.l.LogAttrs(ctx, level, "ferry outcome", attrs...)
	return nil
}
