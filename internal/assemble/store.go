package assemble

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
	"github.com/ferrydev/ferry/config"
)

// Store opens the task store the config's store section chooses; the
// Server sees only async.Queue (and async.Upkeeper when the store has
// background work), so another store plugs in here alone.
func Store(c config.Store, log *slog.Logger) (async.Queue, error) {
	switch {
	case c.Embedded != nil:
		q, err := embedded.Open(c.Embedded.Path, embedded.Options{Retention: c.Retention.D(), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", c.Embedded.Path, err)
		}
		return q, nil
	case c.Redis != nil:
		return nil, errors.New("store.redis: the Redis store is not available yet; use store.embedded")
	}
	return nil, errors.New("no store configured")
}

// StoreName describes the configured store for the log.
func StoreName(c config.Store) string {
	if c.Embedded != nil {
		return "embedded:" + c.Embedded.Path
	}
	return "redis"
}
