package assemble

import (
	"fmt"
	"log/slog"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/wire"
)

// Triggers builds a Poller per configured broker trigger (Timers builds
// the timer triggers); their on_failure destinations take their
// producers from prods.
func Triggers(cfg *config.Config, d *dispatcher.Dispatcher, prods *Producers, m *poller.Metrics, log *slog.Logger) ([]*poller.Poller, error) {
	var out []*poller.Poller
	for i := range cfg.Triggers {
		t := &cfg.Triggers[i]
		if t.Source.Timer != nil {
			continue
		}
		f := cfg.FunctionOf(t)
		if f == nil {
			return nil, fmt.Errorf("trigger %s: function %q not found", t.Name, t.Function)
		}
		fn := d.Function(wire.Lane{Tenant: f.Tenant, Function: f.Name})
		tlog := log.With("trigger", t.Name)
		src, err := buildSource(t, tlog)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		pc := poller.Config{
			Name: t.Name, Kind: t.Source.Kind(), Source: src, Dispatcher: d, Function: fn,
			BatchSize: t.Batch.Size, BatchWindow: t.Batch.Window.D(), BisectOnError: t.Batch.BisectOnError,
			Concurrency:  t.Concurrency,
			DrainTimeout: cfg.Server.ShutdownTimeout.D(), Metrics: m, Logger: log,
		}
		if t.Retry != nil {
			r := retryPolicy(*t.Retry)
			pc.Retry = &r
		}
		if len(t.Destinations.OnFailure) > 0 {
			if pc.OnFailure, err = buildDestinations("triggers["+t.Name+"].on_failure", t.Destinations.OnFailure, prods, log); err != nil {
				return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
			}
		}
		if t.Filter != nil {
			pc.Filter = &poller.Filter{Headers: lists(t.Filter.Headers), JSON: lists(t.Filter.JSON)}
		}
		p, err := poller.New(pc)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func lists(m map[string]config.StringList) map[string][]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
