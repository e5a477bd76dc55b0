package config

import (
	"strconv"
	"strings"
)

// secretKeys are the keys whose values (and everything below them) may
// carry a secret: API keys, headers (an Authorization header), an exec
// backend's environment, and URLs or DSNs (a broker URL may hold a
// password: redis://user:pass@host, amqp://user:pass@host).
var secretKeys = map[string]bool{
	"api_keys": true, "admin_keys": true, "headers": true, "env": true,
	"url": true, "urls": true, "sasl": true, "auth": true,
	"credentials": true, "username": true,
}

// secretWords mark a key as secret-bearing wherever they appear in its
// name (webhook.secret, password, a header or variable named *_TOKEN,
// signing_key, ...).
var secretWords = []string{"secret", "password", "passwd", "token", "key", "credential", "dsn"}

// hidden stands in a problem's message for a value that is not shown.
const hidden = "the value (not shown: it may be a secret)"

// secretPath reports whether the value at path may hold a secret: one of
// its keys is in secretKeys or contains a secretWords word. Problems about
// such a path never quote the value.
func secretPath(path string) bool {
	for _, seg := range strings.FieldsFunc(path, func(r rune) bool { return r == '.' || r == '[' }) {
		seg = strings.ToLower(seg)
		if secretKeys[seg] {
			return true
		}
		for _, w := range secretWords {
			if strings.Contains(seg, w) {
				return true
			}
		}
	}
	return false
}

// shown quotes s for a problem about path, or hides it when path may hold
// a secret.
func shown(path, s string) string {
	if secretPath(path) {
		return hidden
	}
	return strconv.Quote(s)
}
