package httpapi

import (
	"context"
	"net/http"
	"time"
)

// Liveness and readiness, for load balancers and orchestrators. Neither
// needs a token, and neither says more than whether each check passed:
// what failed goes to the log.

func (s *Server) healthRoutes(mux *routeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
}

// healthz answers 200 whenever the server can answer at all.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// checkTimeout bounds each readiness check: a dependency that hangs is
// not ready.
const checkTimeout = 2 * time.Second

// readyz answers 200 when every check passes and 503 when one fails.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	status, results := http.StatusOK, make(map[string]string, len(s.checks))
	for _, c := range s.checks {
		ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
		err := c.Ping(ctx)
		cancel()
		if err != nil {
			s.logger.Error("readiness check failed", "check", c.Name, "err", err,
				"request_id", requestID(r.Context()))
			status, results[c.Name] = http.StatusServiceUnavailable, "unavailable"
			continue
		}
		results[c.Name] = "ok"
	}
	body := map[string]any{"status": "ok", "checks": results}
	if status != http.StatusOK {
		body["status"] = "unavailable"
	}
	writeJSON(w, status, body)
}
