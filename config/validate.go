package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// namePattern is the charset of tenant and function names.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// minSecretBytes is the shortest webhook signing key accepted.
const minSecretBytes = 16

// Validate checks c as Parse does, without line numbers (Problem.Line is
// 0), and returns Problems or nil. It does not apply defaults: call
// ApplyDefaults first for a Config built in code.
func (c *Config) Validate() error {
	v := &validator{file: c.File}
	v.config(c)
	if len(v.problems) > 0 {
		return v.problems
	}
	return nil
}

// validator collects the problems of a decoded, defaulted Config, locating
// each by the line of the offending key.
type validator struct {
	file     string
	lines    map[string]int // from the decoder; nil for a Config built in code
	bad      []string       // paths the decoder already reported
	problems Problems
	warnings Problems
}

// warn records a warning about path: something valid that is likely a
// mistake. Its message starts with "warning: ".
func (v *validator) warn(path, format string, args ...any) {
	msg := "warning: " + path + ": " + fmt.Sprintf(format, args...)
	v.warnings = append(v.warnings, Problem{File: v.file, Line: v.line(path), Message: msg})
}

// report records msg about path unless the decoder already reported path,
// a path inside it or around it, or one of the related paths (whose values
// the check depends on).
func (v *validator) report(path string, related []string, format string, args ...any) {
	for _, p := range append([]string{path}, related...) {
		if v.reported(p) {
			return
		}
	}
	msg := path + ": " + fmt.Sprintf(format, args...)
	v.problems = append(v.problems, Problem{File: v.file, Line: v.line(path), Message: msg})
}

func (v *validator) reported(path string) bool {
	for _, b := range v.bad {
		if b == "" || b == path || within(b, path) || within(path, b) {
			return true
		}
	}
	return false
}

// within reports whether path is inside (strictly below) parent.
func within(path, parent string) bool {
	return strings.HasPrefix(path, parent) && len(path) > len(parent) &&
		(path[len(parent)] == '.' || path[len(parent)] == '[')
}

