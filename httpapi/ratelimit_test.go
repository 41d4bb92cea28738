package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// testClock is a clock that moves only when told to.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Outcomes of a token request.
const (
	issued  = "issued"
	refused = "refused" // bad credentials
	limited = "limited" // too many failures
)

// tokenFrom asks face for a token of the user who holds role in p, with
// the right password or a wrong one, from the client address addr, and
// returns the outcome, checking that each has its face's form. header
// holds extra headers as name, value pairs.
func (e *env) tokenFrom(t *testing.T, face string, p *cloudimage.Project, role cloudimage.Role, right bool,
	addr string, header ...string) string {
	t.Helper()
	pw := testPassword
	if !right {
		pw = "not " + pw
	}
	user := userName(p, role)
	var path, body string
	switch face {
	case "v1.0":
		path, body = tokensPath(p), authBody(user, pw)
	case "v2.0":
		path, body = "/identity/v2.0/tokens", keystoneBody("tenantId", p.ID, user, pw)
	default:
		path, body = v3Tokens, v3Body(userByName(user, pw, domainByID), projectByID(p.ID))
	}
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.RemoteAddr = addr + ":40000"
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	what := face + " " + user + " from " + addr
	b := rec.Body.Bytes()

	if face == "v1.0" {
		h, top, err := parseEnvelope(rec.Code, b)
		switch {
		case err != nil:
			t.Fatalf("%s: %v", what, err)
		case h.IsSuccessful:
			return issued
		case h.ResultCode != -3 || len(top) != 1:
			t.Fatalf("%s: %+v with keys %v, want -3 and only header", what, h, keys(top))
		case strings.HasPrefix(h.ResultMessage, "Permission denied: Too many failed authentication attempts"):
			if !regexp.MustCompile(`Retry after [1-9][0-9]? seconds\.$`).MatchString(h.ResultMessage) {
				t.Errorf("%s: %q does not say when to retry", what, h.ResultMessage)
			}
			return limited
		}
		return refused
	}
	switch rec.Code {
	case http.StatusOK, http.StatusCreated:
		return issued
	case http.StatusUnauthorized:
		keystoneError(t, rec.Code, rec.Header(), b)
		return refused
	case http.StatusTooManyRequests:
		msg := keystoneError(t, rec.Code, rec.Header(), b)
		if !strings.Contains(msg, "Too many failed") {
			t.Errorf("%s: 429 says %q", what, msg)
		}
		if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Errorf("%s: Retry-After %q, want 1 to 60 seconds", what, rec.Header().Get("Retry-After"))
		}
		return limited
	}
	t.Fatalf("%s: %d; body %q", what, rec.Code, b)
	return ""
}

// TestTokenRateLimit checks the failure limit of token issuing on every
// face: after three wrong passwords the user is refused from any address
// and the address for any user, the right password included; another
// user from another address is not; a minute later one more attempt is
// let through; successes take nothing; X-Forwarded-For changes nothing.
func TestTokenRateLimit(t *testing.T) {
	for _, face := range []string{"v1.0", "v2.0", "v3"} {
		t.Run(face, func(t *testing.T) {
			clock := &testClock{t: time.Now()}
			e, _ := newSecEnv(t, secEnvConfig{identity: []cloudimage.IdentityOption{
				cloudimage.WithAuthFailureLimit(3, time.Minute), cloudimage.WithIdentityClock(clock.Now),
			}})
			a, b := e.a, e.b
			member, reader := cloudimage.RoleMember, cloudimage.RoleReader
			expect := func(what string, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s: %s, want %s", what, got, want)
				}
			}
			for range 5 {
				expect("a success", e.tokenFrom(t, face, a, member, true, "192.0.2.1"), issued)
			}
			for range 3 {
				expect("a wrong password", e.tokenFrom(t, face, a, member, false, "192.0.2.1"), refused)
			}
			expect("the right password after 3 failures", e.tokenFrom(t, face, a, member, true, "192.0.2.1"), limited)
			expect("the user from another address", e.tokenFrom(t, face, a, member, true, "192.0.2.2"), limited)
			expect("another user from the address", e.tokenFrom(t, face, a, reader, true, "192.0.2.1"), limited)
			expect("with X-Forwarded-For", e.tokenFrom(t, face, a, reader, true, "192.0.2.1",
				"X-Forwarded-For", "198.51.100.9"), limited)
			expect("another user from another address", e.tokenFrom(t, face, b, member, true, "192.0.2.3"), issued)

			clock.Advance(time.Minute)
			expect("the user a minute later", e.tokenFrom(t, face, a, member, true, "192.0.2.2"), issued)
			expect("the address a minute later", e.tokenFrom(t, face, a, reader, true, "192.0.2.1"), issued)
			expect("a failure a minute later", e.tokenFrom(t, face, a, member, false, "192.0.2.4"), refused)
			expect("after it", e.tokenFrom(t, face, a, member, true, "192.0.2.4"), limited)
		})
	}
}
