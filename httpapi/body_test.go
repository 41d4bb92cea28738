package httpapi

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSlowBodyTimesOut checks that a client that sends a small request
// body too slowly gets an answer, and its connection back, once the body
// timeout has passed, rather than holding a handler for ever.
func TestSlowBodyTimesOut(t *testing.T) {
	defer func(d time.Duration) { bodyTimeout = d }(bodyTimeout)
	bodyTimeout = 200 * time.Millisecond
	ts := httptest.NewServer(New(Config{}).Handler())
	defer ts.Close()

	for _, path := range []string{"/identity/v3/auth/tokens", "/identity/v2.0/tokens", "/v2/images"} {
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// One byte of the hundred promised, then nothing.
		req := "POST " + path + " HTTP/1.1\r\nHost: x\r\nX-Auth-Token: x\r\n" +
			"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("POST %s with a stalled body: no answer: %v", path, err)
		}
		resp.Body.Close()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("POST %s: answered after %v", path, d)
		}
		if resp.StatusCode < 400 || resp.StatusCode >= 500 && !strings.HasPrefix(path, "/v2") {
			t.Errorf("POST %s with a stalled body: %s, want a 4xx", path, resp.Status)
		}
	}
}
