package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var debugListeningRE = regexp.MustCompile(`msg="debug listening" .*?addr=(127\.0\.0\.1:\d+)`)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// apiNotFound is the Glance face's answer to a path it has no route for.
const apiNotFound = "404 Not Found\n\nThe resource could not be found.\n\n"

// TestDebugListener checks that --debug-listen serves pprof on its own
// address and nowhere else: never on the API's port, and not at all
// without the flag.
func TestDebugListener(t *testing.T) {
	t.Parallel()

	t.Run("on", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, t.TempDir(), nil, "--debug-listen", "127.0.0.1:0")
		m := debugListeningRE.FindStringSubmatch(s.Stderr.String())
		if m == nil {
			t.Fatalf("no debug listening line:\n%s", s.Stderr)
		}
		debugURL := "http://" + m[1]
		if status, body := httpGet(t, debugURL+"/debug/pprof/"); status != http.StatusOK ||
			!strings.Contains(body, "goroutine") {
			t.Errorf("GET /debug/pprof/ on the debug listener: %d %q, want 200 with the profile index", status, body)
		}
		if status, _ := httpGet(t, debugURL+"/debug/pprof/goroutine?debug=1"); status != http.StatusOK {
			t.Errorf("GET /debug/pprof/goroutine on the debug listener: %d, want 200", status)
		}
		// Only pprof is there: not the API.
		if status, _ := httpGet(t, debugURL+"/v2/images"); status != http.StatusNotFound {
			t.Errorf("GET /v2/images on the debug listener: %d, want 404", status)
		}
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine", "/debug/pprof/profile"} {
			if status, body := httpGet(t, s.URL+p); status != http.StatusNotFound || body != apiNotFound {
				t.Errorf("GET %s on the API port: %d %q, want the API's 404 %q", p, status, body, apiNotFound)
			}
		}
		if !strings.Contains(s.Stderr.String(), "debug_listen=127.0.0.1:0") {
			t.Errorf("the config line does not name the debug listener:\n%s", s.Stderr)
		}
		s.Stop(t)
		if _, err := http.Get(debugURL + "/debug/pprof/"); err == nil {
			t.Errorf("the debug listener still answers after shutdown")
		}
	})

	t.Run("env", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, t.TempDir(), map[string]string{"CLOUDIMAGE_DEBUG_LISTEN": "127.0.0.1:0"})
		m := debugListeningRE.FindStringSubmatch(s.Stderr.String())
		if m == nil {
			t.Fatalf("CLOUDIMAGE_DEBUG_LISTEN: no debug listening line:\n%s", s.Stderr)
		}
		if status, _ := httpGet(t, "http://"+m[1]+"/debug/pprof/"); status != http.StatusOK {
			t.Errorf("GET /debug/pprof/ on the debug listener: %d, want 200", status)
		}
	})

	t.Run("off", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, t.TempDir(), nil)
		if status, body := httpGet(t, s.URL+"/debug/pprof/"); status != http.StatusNotFound || body != apiNotFound {
			t.Errorf("GET /debug/pprof/ on the API port: %d %q, want the API's 404 %q", status, body, apiNotFound)
		}
		log := s.Stderr.String()
		if debugListeningRE.MatchString(log) || !strings.Contains(log, `debug_listen=""`) {
			t.Errorf("a debug listener without --debug-listen:\n%s", log)
		}
	})

	t.Run("no host", func(t *testing.T) {
		t.Parallel()
		for _, addr := range []string{":0", "0"} {
			var stderr strings.Builder
			err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir(),
				"--listen", "127.0.0.1:0", "--debug-listen", addr}, getenvFrom(nil), nil, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), "debug listen address") {
				t.Errorf("--debug-listen %q: %v, want it refused", addr, err)
			}
		}
	})
}
