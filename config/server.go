package config

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"os"
)

// DefaultMaxConnections caps open API connections when
// server.max_connections is not set; Ferry lowers it further to a quarter
// of its open-file limit (see Server.MaxConnections).
const DefaultMaxConnections = 4096

// TLS serves the API over HTTPS with a certificate and key in PEM files.
// Ferry re-reads the pair when either file changes (checked at most once a
// second, on a handshake), so a renewed certificate is served without a
// restart; a pair that does not load (half written) keeps the previous one
// in use, with a warning.
type TLS struct {
	// CertFile is the certificate chain (leaf first), PEM; required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the certificate's private key, PEM; required.
	KeyFile string `yaml:"key_file"`
}

// validate checks the tls section: both files set, readable, and a
// matching pair. Its messages never echo the key.
func (t *TLS) validate(v *validator) {
	if t == nil {
		return
	}
	ok := true
	for _, f := range []struct{ path, file string }{{"server.tls.cert_file", t.CertFile}, {"server.tls.key_file", t.KeyFile}} {
		switch _, err := os.Stat(f.file); {
		case f.file == "":
			v.report(f.path, nil, "is required")
			ok = false
		case errors.Is(err, fs.ErrNotExist):
			v.report(f.path, nil, "%s does not exist", f.file)
			ok = false
		case err != nil:
			v.report(f.path, nil, "%v", err)
			ok = false
		}
	}
	if !ok {
		return
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		v.report("server.tls", []string{"server.tls.cert_file", "server.tls.key_file"}, "cannot load the certificate and key: %v", err)
	}
}

// validate checks the server section's keys defined in this file.
func (s *Server) validate(v *validator) {
	if s.MaxConnections < 0 {
		v.report("server.max_connections", nil, "must be at least 0 (0: the default), got %d", s.MaxConnections)
	}
	if s.MetricsListen != "" {
		if err := checkListen(s.MetricsListen); err != nil {
			v.report("server.metrics_listen", nil, "%v", err)
		} else if _, port, _ := net.SplitHostPort(s.MetricsListen); s.MetricsListen == s.Listen && port != "0" {
			v.report("server.metrics_listen", nil, "must differ from server.listen (leave it out to serve /metrics on the API's listener)")
		}
	}
	s.TLS.validate(v)
}

// ConnectionCap is the cap on open API connections for a process whose
// open-file limit is nofile (0: unknown): MaxConnections when set, else
// DefaultMaxConnections or a quarter of nofile, whichever is lower (at
// least 64), so the connections never take the descriptors that the
// store, the backends and the destinations need.
func (s *Server) ConnectionCap(nofile uint64) int {
	if s.MaxConnections > 0 {
		return s.MaxConnections
	}
	n := DefaultMaxConnections
	if nofile > 0 && nofile/4 < uint64(n) {
		n = max(int(nofile/4), 64)
	}
	return n
}
