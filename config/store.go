package config

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
)

// prefixPattern is the charset of store.redis.prefix: it goes inside the
// keys' hash tags ({<prefix>:t:<tenant>}), so no brace, colon or space.
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (v *validator) store(s Store) {
	switch {
	case s.Embedded != nil && s.Redis != nil:
		v.report("store", nil, "set exactly one of embedded, redis")
	case s.Redis != nil:
		v.redisStore("store.redis", s.Redis)
	case s.Embedded == nil:
		v.report("store", nil, "set exactly one of embedded, redis")
	default:
		if _, err := ParseFreeSpace(s.Embedded.MinFree); err != nil {
			v.report("store.embedded.min_free", nil, "%v", err)
		}
		switch s.Embedded.WALRecovery {
		case "", WALTolerate, WALStrict:
		default:
			v.report("store.embedded.wal_recovery", nil, "%q is not a mode (use tolerate or strict)", s.Embedded.WALRecovery)
		}
	}
}

func (v *validator) redisStore(p string, r *RedisStore) {
	var set []string
	if r.URL != "" {
		set = append(set, "url")
		v.brokerURL(p+".url", r.URL, "redis", "rediss")
	}
	if r.Sentinel != nil {
		set = append(set, "sentinel")
		v.sentinel(p+".sentinel", r.Sentinel)
	}
	v.exactlyOne(p, set, "url", "sentinel")
	if !prefixPattern.MatchString(r.Prefix) {
		v.report(p+".prefix", nil, "%q is not a valid prefix (1 to 64 letters, digits, '.', '_' or '-'; no braces, colons or spaces)", r.Prefix)
	}
}

func (v *validator) sentinel(p string, s *RedisSentinel) {
	v.required(p+".master", s.Master)
	if len(s.Addrs) == 0 {
		v.report(p+".addrs", nil, "at least one sentinel address (host:port) is required")
	}
	for i, a := range s.Addrs {
		if err := checkHostPort(a); err != nil {
			v.report(fmt.Sprintf("%s.addrs[%d]", p, i), nil, "%v", err)
		}
	}
}

// checkHostPort checks a host:port address to dial: a host and a port
// from 1 to 65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q has no valid port (1 to 65535)", addr)
	}
	return nil
}
