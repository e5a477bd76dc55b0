package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydev/ferry/internal/routes"
)

// trigger is what the server runs and manages of one trigger: a broker
// poller (poller.Poller) or a timer. Lag and the next tick are optional
// (lagger, ticker).
type trigger interface {
	Name() string
	// Function is the name of the function the trigger invokes.
	Function() string
	// Kind is the source kind: kafka, rocketmq, rabbitmq, redis, timer.
	Kind() string
	// Run runs the trigger until ctx ends.
	Run(ctx context.Context) error
	// Connected reports whether the trigger reaches its source now.
	Connected() bool
	// SetPaused pauses or resumes the trigger; Paused reports it.
	SetPaused(paused bool)
	Paused() bool
	// LastError is the trigger's current error, "" when none.
	LastError() string
}

// lagger is a trigger that knows its consumer's lag.
type lagger interface {
	Lag() (n int64, known bool)
}

// ticker is a trigger that fires on a schedule.
type ticker interface {
	NextTick() time.Time
}

// How the node keeps its triggers' paused state in line with the stored
// one.
const (
	// triggerSync is how often every node reads the stored states: a pause
	// made through another node takes effect here within about this long.
	triggerSync = time.Second
	// triggerStateTimeout bounds one read or write of the stored states.
	triggerStateTimeout = 2 * time.Second
)

// triggerSet runs the node's triggers' paused state: it applies the
// stored state before any trigger runs and then every triggerSync, and
// pauses or resumes a trigger for the API (the stored state first, then
// the trigger here). It implements routes.Triggers.
type triggerSet struct {
	list   []managed // config order
	byName map[string]*managed
	states TriggerStates
	paused *prometheus.GaugeVec // ferry_trigger_paused
	log    *slog.Logger

	// mu is held across each read of the stored states and its
	// application, and across each API write and its application, so a
	// read taken before a write is never applied after it.
	mu     sync.Mutex
	failed bool // the last read failed (logged once until it works again)
}

// managed is a trigger and its tenant (its function's).
type managed struct {
	trigger
	tenant string
}

// newTriggerSet manages ts, whose tenants tenantOf names, with the paused
// state kept in states; it registers ferry_trigger_paused with reg.
func newTriggerSet(ts []trigger, tenantOf func(name string) string, states TriggerStates, reg prometheus.Registerer, log *slog.Logger) *triggerSet {
	s := &triggerSet{
		byName: make(map[string]*managed, len(ts)),
		states: states,
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_trigger_paused",
			Help: "1 while the trigger is paused (POST /v1/triggers/{name}/pause, kept in the store for every node), 0 while it runs.",
		}, []string{"trigger"}),
		log: log,
	}
	reg.MustRegister(s.paused)
	s.list = make([]managed, len(ts))
	for i, t := range ts {
		s.list[i] = managed{trigger: t, tenant: tenantOf(t.Name())}
		s.byName[t.Name()] = &s.list[i]
		s.paused.WithLabelValues(t.Name()).Set(0)
	}
	return s
}

// load applies the stored state before the triggers run, so that a
// trigger paused before a restart reads nothing after it. When the
// states cannot be read, every trigger is held paused until a later sync
// reads them.
func (s *triggerSet) load(ctx context.Context) {
	if len(s.list) == 0 {
		return
	}
	if err := s.sync(ctx); err != nil {
		s.log.Warn("cannot read which triggers are paused: every trigger is held until the store answers", "error", err)
		for i := range s.list {
			s.set(&s.list[i], true)
		}
	}
}

// run syncs every triggerSync until ctx ends.
func (s *triggerSet) run(ctx context.Context) {
	if len(s.list) == 0 {
		return
	}
	t := time.NewTicker(triggerSync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.sync(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !s.failed:
			s.failed = true
			s.log.Warn("cannot read which triggers are paused; the triggers keep their state until the store answers", "error", err)
		case err == nil && s.failed:
			s.failed = false
			s.log.Info("reading which triggers are paused again")
		}
	}
}

// sync reads the stored states and applies them.
func (s *triggerSet) sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, triggerStateTimeout)
	defer cancel()
	paused, err := s.states.PausedTriggers(ctx)
	if err != nil {
		return fmt.Errorf("read the paused triggers: %w", err)
	}
	for i := range s.list {
		m := &s.list[i]
		if want := paused[m.Name()]; m.Paused() != want {
			s.set(m, want)
			s.log.Info("trigger state taken from the store", "trigger", m.Name(), "paused", want)
		}
	}
	return nil
}

// set pauses or resumes m here.
func (s *triggerSet) set(m *managed, paused bool) {
	m.SetPaused(paused)
	v := 0.0
	if paused {
		v = 1
	}
	s.paused.WithLabelValues(m.Name()).Set(v)
}

// errNoTrigger: SetPaused of a name that is no trigger.
var errNoTrigger = errors.New("no such trigger")

// List returns the node's triggers, in config order.
func (s *triggerSet) List() []routes.Trigger {
	out := make([]routes.Trigger, len(s.list))
	for i := range s.list {
		out[i] = view(&s.list[i])
	}
	return out
}

// SetPaused stores that the trigger name is paused (or running), then
// applies it here, and returns the trigger; the other nodes apply it at
// their next sync.
func (s *triggerSet) SetPaused(ctx context.Context, name string, paused bool) (routes.Trigger, error) {
	m := s.byName[name]
	if m == nil {
		return routes.Trigger{}, fmt.Errorf("trigger %q: %w", name, errNoTrigger)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, triggerStateTimeout)
	defer cancel()
	if err := s.states.SetTriggerPaused(ctx, name, paused); err != nil {
		return routes.Trigger{}, fmt.Errorf("store the state of trigger %q: %w", name, err)
	}
	s.set(m, paused)
	return view(m), nil
}

// view is m as the API shows it.
func view(m *managed) routes.Trigger {
	v := routes.Trigger{
		Name: m.Name(), Tenant: m.tenant, Function: m.Function(), Kind: m.Kind(),
		Paused: m.Paused(), Connected: m.Connected(), LastError: m.LastError(),
	}
	switch {
	case v.Paused:
		v.State = routes.TriggerPaused
	case v.Connected:
		v.State = routes.TriggerRunning
	default:
		v.State = routes.TriggerDisconnected
	}
	if l, ok := m.trigger.(lagger); ok {
		if n, known := l.Lag(); known {
			v.Lag = &n
		}
	}
	if tk, ok := m.trigger.(ticker); ok {
		if next := tk.NextTick(); !next.IsZero() {
			next = next.UTC()
			v.NextTick = &next
		}
	}
	return v
}
