package async

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Auth maps bearer API keys to tenants. Only SHA-256 hashes of the keys are
// kept, and a presented key is compared with every stored hash in constant
// time, so neither the keys nor their existence leak through memory dumps or
// timing.
type Auth struct {
	entries []authEntry
}

type authEntry struct {
	hash   [sha256.Size]byte
	tenant string
}

// NewAuth builds an Auth from tenant name → API keys.
func NewAuth(keys map[string][]string) *Auth {
	a := &Auth{}
	for tenant, ks := range keys {
		for _, k := range ks {
			a.entries = append(a.entries, authEntry{hash: sha256.Sum256([]byte(k)), tenant: tenant})
		}
	}
	return a
}

// Tenant returns the tenant named by the request's bearer key, or "".
func (a *Auth) Tenant(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	tenant := ""
	for _, e := range a.entries { // no early exit: constant time in the key
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			tenant = e.tenant
		}
	}
	return tenant
}
