// Package httpapi serves cloudimage over HTTP: the NHN Cloud v1.0 image and
// token APIs, the OpenStack Image API v2 and the identity token APIs. Each
// face only translates between its dialect and the services of the root
// package.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cloudimage/cloudimage"
)

// Config is what a Server needs.
type Config struct {
	Images   *cloudimage.ImageService
	Identity *cloudimage.IdentityService

	// PublicURL is the root URL clients reach this server at. It goes into
	// token catalogs and Location headers. When empty, Open sets it to
	// http://<listen address>, with a wildcard host made 127.0.0.1.
	PublicURL string

	// Region names the region of the endpoints in token catalogs.
	Region string

	Logger *slog.Logger
}

// Server is the HTTP server of all API faces.
type Server struct {
	images    *cloudimage.ImageService
	identity  *cloudimage.IdentityService
	publicURL string
	region    string
	logger    *slog.Logger

	handler  http.Handler
	srv      *http.Server
	ln       net.Listener
	inflight sync.WaitGroup // handlers running, so Close can wait for their cleanup
}

// DefaultRegion is the region token catalogs name when none is configured.
const DefaultRegion = "RegionOne"

// New returns a server for cfg; it does not listen until Open.
func New(cfg Config) *Server {
	s := &Server{
		images:    cfg.Images,
		identity:  cfg.Identity,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		region:    cfg.Region,
		logger:    cfg.Logger,
	}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.handler = s.routes()
	return s
}

// Handler returns the server's handler with its whole middleware chain.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// routes registers every endpoint and wraps the mux in the middleware
// chain. From the outside in: the request is counted as in flight, a
// request ID is assigned, the request is
// logged when it ends, and a panic becomes a 500 rather than a dropped
// connection.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.nhnRoutes(mux)
	s.keystoneRoutes(mux)
	s.imageRoutes(mux)
	s.memberRoutes(mux)
	s.actionRoutes(mux)
	return s.withTracking(s.withRequestID(s.withLogging(s.withRecovery(mux))))
}

// Open listens on addr and serves in the background. Listening happens
// before Open returns, so an address in use is Open's error.
func (s *Server) Open(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.ln = ln
	if s.publicURL == "" {
		s.publicURL = defaultPublicURL(ln.Addr())
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("serve", "err", err)
		}
	}()
	return nil
}

// Addr returns the address the server listens on, once open.
func (s *Server) Addr() net.Addr {
	return s.ln.Addr()
}

// PublicURL returns the root URL the server advertises.
func (s *Server) PublicURL() string {
	return s.publicURL
}

// defaultPublicURL is http://<address>, with a wildcard host replaced by
// the loopback address, which is what a local client can reach.
func defaultPublicURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// handlerGrace is how long Close waits, after cutting the connections
// that outlived its context, for their handlers to clean up (an upload
// returns its image to queued, for one).
const handlerGrace = 10 * time.Second

// Close stops accepting connections and waits for the requests in flight
// until ctx is done. Connections still open then are cut, and Close waits
// a little longer for their handlers to finish, so that the stores are
// not closed under them.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		s.logger.Warn("requests still running at shutdown; closing their connections", "err", err)
		s.srv.Close()
	}
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(handlerGrace):
		return errors.New("handlers still running after their connections were closed")
	}
}
