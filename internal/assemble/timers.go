package assemble

import (
	"fmt"
	"log/slog"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/timer"
)

// Timers builds a Timer per timer trigger (source timer); its ticks
// submit through sub, the path the API's submissions take.
func Timers(cfg *config.Config, sub timer.Submitter, m *timer.Metrics, clock timer.Clock, log *slog.Logger) ([]*timer.Timer, error) {
	var out []*timer.Timer
	for i := range cfg.Triggers {
		t := &cfg.Triggers[i]
		src := t.Source.Timer
		if src == nil {
			continue
		}
		f := cfg.FunctionOf(t)
		if f == nil {
			return nil, fmt.Errorf("trigger %s: function %q not found", t.Name, t.Function)
		}
		sched, err := src.Schedule()
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		tm, err := timer.New(timer.Config{
			Name: t.Name, Tenant: f.Tenant, Function: f.Name, Schedule: sched, Payload: src.Payload,
			CatchUp: timer.CatchUp(t.CatchUp), MaxLateness: t.MaxLateness.D(),
			Submitter: sub, Metrics: m, Logger: log, Clock: clock,
		})
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		out = append(out, tm)
	}
	return out, nil
}
