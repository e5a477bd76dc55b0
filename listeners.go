package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/internal/listen"
	"github.com/ferrydev/ferry/internal/routes"
)

// idleTimeout closes a keep-alive connection idle this long (besides the
// connection cap, which closes the longest-idle one when a new one comes).
const idleTimeout = 30 * time.Second

// metricsMaxConnections caps the metrics listener's connections (a
// scraper needs one).
const metricsMaxConnections = 64

// listeners are the node's HTTP listeners: the API's, capped at
// server.max_connections, and the metrics' own when server.metrics_listen
// is set.
type listeners struct {
	api     *listen.Limiter
	metrics *listen.Limiter     // nil: /metrics is on the API's listener
	msrv    *http.Server        // serves metrics
	cert    *listen.Certificate // nil: plain HTTP
	nofile  [2]uint64           // soft and hard open-file limits
}

// openListeners binds the listeners of c, raising the open-file limit
// first; srv is the API's server, given its ConnState, timeouts and TLS
// config here.
func openListeners(c config.Server, srv *http.Server, metrics http.Handler, reg prometheus.Registerer, log *slog.Logger) (*listeners, error) {
	l := &listeners{}
	soft, hard, err := listen.RaiseNoFile()
	if err != nil {
		log.Warn("cannot read the open-file limit", "error", err)
	}
	l.nofile = [2]uint64{soft, hard}
	if c.TLS != nil {
		if l.cert, err = listen.LoadCertificate(c.TLS.CertFile, c.TLS.KeyFile, log); err != nil {
			return nil, err
		}
		srv.TLSConfig = l.cert.Config()
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	l.api = listen.Limit(ln, c.ConnectionCap(soft))
	srv.ConnState = l.api.ConnState
	srv.IdleTimeout = idleTimeout
	api := l.api
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ferry_api_connections",
			Help: "Open connections to the API's listener (at most server.max_connections).",
		}, func() float64 { return float64(api.Open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ferry_api_connections_shed_total",
			Help: "Idle API connections closed to make room for new ones at server.max_connections.",
		}, func() float64 { return float64(api.Shed()) }),
	)
	if c.MetricsListen != "" {
		mln, err := net.Listen("tcp", c.MetricsListen)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("listen on %s (server.metrics_listen): %w", c.MetricsListen, err)
		}
		l.metrics = listen.Limit(mln, metricsMaxConnections)
		l.msrv = &http.Server{
			Handler: metrics, ConnState: l.metrics.ConnState,
			ReadHeaderTimeout: c.ReadHeaderTimeout.D(), ReadTimeout: time.Minute, WriteTimeout: time.Minute,
			IdleTimeout: idleTimeout, MaxHeaderBytes: 64 << 10, ErrorLog: srv.ErrorLog,
		}
	}
	log.Info("listening", "listen", ln.Addr().String(), "tls", l.cert != nil, "max_connections", c.ConnectionCap(soft),
		"open_files_soft_limit", soft, "open_files_hard_limit", hard, "metrics_listen", c.MetricsListen)
	return l, nil
}

// serveHTTP serves srv on ln until Shutdown, sending any other end to
// fatal.
func serveHTTP(name string, srv *http.Server, ln net.Listener, tls bool, fatal chan<- error) {
	var err error
	if tls {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		fatal <- fmt.Errorf("%s: %w", name, err)
	}
}

// shutdown stops the metrics server (the API's is shut down by Run).
func (l *listeners) shutdown(ctx context.Context) {
	if l.msrv != nil {
		_ = l.msrv.Shutdown(ctx)
	}
}

// close closes the listeners.
func (l *listeners) close() {
	_ = l.api.Close()
	if l.metrics != nil {
		_ = l.metrics.Close()
	}
}

// metricsRouteOptions are the API routes' options for c: no /metrics
// when it has a listener of its own.
func metricsRouteOptions(c config.Server) []routes.Option {
	if c.MetricsListen != "" {
		return []routes.Option{routes.WithoutMetrics()}
	}
	return nil
}
