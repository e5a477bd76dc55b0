package routes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ferrydev/ferry/async"
)

// Triggers is what the trigger endpoints need of the node's triggers.
type Triggers interface {
	// List returns every trigger of the node, in config order.
	List() []Trigger
	// SetPaused stores that the trigger name is paused (or running),
	// applies it on this node, and returns the trigger. The name is one
	// that List returned.
	SetPaused(ctx context.Context, name string, paused bool) (Trigger, error)
}

// Trigger states, as GET /v1/triggers reports them.
const (
	// TriggerRunning: not paused, and its source is connected (a timer:
	// ticking).
	TriggerRunning = "running"
	// TriggerPaused: paused through the API; it fetches (or ticks)
	// nothing until resumed, whatever its connection.
	TriggerPaused = "paused"
	// TriggerDisconnected: not paused, and its source is not connected
	// (before its first connect, or while it reconnects).
	TriggerDisconnected = "disconnected"
)

// Trigger is one trigger as the API shows it.
type Trigger struct {
	Name string `json:"name"`
	// Tenant is the tenant of the trigger's function, which owns it.
	Tenant   string `json:"tenant"`
	Function string `json:"function"`
	// Kind is the source kind: kafka, rocketmq, rabbitmq, redis, timer.
	Kind string `json:"kind"`
	// State is TriggerRunning, TriggerPaused or TriggerDisconnected.
	State  string `json:"state"`
	Paused bool   `json:"paused"`
	// Connected reports whether the source is connected, paused or not.
	Connected bool `json:"connected"`
	// Lag is how many messages the consumer is behind, as last read
	// from the broker; absent while unknown.
	Lag *int64 `json:"lag,omitempty"`
	// LastError is the trigger's current error; absent when none.
	LastError string `json:"last_error,omitempty"`
	// NextTick is a timer's next scheduled tick (RFC 3339, UTC).
	NextTick *time.Time `json:"next_tick,omitempty"`
}

// triggerAPI serves /v1/triggers: a tenant's key sees and manages its
// tenant's triggers (those of its functions), an admin key every
// trigger; another tenant's trigger is a 404, as an unknown one.
type triggerAPI struct {
	auth     *async.Auth
	triggers Triggers
	log      *slog.Logger
}

// register mounts GET /v1/triggers, GET /v1/triggers/{name} and POST
// /v1/triggers/{name}/pause and /resume.
func (a *triggerAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("/v1/triggers", a.authed(a.list, http.MethodGet))
	mux.HandleFunc("/v1/triggers/{name}", a.authed(a.get, http.MethodGet))
	mux.HandleFunc("/v1/triggers/{name}/pause", a.authed(a.setPaused(true), http.MethodPost))
	mux.HandleFunc("/v1/triggers/{name}/resume", a.authed(a.setPaused(false), http.MethodPost))
}

type identified func(w http.ResponseWriter, r *http.Request, id async.Identity)

// authed checks the method, then the bearer key.
func (a *triggerAPI) authed(h identified, methods ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		allowed := false
		for _, m := range methods {
			allowed = allowed || r.Method == m
		}
		if !allowed {
			async.WriteMethodNotAllowed(w, r, methods...)
			return
		}
		id := a.auth.Identify(r)
		if !id.Known() {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
			async.WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or unknown API key: send Authorization: Bearer <api-key>")
			return
		}
		h(w, r, id)
	}
}

func (a *triggerAPI) list(w http.ResponseWriter, _ *http.Request, id async.Identity) {
	out := []Trigger{}
	for _, t := range a.triggers.List() {
		if id.Sees(t.Tenant) {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Triggers []Trigger `json:"triggers"`
	}{out})
}

// find returns the trigger the path names if id sees it, else answers 404.
func (a *triggerAPI) find(w http.ResponseWriter, r *http.Request, id async.Identity) (Trigger, bool) {
	name := r.PathValue("name")
	for _, t := range a.triggers.List() {
		if t.Name == name && id.Sees(t.Tenant) {
			return t, true
		}
	}
	async.WriteError(w, http.StatusNotFound, "trigger_not_found", fmt.Sprintf("trigger %q not found", name))
	return Trigger{}, false
}

func (a *triggerAPI) get(w http.ResponseWriter, r *http.Request, id async.Identity) {
	if t, ok := a.find(w, r, id); ok {
		writeJSON(w, http.StatusOK, t)
	}
}

// setPaused answers pause (true) or resume (false): 200 with the trigger
// once its state is stored and applied on this node.
func (a *triggerAPI) setPaused(paused bool) identified {
	return func(w http.ResponseWriter, r *http.Request, id async.Identity) {
		t, ok := a.find(w, r, id)
		if !ok {
			return
		}
		got, err := a.triggers.SetPaused(r.Context(), t.Name, paused)
		if err != nil {
			a.log.Error("cannot change a trigger's state", "trigger", t.Name, "paused", paused, "error", err)
			w.Header().Set("Retry-After", "1")
			async.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the trigger state cannot be stored now; retry later")
			return
		}
		if got.Paused != t.Paused {
			a.log.Info("trigger state changed through the API", "trigger", t.Name, "tenant", t.Tenant, "paused", paused, "admin", id.Admin)
		}
		writeJSON(w, http.StatusOK, got)
	}
}

// noTriggers is the Triggers of a node without any.
type noTriggers struct{}

func (noTriggers) List() []Trigger { return nil }

func (noTriggers) SetPaused(_ context.Context, name string, _ bool) (Trigger, error) {
	return Trigger{}, fmt.Errorf("no trigger %q", name)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}
