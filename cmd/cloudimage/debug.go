package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugServer serves net/http/pprof, and nothing else, on a listener of
// its own, apart from the API: the profiles expose the process's
// internals (goroutine stacks, memory, the command line), so it is off
// unless --debug-listen asks for it.
type debugServer struct {
	ln  net.Listener
	srv *http.Server
}

// checkDebugAddr refuses an address without a host (":6060"), which
// would listen on every interface. A host that is not loopback is
// accepted only because it was written out.
func checkDebugAddr(addr string) (loopback bool, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("debug listen address %q: %w", addr, err)
	}
	if host == "" {
		return false, fmt.Errorf("debug listen address %q has no host, so it would listen on every interface "+
			"and expose pprof's profiles there: give one, e.g. 127.0.0.1%s", addr, addr)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// debugMux is the pprof handlers on a mux of their own: never the API's,
// and not http.DefaultServeMux, which net/http/pprof also registers on.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startDebug listens on addr and serves pprof until Close.
func startDebug(addr string, logger *slog.Logger) (*debugServer, error) {
	loopback, err := checkDebugAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listen on %s: %w", addr, err)
	}
	if !loopback {
		logger.Warn("the debug listener is not on a loopback address: anyone who reaches it can read the process's profiles",
			"addr", ln.Addr().String())
	}
	d := &debugServer{ln: ln, srv: &http.Server{
		Handler:           debugMux(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("debug listener", "err", err)
		}
	}()
	logger.Info("debug listening", "addr", ln.Addr().String())
	return d, nil
}

// Addr is where the debug server listens.
func (d *debugServer) Addr() net.Addr { return d.ln.Addr() }

// Close stops the debug server; a profile still running is cut at ctx's end.
func (d *debugServer) Close(ctx context.Context) error {
	if err := d.srv.Shutdown(ctx); err != nil {
		return d.srv.Close()
	}
	return nil
}