// line returns the line of path, or of its closest ancestor with one.
func (v *validator) line(path string) int {
	for path != "" {
		if l, ok := v.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func (v *validator) config(c *Config) {
	if err := checkListen(c.Server.Listen); err != nil {
		v.report("server.listen", nil, "%v", err)
	}
	c.Server.validate(v)
	v.store(c.Store)
	v.atLeast("loop_guard.max_hops", c.LoopGuard.MaxHops, 1)
	v.atLeast("dispatcher.workers", c.Dispatcher.Workers, 1)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "text")
	c.Telemetry.validate(v)
	v.tenants(c.Tenants, c.Server.AdminKeys)
	v.functions(c)
	v.triggers(c)
	v.selfLoops(c)
}

func (v *validator) tenants(ts []Tenant, adminKeys []string) {
	if len(ts) == 0 {
		v.report("tenants", nil, "at least one tenant is required")
	}
	names := map[string]string{} // name → path of its first definition
	keys := map[string]string{}  // API key → path of its first use
	for j, k := range adminKeys {
		v.apiKey(keys, fmt.Sprintf("server.admin_keys[%d]", j), k)
	}
	for i, t := range ts {
		p := fmt.Sprintf("tenants[%d]", i)
		if v.name(p+".name", t.Name) {
			if first, dup := names[t.Name]; dup {
				v.report(p+".name", nil, "tenant %q is already defined at line %d", t.Name, v.line(first))
			} else {
				names[t.Name] = p + ".name"
			}
		}
		if len(t.APIKeys) == 0 {
			v.report(p+".api_keys", nil, "at least one API key is required")
		}
		for j, k := range t.APIKeys {
			v.apiKey(keys, fmt.Sprintf("%s.api_keys[%d]", p, j), k)
		}
		v.atLeast(p+".max_concurrency", t.MaxConcurrency, 1)
		v.atLeast(p+".max_queued", t.MaxQueued, 1)
		v.rate(p, t.Rate, t.Burst)
	}
}

// apiKey checks the key at path: not empty, and used once across the
// tenants' api_keys and server.admin_keys (keys maps a key to the path of
// its first use).
func (v *validator) apiKey(keys map[string]string, path, k string) {
	switch first, dup := keys[k]; {
	case k == "":
		v.report(path, nil, "must not be empty")
	case dup:
		// The key itself is a secret: name where it was used before.
		v.report(path, nil, "this API key is already used by %s (line %d)", first, v.line(first))
	default:
		keys[k] = path
	}
}

func (v *validator) functions(c *Config) {
	type key struct{ tenant, name string }
	seen := map[key]string{}
	for i := range c.Functions {
		f := &c.Functions[i]
		p := fmt.Sprintf("functions[%d]", i)
		if v.name(p+".name", f.Name) {
			if first, dup := seen[key{f.Tenant, f.Name}]; dup {
				v.report(p+".name", nil, "function %q is already defined for tenant %q at line %d",
					f.Name, f.Tenant, v.line(first))
			} else {
				seen[key{f.Tenant, f.Name}] = p + ".name"
			}
		}
		switch {
		case f.Tenant == "":
			v.report(p+".tenant", nil, "is required")
		case c.Tenant(f.Tenant) == nil:
			v.report(p+".tenant", []string{"tenants"}, "tenant %q is not defined", f.Tenant)
		}
		v.backend(p+".backend", f.Backend)
		v.atLeast(p+".max_concurrency", f.MaxConcurrency, 1)
		v.rate(p, f.Rate, f.Burst)
		v.retry(p+".retry", f.Retry)
		v.destinations(p+".destinations.on_success", f.Destinations.OnSuccess)
		v.destinations(p+".destinations.on_failure", f.Destinations.OnFailure)
	}
}

func (v *validator) backend(p string, b Backend) {
	var set []string
	if b.HTTP != nil {
		set = append(set, "http")
		v.httpURL(p+".http.url", b.HTTP.URL)
	}
	if b.Exec != nil {
		set = append(set, "exec")
		v.exec(p+".exec", b.Exec)
	}
	if b.Go != nil {
		set = append(set, "go")
	}
	v.exactlyOne(p, set, "http", "exec", "go")
}

func (v *validator) retry(p string, r Retry) {
	v.atLeast(p+".max_attempts", r.MaxAttempts, 1)
	if !(r.Multiplier >= 1) { // also catches NaN
		v.report(p+".multiplier", nil, "must be at least 1, got %v", r.Multiplier)
	}
	if r.InitialInterval <= 0 {
		v.report(p+".initial_interval", nil, "must be greater than 0")
	}
	if r.InitialInterval > r.MaxInterval {
		v.report(p+".initial_interval", []string{p + ".max_interval"},
			"%s is longer than max_interval %s", r.InitialInterval.D(), r.MaxInterval.D())
	}
	if r.MaxAge <= 0 {
		v.report(p+".max_age", nil, "must be greater than 0")
	}
}

// rate checks an optional rate limit and its burst.
func (v *validator) rate(p string, rate float64, burst int) {
	switch {
	case !(rate >= 0) || math.IsInf(rate, 0): // also catches NaN
		v.report(p+".rate", nil, "must be a number of invocations per second, 0 (unlimited) or more, got %v", rate)
	case rate > 0 && burst < 1:
		v.report(p+".burst", nil, "must be at least 1, got %d", burst)
	case rate == 0 && burst != 0:
		v.report(p+".burst", []string{p + ".rate"}, "has no effect without rate")
	}
}

// name checks a tenant or function name and reports whether it is valid.
func (v *validator) name(p, name string) bool {
	switch {
	case name == "":
		v.report(p, nil, "is required")
	case !namePattern.MatchString(name):
		v.report(p, nil, "%s is not a valid name (1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit)", shown(p, name))
	default:
		return true
	}
	return false
}

func (v *validator) atLeast(p string, n, min int) {
	if n < min {
		v.report(p, nil, "must be at least %d, got %d", min, n)
	}
}

func (v *validator) oneOf(p, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	v.report(p, nil, "%s is not one of %s", shown(p, s), strings.Join(allowed, ", "))
}

// exactlyOne reports p unless exactly one of its alternatives is set.
func (v *validator) exactlyOne(p string, set []string, alternatives ...string) {
	switch len(set) {
	case 1:
	case 0:
		v.report(p, nil, "set one of %s", strings.Join(alternatives, ", "))
	default:
		v.report(p, nil, "set exactly one of %s, not %s", strings.Join(alternatives, ", "), strings.Join(set, " and "))
	}
}

// httpURL checks an absolute http or https URL. The URL is not echoed: it
// may carry credentials.
func (v *validator) httpURL(p, s string) {
	u, err := url.Parse(s)
	if s == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.report(p, nil, "must be an absolute http:// or https:// URL")
	}
}

// checkListen checks a host:port listen address.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q has no valid port (0 to 65535)", addr)
	}
	return nil
}

// checkSecret checks a Standard Webhooks secret: "whsec_" followed by
// standard base64 of at least 16 bytes. Its errors never echo the secret.
func checkSecret(s string) error {
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return fmt.Errorf(`must start with "whsec_" followed by base64 of at least %d random bytes`, minSecretBytes)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return errors.New(`the part after "whsec_" is not valid standard base64`)
	}
	if len(key) < minSecretBytes {
		return fmt.Errorf("the key is %d bytes; at least %d are required", len(key), minSecretBytes)
	}
	return nil
}
