package ferry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/config"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial number to dir/ferry.crt and dir/ferry.key, replacing both files
// atomically (rename), as a certificate manager does.
func writeCert(t *testing.T, dir string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "ferry test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ferry.key": {Type: "EC PRIVATE KEY", Bytes: kder},
		"ferry.crt": {Type: "CERTIFICATE", Bytes: der},
	} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// run starts a Server of src (a config) and stops it at the end of the test.
func run(t *testing.T, src string) *Server {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s
}

func get(t *testing.T, c *http.Client, url string) (int, string, *http.Response) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

// TestTLSMetricsListenAndVerboseReadiness: server.tls serves the API over
// HTTPS and picks up replaced certificate files without a restart;
// server.metrics_listen moves /metrics to its own listener (404 on the
// API's); /readyz?verbose=1 lists the store and a trigger whose broker is
// unreachable as disconnected, while /readyz stays 200 and the trigger has
// no made-up lag.
func TestTLSMetricsListenAndVerboseReadiness(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, 1)
	s := run(t, `
server:
  listen: 127.0.0.1:0
  metrics_listen: 127.0.0.1:0
  tls: { cert_file: `+filepath.Join(dir, "ferry.crt")+`, key_file: `+filepath.Join(dir, "ferry.key")+` }
store: { embedded: { path: `+filepath.Join(dir, "data")+` } }
tenants: [ { name: t, api_keys: [k] } ]
functions:
  - { name: f, tenant: t, backend: { http: { url: "http://127.0.0.1:1/" } } }
triggers:
  - name: orders
    function: f
    source: { redis: { url: "redis://127.0.0.1:1/0", stream: orders, group: ferry } }
`)
	api := "https://" + s.Addr().String()
	// A fresh connection per request, so each one shows the certificate served now.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true,
	}}
	serial := func() int64 {
		t.Helper()
		code, _, resp := get(t, client, api+"/healthz")
		if code != http.StatusOK || resp.TLS == nil {
			t.Fatalf("GET /healthz over HTTPS: %d, TLS %v", code, resp.TLS != nil)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("served certificate serial %d, want 1", got)
	}

	t.Run("Reload", func(t *testing.T) {
		writeCert(t, dir, 2)
		deadline := time.Now().Add(10 * time.Second)
		for serial() != 2 {
			if time.Now().After(deadline) {
				t.Fatal("the replaced certificate is not served within 10s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("MetricsListen", func(t *testing.T) {
		if code, _, _ := get(t, client, api+"/metrics"); code != http.StatusNotFound {
			t.Errorf("GET /metrics on the API's listener: %d, want 404", code)
		}
		code, body, _ := get(t, http.DefaultClient, "http://"+s.MetricsAddr().String()+"/metrics")
		if code != http.StatusOK || !strings.Contains(body, "ferry_trigger_connected{trigger=\"orders\"} 0") {
			t.Fatalf("GET /metrics on metrics_listen: %d, want 200 with ferry_trigger_connected of orders at 0:\n%.2000s", code, body)
		}
		if strings.Contains(body, `ferry_trigger_lag{trigger="orders"}`) {
			t.Errorf("ferry_trigger_lag of a trigger whose broker is unreachable is reported; want no series (unknown)")
		}
		if code, _, _ := get(t, http.DefaultClient, "http://"+s.MetricsAddr().String()+"/v1/tasks"); code != http.StatusNotFound {
			t.Errorf("GET /v1/tasks on metrics_listen: %d, want 404", code)
		}
	})

	t.Run("VerboseReadiness", func(t *testing.T) {
		if code, body, _ := get(t, client, api+"/readyz"); code != http.StatusOK {
			t.Fatalf("GET /readyz with every trigger disconnected: %d %s, want 200 (readiness is the API's)", code, body)
		}
		code, body, resp := get(t, client, api+"/readyz?verbose=1")
		var got struct {
			Status, Store string
			Triggers      []struct{ Name, Function, State string }
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || code != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /readyz?verbose=1: %d %s %q (%v)", code, resp.Header.Get("Content-Type"), body, err)
		}
		if got.Status != "ready" || got.Store != "ok" || len(got.Triggers) != 1 ||
			got.Triggers[0].Name != "orders" || got.Triggers[0].Function != "f" || got.Triggers[0].State != "disconnected" {
			t.Fatalf("verbose readiness %+v, want ready, store ok, trigger orders of f disconnected", got)
		}
	})
}
