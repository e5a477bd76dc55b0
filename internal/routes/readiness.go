package routes

import (
	"encoding/json"
	"net/http"
)

// Readiness is what GET /readyz?verbose=1 reports: the node's own
// readiness (the status /readyz answers) and the state of what it depends
// on. Triggers are listed but do not decide readiness: a broker that is
// unreachable stops its triggers, not the API, and taking every node out
// of a load balancer because a shared broker is down would only add an
// outage of the task API to it.
type Readiness struct {
	// Store is "ok" while the task store answers, else "unavailable".
	Store string `json:"store"`
	// Triggers are the node's triggers: the broker triggers, then the
	// timer triggers, each in config order.
	Triggers []TriggerState `json:"triggers"`
}

// TriggerState is one trigger's state.
type TriggerState struct {
	Name     string `json:"name"`
	Function string `json:"function"`
	// State is "connected" while its source is connected to its broker
	// (a timer: while it runs), else "disconnected" (before its first
	// connect, while reconnecting, after it stopped).
	State string `json:"state"`
}

// readinessBody is the JSON of /readyz?verbose=1.
type readinessBody struct {
	Status string `json:"status"` // "ready" or "not_ready"
	// Error says why the node is not ready (not_ready only), as every
	// error answer does: code not_ready.
	Error *errorBody `json:"error,omitempty"`
	Readiness
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeReadiness writes the verbose readiness report: 200 when notReady
// is nil, else 503.
func writeReadiness(w http.ResponseWriter, notReady error, r Readiness) {
	body := readinessBody{Status: "ready", Readiness: r}
	code := http.StatusOK
	if notReady != nil {
		body.Status, code = "not_ready", http.StatusServiceUnavailable
		body.Error = &errorBody{Code: "not_ready", Message: notReady.Error()}
	}
	if body.Triggers == nil {
		body.Triggers = []TriggerState{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
