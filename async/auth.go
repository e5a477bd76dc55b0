package async

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Auth maps bearer API keys to tenants, and admin keys to every tenant.
// Only SHA-256 hashes of the keys are kept, and a presented key is compared
// with every stored hash in constant time, so neither the keys nor their
// existence leak through memory dumps or timing.
type Auth struct {
	entries []authEntry
	tenants map[string]bool
}

type authEntry struct {
	hash   [sha256.Size]byte
	tenant string // "" for an admin key
}

// NewAuth builds an Auth from tenant name → API keys, and the admin keys
// (server.admin_keys) that may see and act for every tenant.
func NewAuth(keys map[string][]string, adminKeys ...string) *Auth {
	a := &Auth{tenants: map[string]bool{}}
	for tenant, ks := range keys {
		a.tenants[tenant] = true
		for _, k := range ks {
			a.entries = append(a.entries, authEntry{hash: sha256.Sum256([]byte(k)), tenant: tenant})
		}
	}
	for _, k := range adminKeys {
		a.entries = append(a.entries, authEntry{hash: sha256.Sum256([]byte(k))})
	}
	return a
}

// Tenant returns the tenant named by the request's bearer key, or "" for
// an unknown key or an admin key.
func (a *Auth) Tenant(r *http.Request) string {
	id := a.Identify(r)
	return id.Tenant
}

// Identity is who a request's bearer key names: a tenant, or an admin.
type Identity struct {
	Tenant string // the key's tenant; "" for an admin key or no key
	Admin  bool   // an admin key (server.admin_keys)
}

// Known reports whether the key named anyone.
func (id Identity) Known() bool { return id.Admin || id.Tenant != "" }

// Sees reports whether id may see tenant's data.
func (id Identity) Sees(tenant string) bool { return id.Admin || id.Tenant == tenant }

// Identify returns who the request's bearer key names.
func (a *Auth) Identify(r *http.Request) Identity {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return Identity{}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	var id Identity
	for _, e := range a.entries { // no early exit: constant time in the key
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			id = Identity{Tenant: e.tenant, Admin: e.tenant == ""}
		}
	}
	return id
}

// HasTenant reports whether tenant is configured.
func (a *Auth) HasTenant(tenant string) bool { return a.tenants[tenant] }

// TenantHeader names the tenant an admin key acts for on the task
// endpoints.
const TenantHeader = "Ferry-Tenant"
