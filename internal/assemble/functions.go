// Package assemble builds Ferry's parts from a validated config: the
// functions with their backends and destinations (Functions), the triggers'
// pollers (Triggers), and the broker producers the destinations share
// (Producers). Each broker kind is wired in one place, the kinds table
// (kinds.go).
package assemble

import (
	"fmt"
	"log/slog"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/dispatcher/backend"
	"github.com/ferrydev/ferry/wire"
)

// Functions resolves every configured function: backend, retry policy
// and destinations. registered holds the in-process Go backends
// (ferry.WithFunction), which replace a function's configured backend.
// MQ destinations take their producer from prods.
func Functions(cfg *config.Config, registered map[wire.Lane]dispatcher.Backend, prods *Producers, log *slog.Logger) ([]*dispatcher.Function, error) {
	fns := make([]*dispatcher.Function, 0, len(cfg.Functions))
	for _, f := range cfg.Functions {
		lane := wire.Lane{Tenant: f.Tenant, Function: f.Name}
		b, err := buildBackend(f, registered[lane])
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", lane, err)
		}
		fn := &dispatcher.Function{
			Lane: lane, Backend: b, Timeout: f.Backend.Timeout(),
			MaxConcurrency: f.MaxConcurrency, Retry: retryPolicy(f.Retry),
		}
		if fn.OnSuccess, err = buildDestinations("on_success", f.Destinations.OnSuccess, prods, log); err != nil {
			return nil, fmt.Errorf("function %s: %w", lane, err)
		}
		if fn.OnFailure, err = buildDestinations("on_failure", f.Destinations.OnFailure, prods, log); err != nil {
			return nil, fmt.Errorf("function %s: %w", lane, err)
		}
		fns = append(fns, fn)
	}
	return fns, nil
}

func buildBackend(f config.Function, registered dispatcher.Backend) (dispatcher.Backend, error) {
	if registered != nil {
		return registered, nil
	}
	switch b := f.Backend; {
	case b.HTTP != nil:
		return backend.NewHTTP(backend.HTTPConfig{
			URL: b.HTTP.URL, Timeout: b.HTTP.Timeout.D(), Headers: b.HTTP.Headers, MaxConns: f.MaxConcurrency,
		})
	case b.Exec != nil:
		return backend.NewExec(backend.ExecConfig{
			Command: b.Exec.Command, Env: b.Exec.Env, Dir: b.Exec.Dir, User: b.Exec.User, Timeout: b.Exec.Timeout.D(),
		})
	case b.Go != nil:
		return nil, fmt.Errorf("backend go: no Go function registered (use ferry.WithFunction)")
	}
	return nil, fmt.Errorf("no backend configured")
}

// buildDestinations builds the destinations of one list ("on_success",
// ...). Each has one timeout per attempt, applied once, by the dispatcher:
// the sink's configured timeout (config defaults it to
// config.DefaultWebhookTimeout); the log sink, which cannot fail, has
// none. The sinks themselves add no timeout of their own.
func buildDestinations(list string, ds []config.Destination, prods *Producers, log *slog.Logger) ([]dispatcher.Destination, error) {
	out := make([]dispatcher.Destination, 0, len(ds))
	for i, d := range ds {
		dest := dispatcher.Destination{
			Name: fmt.Sprintf("%s[%d]", list, i), Kind: d.Kind(),
			Retry: retryPolicy(defaultSinkRetry),
		}
		if timeout, retry := d.Delivery(); timeout != nil {
			dest.Timeout, dest.Retry = timeout.D(), retryPolicy(*retry)
		}
		sink, err := buildSink(d, prods, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dest.Name, err)
		}
		dest.Sink = sink
		out = append(out, dest)
	}
	return out, nil
}

// defaultSinkRetry is the redelivery policy of sinks without their own.
var defaultSinkRetry = config.Retry{
	MaxAttempts:     config.DefaultSinkMaxAttempts,
	InitialInterval: config.Duration(config.DefaultInitialInterval),
	MaxInterval:     config.Duration(config.DefaultMaxInterval),
	Multiplier:      config.DefaultMultiplier,
	MaxAge:          config.Duration(config.DefaultSinkMaxAge),
}

func retryPolicy(r config.Retry) dispatcher.RetryPolicy {
	return dispatcher.RetryPolicy{
		MaxAttempts:     r.MaxAttempts,
		InitialInterval: r.InitialInterval.D(),
		MaxInterval:     r.MaxInterval.D(),
		Multiplier:      r.Multiplier,
		MaxAge:          r.MaxAge.D(),
		Jitter:          0.5,
	}
}
