package listen

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckEvery bounds how often Certificate looks at the files.
const certCheckEvery = time.Second

// Certificate is a TLS certificate read from a certificate and a key file,
// re-read when either file's modification time or size changes (looked at
// on a handshake, at most once a second). A pair that fails to load (one
// file replaced before the other) keeps the previous certificate in use
// and is tried again at the next look.
type Certificate struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// LoadCertificate reads the pair; an error when it does not load.
func LoadCertificate(certFile, keyFile string, log *slog.Logger) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := c.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: loading %s and %s: %w", certFile, keyFile, err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return c, nil
}

func (c *Certificate) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return s, fmt.Errorf("tls: %w", err)
		}
		s[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return s, nil
}

// GetCertificate is tls.Config.GetCertificate: the current certificate,
// re-read first when the files changed.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= certCheckEvery {
		c.checked = now
		c.reload()
	}
	return c.cert, nil
}

// reload re-reads the pair when a file changed (under mu).
func (c *Certificate) reload() {
	stamp, err := c.stamps()
	if err != nil {
		c.log.Warn("tls: cannot look at the certificate files; serving the previous certificate", "error", err)
		return
	}
	if stamp == c.stamp {
		return
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.log.Warn("tls: the changed certificate files do not load; serving the previous certificate", "cert_file", c.certFile, "key_file", c.keyFile, "error", err)
		return
	}
	c.cert, c.stamp = &cert, stamp
	c.log.Info("tls: certificate reloaded", "cert_file", c.certFile)
}

// Config is a TLS server config serving c, TLS 1.2 and up
// (http.Server.ServeTLS adds the HTTP/2 and HTTP/1.1 protocols).
func (c *Certificate) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
