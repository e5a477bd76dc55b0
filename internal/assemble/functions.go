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
	"github.com/ferrydev/ferry/sinks"
	logsink "github.com/ferrydev/ferry/sinks/log"
	"github.com/ferrydev/ferry/sinks/webhook"
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
			Command: b.Exec.Command, Env: b.Exec.Env, Dir: b.Exec.Dir, Timeout: b.Exec.Timeout.D(),
		})
	case b.Go != nil:
		return nil, fmt.Errorf("backend go: no Go function registered (use ferry.WithFunction)")
	}
	return nil, fmt.Errorf("no backend configured")
}

func buildDestinations(kind string, ds []config.Destination, prods *Producers, log *slog.Logger) ([]dispatcher.Destination, error) {
	out := make([]dispatcher.Destination, 0, len(ds))
	for i, d := range ds {
		dest := dispatcher.Destination{
			Name: fmt.Sprintf("%s[%d]", kind, i), Kind: d.Kind(),
			Retry:   retryPolicy(defaultSinkRetry),
			Timeout: config.DefaultWebhookTimeout,
		}
		if timeout, retry := d.Delivery(); timeout != nil {
			dest.Timeout, dest.Retry = timeout.D(), retryPolicy(*retry)
		}
		var (
			sink sinks.Sink
			err  error
		)
		switch {
		case d.Webhook != nil:
			sink, err = webhook.New(webhook.Config{URL: d.Webhook.URL, Secret: d.Webhook.Secret, Timeout: d.Webhook.Timeout.D()})
		case d.Log != nil:
			sink = logsink.New(log)
		default:
			sink, err = prods.sink(d)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dest.Name, err)
		}
		if sink == nil {
			return nil, fmt.Errorf("%s: no sink configured", dest.Name)
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
