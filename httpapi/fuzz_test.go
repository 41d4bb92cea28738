package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// FuzzTokenBody posts arbitrary bytes as the body of both token APIs
// through the whole handler. The v1.0 API must answer a well-formed
// envelope with HTTP 200 and succeed exactly when the body holds the right
// credentials; the identity API must answer 200, 400 or 401 only, and 200
// exactly when the body holds the right credentials and tenant.
func FuzzTokenBody(f *testing.F) {
	e := buildEnv(f, "http://cloudimage.test")
	user := e.user(f, e.a, cloudimage.RoleMember)
	e.user(f, e.b, cloudimage.RoleMember)

	both := `{"auth":{"username":"` + user + `","password":"` + testPassword +
		`","tenantName":"project-a","passwordCredentials":{"username":"` + user +
		`","password":"` + testPassword + `"}}}`
	for _, seed := range []string{
		authBody(user, testPassword),
		authBody(user, "wrong"),
		authBody("nobody", testPassword),
		authBody(userName(e.b, "member"), testPassword),
		authBody(user, ""),
		keystoneBody("tenantId", e.a.ID, user, testPassword),
		keystoneBody("tenantName", e.a.Name, user, testPassword),
		keystoneBody("tenantName", e.b.Name, user, testPassword),
		keystoneBody("tenantId", e.a.ID, user, "wrong"),
		keystoneBody("", "", user, testPassword),
		both,
		both + "}",
		both + "]",
		both + " x",
		both + "\n",
		strings.ToUpper(authBody(user, testPassword)),
		`{"AUTH":{"Username":"` + user + `","PASSWORD":"` + testPassword + `"}}`,
		`{"auth":{"username":"` + user + `","password":"` + testPassword + `"},"auth":null}`,
		`{"auth":{"username":"` + user + `","password":"\u0063orrect-horse-battery"}}`,
		`{"auth":{"username":"` + user + `","password":"` + testPassword + "\xff" + `"}}`,
		`{"auth":{"username":1,"password":true}}`,
		`{"auth":[]}`, `{"auth":null}`, `{"auth":{}}`, `{}`, `[]`, `null`, `""`, `0`, ``, ` `,
		`{`, `{"auth":`, `{"auth":{"username":"` + user, "\xef\xbb\xbf{}", `{"a":` + strings.Repeat("[", 200),
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		// v1.0: always an envelope with 200.
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, httptest.NewRequest("POST", tokensPath(e.a), bytes.NewReader(body)))
		h, top, err := parseEnvelope(rec.Code, rec.Body.Bytes())
		if err != nil {
			t.Fatalf("v1.0 token with body %q: %v", body, err)
		}
		var v1 struct {
			Auth *struct{ Username, Password string }
		}
		want := json.Unmarshal(body, &v1) == nil && v1.Auth != nil &&
			v1.Auth.Username == user && v1.Auth.Password == testPassword
		if h.IsSuccessful != want {
			t.Fatalf("v1.0 token with body %q: %+v, want success %v", body, h, want)
		}
		if h.IsSuccessful {
			var a nhnAccess
			if err := json.Unmarshal(top["access"], &a); err != nil || a.Token.ID == "" {
				t.Fatalf("v1.0 token with body %q: success without a token: %s", body, top["access"])
			}
		} else if !slices.Contains([]int{-3, -4, -8}, h.ResultCode) {
			t.Fatalf("v1.0 token with body %q: resultCode %d %q, want -3, -4 or -8",
				body, h.ResultCode, h.ResultMessage)
		}

		// Identity v2.0: 200, 400 or 401, and a Keystone error body.
		rec = httptest.NewRecorder()
		e.handler.ServeHTTP(rec, httptest.NewRequest("POST", keystoneTokens, bytes.NewReader(body)))
		var v2 struct {
			Auth *struct {
				TenantID            string `json:"tenantId"`
				TenantName          string `json:"tenantName"`
				PasswordCredentials *struct{ Username, Password string }
			}
		}
		want = json.Unmarshal(body, &v2) == nil && v2.Auth != nil && v2.Auth.PasswordCredentials != nil &&
			v2.Auth.PasswordCredentials.Username == user &&
			v2.Auth.PasswordCredentials.Password == testPassword &&
			(v2.Auth.TenantID == e.a.ID || v2.Auth.TenantID == "" && v2.Auth.TenantName == e.a.Name)
		switch rec.Code {
		case http.StatusOK:
			var a keystoneAccess
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Access.Token.ID == "" ||
				a.Access.Token.Tenant.ID != e.a.ID {
				t.Fatalf("identity token with body %q: 200 with %q", body, rec.Body.Bytes())
			}
		case http.StatusBadRequest, http.StatusUnauthorized:
			var eb struct {
				Error *struct {
					Code    int
					Title   string
					Message string
				}
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == nil ||
				eb.Error.Code != rec.Code || eb.Error.Message == "" {
				t.Fatalf("identity token with body %q: %d with %q", body, rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("identity token with body %q: status %d, want 200, 400 or 401", body, rec.Code)
		}
		if (rec.Code == http.StatusOK) != want {
			t.Fatalf("identity token with body %q: status %d, want success %v", body, rec.Code, want)
		}
	})
}
