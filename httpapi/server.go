// Package httpapi serves cloudimage over HTTP: the NHN Cloud v1.0 image and
// token APIs, the OpenStack Image API v2 and the identity token APIs. Each
// face only translates between its dialect and the services of the root
// package.
package httpapi

import (
	"context"
	"crypto/tls"
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
	// http://<listen address> (https:// with TLS), with a wildcard host
	// made 127.0.0.1.
	PublicURL string

	// TLS, when set, makes Open serve HTTPS with it; it must hold the
	// server's certificate. Without it the server speaks plain HTTP.
	TLS *tls.Config

	// Region names the region of the endpoints in token catalogs.
	Region string

	Logger *slog.Logger

	// Checks are what GET /readyz asks: each dependency the server needs
	// to answer requests, by name.
	Checks []Check
	// Versions, when set, is the catalog's change counter: the metadata
	// store behind Images and Identity (no other: pages would then be kept
	// past the changes that matter), when it is a cloudimage.Versioner.
	// With it, and a positive
	// PageCacheBytes, the server keeps the bodies of list responses (up
	// to PageCacheBytes in all) and answers a list asked again from
	// memory, until anything in the store changes.
	Versions       cloudimage.Versioner
	PageCacheBytes int
}

// Check is one dependency that readiness depends on.
type Check struct {
	Name string
	Ping func(context.Context) error
}

// Server is the HTTP server of all API faces.
type Server struct {
	images    *cloudimage.ImageService
	identity  *cloudimage.IdentityService
	publicURL string
	region    string
	logger    *slog.Logger
	tls       *tls.Config

	versions cloudimage.Versioner
	pages    *cloudimage.VersionCache[[]byte] // nil: no page cache

	checks   []Check
	handler  http.Handler
	srv      *http.Server
	ln       net.Listener
	inflight sync.WaitGroup // handlers running, so Close can wait for their cleanup
	patterns []string       // every route's pattern, in registration order
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
		checks:    cfg.Checks,
		tls:       cfg.TLS,
	}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if cfg.Versions != nil && cfg.PageCacheBytes > 0 {
		s.versions = cfg.Versions
		s.pages = cloudimage.NewVersionCache[[]byte](cfg.PageCacheBytes, maxCachedPage)
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
// request ID is assigned, the request is logged when it ends, a panic
// becomes a 500 rather than a dropped connection, the body must arrive
// in time, and a request no route takes is answered in its face's error
// format.
func (s *Server) routes() http.Handler {
	mux := &routeMux{ServeMux: http.NewServeMux()}
	s.nhnRoutes(mux)
	s.keystoneRoutes(mux)
	s.imageRoutes(mux)
	s.memberRoutes(mux)
	s.actionRoutes(mux)
	s.healthRoutes(mux)
	s.patterns = mux.patterns
	return s.withTracking(s.withRequestID(s.withLogging(s.withRecovery(s.withBodyDeadline(s.withUnrouted(mux.ServeMux))))))
}

// routeMux is a ServeMux that remembers the patterns registered on it,
// so that the security tests can tell a route their matrix lacks.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

// Handle registers h for pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers h for pattern.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// withUnrouted serves the requests mux has no route for as the face their
// path belongs to would: mux itself would answer them 404 page not found
// or 405 Method Not Allowed in plain text. What mux answers otherwise
// without a route (a redirect to the cleaned path) is passed through.
func (s *Server) withUnrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Run mux's own answer aside to learn what it is: 404, or 405
		// with the methods the path takes.
		rec := &bufferedResponse{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			s.writeUnrouted(w, r, rec.status)
		default:
			rec.replay(w)
		}
	})
}

// writeUnrouted answers a request for a path no route serves (404) or
// with a method its route does not take (405). The v1.0 face answers in
// its envelope with -7 Not supported: HTTP 200 for a wrong method, as for
// every v1.0 outcome, and HTTP 404 for a path it does not have (digest
// §7 #10: 404 only for unknown routes). The identity face answers as
// Keystone, and every other path as Glance, in the words each uses.
func (s *Server) writeUnrouted(w http.ResponseWriter, r *http.Request, status int) {
	p := r.URL.Path
	switch {
	case p == "/v1.0" || strings.HasPrefix(p, "/v1.0/"):
		if status == http.StatusMethodNotAllowed {
			s.writeNHNError(w, r, &nhnError{code: resultNotSupported,
				detail: "method " + r.Method + " is not supported here"})
			return
		}
		s.writeNHNErrorStatus(w, r, http.StatusNotFound, &nhnError{code: resultNotSupported,
			detail: "there is no API at " + p})
	case p == "/identity" || strings.HasPrefix(p, "/identity/"):
		msg := "The resource could not be found."
		if status == http.StatusMethodNotAllowed {
			msg = "The method is not allowed for the requested URL."
		}
		s.writeKeystoneError(w, r, errStatus(status, "%s", msg))
	default:
		msg := "The resource could not be found."
		if status == http.StatusMethodNotAllowed {
			msg = "The method " + r.Method + " is not allowed for this resource."
		}
		s.writeImageError(w, r, errStatus(status, "%s", msg))
	}
}

// Open listens on addr and serves in the background, over TLS if the
// server has a TLS configuration. Listening happens before Open returns,
// so an address in use is Open's error.
func (s *Server) Open(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.ln = ln
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	if s.publicURL == "" {
		s.publicURL = defaultPublicURL(scheme, ln.Addr())
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
	}
	go func() {
		var err error
		if s.tls != nil {
			// The certificate is in the configuration, not in files.
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
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

// defaultPublicURL is <scheme>://<address>, with a wildcard host replaced
// by the loopback address, which is what a local client can reach.
func defaultPublicURL(scheme string, addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
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
