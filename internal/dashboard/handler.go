package dashboard

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/config"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard's page and GET /v1/stats.
type Handler struct {
	auth    *async.Auth
	sampler *Sampler
	cat     catalog
	assets  http.Handler
}

// New returns the Handler of cfg's tenants, functions and triggers, whose
// figures come from sampler and whose keys auth checks.
func New(cfg *config.Config, auth *async.Auth, sampler *Sampler) *Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	return &Handler{auth: auth, sampler: sampler, cat: catalogOf(cfg), assets: http.StripPrefix("/ui/", http.FileServerFS(sub))}
}

// Register mounts GET /ui/ (the page and its assets) and GET /v1/stats.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /ui/", func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		// Everything the page runs is its own: no inline script, nothing
		// from elsewhere, not framed; the key it holds never leaves it.
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.assets.ServeHTTP(w, r)
	})
	mux.HandleFunc("/v1/stats", h.stats)
}

// stats answers GET /v1/stats: a tenant key sees its tenant, an admin key
// every tenant (or the one ?tenant= names).
func (h *Handler) stats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		async.WriteMethodNotAllowed(w, r, http.MethodGet)
		return
	}
	id := h.auth.Identify(r)
	if !id.Known() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
		async.WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or unknown API key: send Authorization: Bearer <api-key>")
		return
	}
	sees := id.Sees
	if only := r.URL.Query().Get("tenant"); only != "" {
		if !id.Sees(only) || !h.auth.HasTenant(only) {
			async.WriteError(w, http.StatusNotFound, "not_found", "no tenant "+only)
			return
		}
		sees = func(tenant string) bool { return tenant == only }
	}
	win, ok := h.sampler.snapshot()
	if !ok {
		w.Header().Set("Retry-After", "1")
		async.WriteError(w, http.StatusServiceUnavailable, "not_ready", "the first sample is not taken yet; retry in a second")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(h.cat.view(win, sees, id.Admin)) // the client went away
}
