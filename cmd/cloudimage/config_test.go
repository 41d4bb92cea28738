package main

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage/client"
)

// TestConfiguration checks where serve's settings come from: a flag wins
// over its CLOUDIMAGE_* variable, which wins over the default; the
// effective configuration is logged without secrets; and every request
// gets one log line.
func TestConfiguration(t *testing.T) {
	t.Parallel()
	secret := "do-not-log-this-password"

	// A free port for CLOUDIMAGE_LISTEN, which must then be obeyed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	env := map[string]string{
		"CLOUDIMAGE_ADMIN_PASSWORD": secret,
		"CLOUDIMAGE_LISTEN":         addr,
		"CLOUDIMAGE_TOKEN_TTL":      "1h",
		"CLOUDIMAGE_REGION":         "EnvRegion",
		"CLOUDIMAGE_PUBLIC_URL":     "http://env.example",
	}
	s := startServer(t, t.TempDir(), env, "--token-ttl", "2h30m", "--public-url", "http://flag.example:1234")
	if s.URL != "http://"+addr {
		t.Errorf("server listens at %s, want CLOUDIMAGE_LISTEN's %s", s.URL, addr)
	}
	s.Password = secret
	c := s.adminClient(t)
	if _, err := c.ListImages(t.Context(), client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	// The real stores are what readiness checks.
	resp, err := http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(ready), `"database":"ok"`) ||
		!strings.Contains(string(ready), `"images":"ok"`) {
		t.Errorf("GET /readyz: %d %s, want 200 with the database and images ok", resp.StatusCode, ready)
	}
	s.Stop(t)
	log := s.Stderr.String()

	for _, want := range []string{
		"token_ttl=2h30m0s",                   // flag over env
		"region=EnvRegion",                    // env over default
		"public_url=http://flag.example:1234", // flag over env
		"listen=" + addr,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("config log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, secret) || strings.Contains(s.Stdout.String(), secret) {
		t.Errorf("the admin password appears in the output:\n%s", log)
	}
	requestLine := regexp.MustCompile(`msg=request .*method=GET route="GET /v1.0/appkeys/\{appkey\}/images" ` +
		`path=\S+ status=200 bytes=\d+ duration=\S+ request_id=req-[0-9a-f-]{36}`)
	if n := len(requestLine.FindAllString(log, -1)); n != 1 {
		t.Errorf("got %d request lines for the one list, want 1:\n%s", n, log)
	}

	// Defaults when nothing is set: NHN Cloud's rules and page sizes, and
	// no web-download.
	d := startServer(t, t.TempDir(), nil)
	checkImportMethods(t, d.adminClient(t), "glance-direct")
	d.Stop(t)
	checkConfigLog(t, d, "token_ttl=12h0m0s", "region=RegionOne", "public_url="+d.URL,
		"profile=nhn", "default_page_size=100", "max_page_size=1000", `import_allowed_hosts=""`)
}
