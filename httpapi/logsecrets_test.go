package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
)

// faultyIdentity is the identity store, failing on demand: token and user
// lookups return an uncoded error (an internal error) or panic.
type faultyIdentity struct {
	*sqlite.DB
	mode atomic.Int32
}

const (
	noFault = iota
	errorFault
	panicFault
)

func (f *faultyIdentity) fault() error {
	switch f.mode.Load() {
	case errorFault:
		return errors.New("disk I/O error")
	case panicFault:
		panic("the identity store exploded")
	}
	return nil
}

func (f *faultyIdentity) Token(ctx context.Context, hash string) (*cloudimage.Token, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.DB.Token(ctx, hash)
}

func (f *faultyIdentity) UserByName(ctx context.Context, name string) (*cloudimage.User, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.DB.UserByName(ctx, name)
}

// TestSecretsNotLogged sends passwords, right and wrong, and token secrets
// through every face, in requests that succeed, that are refused, that are
// rate-limited, that meet an internal error and that panic, and checks
// that the server's log, at debug level, shows none of them, nor their
// hashes, nor the headers that carry them.
func TestSecretsNotLogged(t *testing.T) {
	faulty := &faultyIdentity{}
	e, logs := newSecEnv(t, secEnvConfig{
		identity: []cloudimage.IdentityOption{cloudimage.WithAuthFailureLimit(4, time.Minute)},
		store: func(db *sqlite.DB) cloudimage.IdentityStore {
			faulty.DB = db
			return faulty
		},
		allowErrors: true,
	})
	user := userName(e.a, cloudimage.RoleMember)
	jsonType := []string{"Content-Type", "application/json"}
	secrets := []string{testPassword}
	wrong := func(face string) string {
		pw := "wrong-" + face + "-Qx7vLp2"
		secrets = append(secrets, pw)
		return pw
	}

	// issue returns the token of each face's token request, or "".
	issue := func(t *testing.T, face, pw string) string {
		t.Helper()
		switch face {
		case "v1.0":
			h, top := e.nhn(t, "POST", tokensPath(e.a), "", authBody(user, pw))
			if !h.IsSuccessful {
				return ""
			}
			var access nhnAccess
			if err := json.Unmarshal(top["access"], &access); err != nil {
				t.Fatal(err)
			}
			return access.Token.ID
		case "v2.0":
			status, _, b := e.call(t, "POST", "/identity/v2.0/tokens", "",
				keystoneBody("tenantId", e.a.ID, user, pw), jsonType...)
			if status != http.StatusOK {
				return ""
			}
			var body struct {
				Access struct {
					Token struct{ ID string } `json:"token"`
				} `json:"access"`
			}
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatal(err)
			}
			return body.Access.Token.ID
		}
		status, hdr, _ := e.call(t, "POST", v3Tokens, "",
			v3Body(userByName(user, pw, domainByID), projectByID(e.a.ID)), jsonType...)
		if status != http.StatusCreated {
			return ""
		}
		return hdr.Get("X-Subject-Token")
	}
	// use makes the requests a client makes with a token.
	use := func(t *testing.T, token string) {
		t.Helper()
		e.call(t, "GET", "/v2/images", token, "")
		e.call(t, "GET", imagesPath(e.a), token, "")
		e.call(t, "GET", tokensPath(e.a)+"?id="+token, "", "")
		e.call(t, "GET", v3Tokens, token, "", "X-Subject-Token", token)
		e.call(t, "GET", "/identity/v3/auth/projects", token, "")
	}

	var tokens []string
	for _, face := range []string{"v1.0", "v2.0", "v3"} {
		if tok := issue(t, face, wrong(face)); tok != "" {
			t.Fatalf("%s: a wrong password gave a token", face)
		}
		tok := issue(t, face, testPassword)
		if tok == "" {
			t.Fatalf("%s: the right password gave no token", face)
		}
		tokens = append(tokens, tok)
		use(t, tok)
	}
	// Image changes, which the audit log records.
	id := e.newImage(t, tokens[0], "audited")
	e.upload(t, tokens[1], id, []byte("data"))
	e.call(t, "DELETE", "/v2/images/"+id, tokens[2], "")

	// Refused tokens: unknown, expired, revoked.
	bogus := "0123456789abcdef0123456789abcdef"
	expired := e.expiredToken(t, e.a, cloudimage.RoleMember)
	revoked := e.revokedToken(t)
	tokens = append(tokens, bogus, expired, revoked)
	for _, tok := range []string{bogus, expired, revoked} {
		use(t, tok)
	}

	// Rate-limited: the user has failed four times with this one.
	if tok := issue(t, "v3", wrong("limited")); tok != "" {
		t.Fatal("a wrong password gave a token")
	}
	if status, _, _ := e.call(t, "POST", v3Tokens, "", v3Body(userByName(user, testPassword, domainByID),
		projectByID(e.a.ID)), jsonType...); status != http.StatusTooManyRequests {
		t.Errorf("after four failures: %d, want 429", status)
	}
	other := userName(e.b, cloudimage.RoleMember)

	// Internal errors and panics, with a password and with a token.
	for _, mode := range []int32{errorFault, panicFault} {
		faulty.mode.Store(mode)
		use(t, tokens[0])
		e.call(t, "POST", "/identity/v2.0/tokens", "", keystoneBody("tenantId", e.b.ID, other, testPassword),
			jsonType...)
		// The user is looked up before the failure budget is checked, so
		// this reaches the faulty store even with the address's spent: a
		// panic answers a plain 500, not an envelope.
		e.call(t, "POST", tokensPath(e.b), "", authBody(other, wrong("fault")),
			"Content-Type", "application/json;charset=UTF-8")
		faulty.mode.Store(noFault)
	}

	out := logs.String()
	for _, what := range []string{"request", "internal error", "panic in handler"} {
		if len(logs.records(t, what)) == 0 {
			t.Errorf("nothing logged as %q: the test did not reach that path", what)
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log shows the password %q", s)
		}
	}
	for _, tok := range tokens {
		if strings.Contains(out, tok) {
			t.Errorf("the log shows the token %q", tok)
		}
		if strings.Contains(out, cloudimage.HashToken(tok)) {
			t.Errorf("the log shows the hash of the token %q", tok)
		}
	}
	for _, h := range []string{"x-auth-token", "x-subject-token", "password"} {
		if strings.Contains(strings.ToLower(out), h) {
			t.Errorf("the log mentions %s", h)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", out)
	}
}
