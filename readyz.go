package ferry

import "github.com/ferrydev/ferry/internal/routes"

// readinessDetail is the report of /readyz?verbose=1: the store's state
// and each trigger's. Triggers do not decide readiness (see
// routes.Readiness): a disconnected trigger is listed, not a 503.
func (s *Server) readinessDetail() routes.Readiness {
	r := routes.Readiness{Store: "ok", Triggers: make([]routes.TriggerState, 0, len(s.triggers.list))}
	if h, ok := s.queue.(interface{ Healthy() bool }); ok && !h.Healthy() {
		r.Store = "unavailable"
	}
	for _, p := range s.triggers.list {
		state := "disconnected"
		if p.Connected() {
			state = "connected"
		}
		r.Triggers = append(r.Triggers, routes.TriggerState{Name: p.Name(), Function: p.Function(), State: state})
	}
	return r
}
