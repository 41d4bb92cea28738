package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage/httpapi"
)

// TestHealth checks liveness and readiness: no token needed, 200 while
// every check passes, 503 naming the check that fails, and no detail of
// the failure in the answer.
func TestHealth(t *testing.T) {
	t.Parallel()
	dbUp := true
	srv := httpapi.New(httpapi.Config{Checks: []httpapi.Check{
		{Name: "database", Ping: func(context.Context) error {
			if !dbUp {
				return errors.New("disk I/O error at /secret/path")
			}
			return nil
		}},
		{Name: "images", Ping: func(context.Context) error { return nil }},
	}})
	get := func(path string) (int, map[string]any, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("GET %s: %v; body %q", path, err, rec.Body)
		}
		return rec.Code, body, rec.Body.String()
	}
	if code, body, _ := get("/healthz"); code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("GET /healthz: %d %v, want 200 ok", code, body)
	}
	code, body, _ := get("/readyz")
	if code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("GET /readyz with every check passing: %d %v, want 200 ok", code, body)
	}
	dbUp = false
	code, body, raw := get("/readyz")
	checks, _ := body["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || body["status"] != "unavailable" ||
		checks["database"] != "unavailable" || checks["images"] != "ok" {
		t.Errorf("GET /readyz with the database down: %d %v, want 503 naming the database", code, body)
	}
	if want := "secret"; strings.Contains(raw, want) {
		t.Errorf("GET /readyz shows the failure's detail: %s", raw)
	}
	// Liveness does not depend on the checks.
	if code, _, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz with the database down: %d, want 200", code)
	}
}
