package ferry

import (
	"context"
	"errors"
	"maps"
	"sync"
)

// TriggerStates stores which triggers are paused (POST
// /v1/triggers/{name}/pause), so that a pause holds across restarts and on
// every node of a service: each node applies the stored state before its
// triggers run and then every second. A trigger is named by its config
// name; one that is not stored as paused runs. The task stores keep it
// beside the tasks (async/embedded: the same Pebble directory;
// async/redisstore: one hash under the prefix), and New takes it from the
// store unless WithTriggerStates names another. async/queuetest's
// TestTriggerStates is the contract every implementation passes.
type TriggerStates interface {
	// PausedTriggers returns the paused triggers, each mapped to true;
	// the map is the caller's.
	PausedTriggers(ctx context.Context) (map[string]bool, error)
	// SetTriggerPaused records that the trigger name is paused (true) or
	// running (false), durably before it returns; setting the state a
	// trigger already has is no error. An empty name is an error.
	SetTriggerPaused(ctx context.Context, name string, paused bool) error
}

// WithTriggerStates keeps the triggers' paused state in s instead of the
// task store: for tests, and programs that embed Ferry with a state of
// their own.
func WithTriggerStates(s TriggerStates) Option {
	return func(o *options) { o.states = s }
}

// MemoryTriggerStates is a TriggerStates in memory: one process's, gone
// when it exits. The zero value is ready to use; it is safe for
// concurrent use.
type MemoryTriggerStates struct {
	mu     sync.Mutex
	paused map[string]bool
}

var _ TriggerStates = (*MemoryTriggerStates)(nil)

// errNoName: a trigger state without a trigger name.
var errNoName = errors.New("trigger states: empty trigger name")

// PausedTriggers returns a copy of the paused triggers.
func (m *MemoryTriggerStates) PausedTriggers(context.Context) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]bool, len(m.paused))
	maps.Copy(out, m.paused)
	return out, nil
}

// SetTriggerPaused records the state of the trigger name.
func (m *MemoryTriggerStates) SetTriggerPaused(_ context.Context, name string, paused bool) error {
	if name == "" {
		return errNoName
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !paused {
		delete(m.paused, name)
		return nil
	}
	if m.paused == nil {
		m.paused = map[string]bool{}
	}
	m.paused[name] = true
	return nil
}
