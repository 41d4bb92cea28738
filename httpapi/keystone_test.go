package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/httpapi"
)

const keystoneTokens = "/identity/v2.0/tokens"

// keystoneAccess is the part of a Keystone v2 token the tests read.
type keystoneAccess struct {
	Access struct {
		Token struct {
			ID       string `json:"id"`
			Expires  string `json:"expires"`
			IssuedAt string `json:"issued_at"`
			Tenant   struct {
				ID      string `json:"id"`
				Name    string `json:"name"`
				Enabled bool   `json:"enabled"`
			} `json:"tenant"`
		} `json:"token"`
		ServiceCatalog []struct {
			Type      string `json:"type"`
			Name      string `json:"name"`
			Endpoints []struct {
				Region    string `json:"region"`
				PublicURL string `json:"publicURL"`
			} `json:"endpoints"`
		} `json:"serviceCatalog"`
		User struct {
			ID    string `json:"id"`
			Name  string `json:"name"`
			Roles []struct {
				Name string `json:"name"`
			} `json:"roles"`
		} `json:"user"`
	} `json:"access"`
}

func keystoneBody(tenantKey, tenant, user, password string) string {
	auth := map[string]any{"passwordCredentials": map[string]string{"username": user, "password": password}}
	if tenantKey != "" {
		auth[tenantKey] = tenant
	}
	b, _ := json.Marshal(map[string]any{"auth": auth})
	return string(b)
}

// keystoneToken issues a token through /identity/v2.0/tokens, which must
// succeed, and checks the whole answer.
func (e *env) keystoneToken(t *testing.T, body string, p *cloudimage.Project, role cloudimage.Role) string {
	t.Helper()
	status, hdr, b := e.call(t, "POST", keystoneTokens, "", body, "Content-Type", "application/json")
	if status != http.StatusOK {
		t.Fatalf("POST %s: status %d, want 200; body %q", keystoneTokens, status, b)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	if top := decodeObject(t, b); !slices.Equal(keys(top), []string{"access"}) {
		t.Errorf("top-level keys %v, want only access (no NHN header)", keys(top))
	}
	var a keystoneAccess
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	tok := a.Access.Token
	if tok.ID == "" {
		t.Error("no token id")
	}
	if !expiresRE.MatchString(tok.Expires) || !nhnTimeRE.MatchString(tok.IssuedAt) {
		t.Errorf("expires %q, issued_at %q: want 2020-04-29T15:31:21Z and 2020-04-29T03:32:28.000405",
			tok.Expires, tok.IssuedAt)
	}
	issued, _ := time.Parse(nhnTimeLayout, tok.IssuedAt)
	expires, _ := time.Parse(expiresLayout, tok.Expires)
	if d := expires.Sub(issued); d <= testTTL-time.Second || d > testTTL {
		t.Errorf("expires - issued_at = %v, want about %v", d, testTTL)
	}
	if tok.Tenant.ID != p.ID || tok.Tenant.Name != p.Name || !tok.Tenant.Enabled {
		t.Errorf("tenant %+v, want id %s name %s enabled", tok.Tenant, p.ID, p.Name)
	}

	catalog := map[string]string{}
	for _, svc := range a.Access.ServiceCatalog {
		if len(svc.Endpoints) != 1 {
			t.Errorf("service %s has %d endpoints, want 1", svc.Type, len(svc.Endpoints))
			continue
		}
		if svc.Endpoints[0].Region != httpapi.DefaultRegion {
			t.Errorf("service %s in region %q, want %q", svc.Type, svc.Endpoints[0].Region, httpapi.DefaultRegion)
		}
		catalog[svc.Type] = svc.Endpoints[0].PublicURL
	}
	if got := catalog["image"]; got != e.url {
		t.Errorf("image publicURL %q, want the root %q", got, e.url)
	}
	if got, want := catalog["identity"], e.url+"/identity/v2.0"; got != want {
		t.Errorf("identity publicURL %q, want %q", got, want)
	}

	if a.Access.User.ID == "" || a.Access.User.Name != userName(p, role) {
		t.Errorf("user %+v, want the name %s", a.Access.User, userName(p, role))
	}
	var roles []string
	for _, r := range a.Access.User.Roles {
		roles = append(roles, r.Name)
	}
	if !slices.Equal(roles, []string{string(role)}) {
		t.Errorf("roles %v, want [%s]", roles, role)
	}
	return tok.ID
}

func TestKeystoneIssueToken(t *testing.T) {
	e := newEnv(t)
	member := e.user(t, e.a, cloudimage.RoleMember)
	e.user(t, e.b, cloudimage.RoleAdmin)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)
	bPublic := e.newImage(t, adminB, "b-public", "visibility", "public", "os_type", "linux")
	bPrivate := e.newImage(t, adminB, "b-private", "visibility", "private", "os_type", "linux")

	byID := e.keystoneToken(t, keystoneBody("tenantId", e.a.ID, member, testPassword), e.a, cloudimage.RoleMember)
	byName := e.keystoneToken(t, keystoneBody("tenantName", e.a.Name, member, testPassword), e.a, cloudimage.RoleMember)
	if byID == byName {
		t.Error("two requests got the same token")
	}

	for _, tok := range []string{byID, byName} {
		// The token works on the v1.0 face of its own project...
		ids := e.listIDs(t, e.a, tok, "")
		if !slices.Contains(ids, bPublic) || slices.Contains(ids, bPrivate) {
			t.Errorf("v1.0 list with a v2.0 token: %v, want %s and not %s", ids, bPublic, bPrivate)
		}
		// ...not on another project's appkey...
		e.nhnFail(t, "GET", imagesPath(e.b), tok, -3)
		// ...and on v2, with the project's view.
		id := e.newImage(t, tok, "made with a v2.0 token", "os_type", "linux")
		if got := e.getImage(t, tok, id)["owner"]; got != e.a.ID {
			t.Errorf("owner %v, want %s", got, e.a.ID)
		}
		e.getImage(t, tok, bPublic)
		if status, _, _ := e.call(t, "GET", "/v2/images/"+bPrivate, tok, ""); status != http.StatusNotFound {
			t.Errorf("B's private image: %d, want 404", status)
		}
	}
}

func TestKeystoneErrors(t *testing.T) {
	e := newEnv(t)
	member := e.user(t, e.a, cloudimage.RoleMember)
	memberB := e.user(t, e.b, cloudimage.RoleMember)
	good := keystoneBody("tenantId", e.a.ID, member, testPassword)

	for _, tc := range []struct {
		name   string
		body   string
		status int
	}{
		{"bad password", keystoneBody("tenantId", e.a.ID, member, "wrong"), 401},
		{"unknown user", keystoneBody("tenantName", e.a.Name, "nobody", testPassword), 401},
		{"unknown tenant id", keystoneBody("tenantId", "0123456789abcdef0123456789abcdef", member, testPassword), 401},
		{"unknown tenant name", keystoneBody("tenantName", "nowhere", member, testPassword), 401},
		{"user without a role in the tenant", keystoneBody("tenantId", e.a.ID, memberB, testPassword), 401},
		{"malformed JSON", `{"auth":`, 400},
		{"not JSON", `auth=1`, 400},
		{"empty body", ``, 400},
		{"trailing data", good + `]`, 400},
		{"wrong type", `{"auth":{"tenantId":7}}`, 400},
		{"no auth", `{}`, 400},
		{"auth null", `{"auth":null}`, 400},
		{"no credentials", `{"auth":{"tenantId":"` + e.a.ID + `"}}`, 400},
		{"no password", keystoneBody("tenantId", e.a.ID, member, ""), 400},
		{"no username", keystoneBody("tenantId", e.a.ID, "", testPassword), 400},
		{"no tenant", keystoneBody("", "", member, testPassword), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, b := e.call(t, "POST", keystoneTokens, "", tc.body, "Content-Type", "application/json")
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %q", status, tc.status, b)
			}
			var body struct {
				Error *struct {
					Code    int    `json:"code"`
					Title   string `json:"title"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &body); err != nil || body.Error == nil {
				t.Fatalf("body %q is not a Keystone error", b)
			}
			if body.Error.Code != tc.status || body.Error.Title != http.StatusText(tc.status) ||
				body.Error.Message == "" {
				t.Errorf("error %+v, want code %d, title %q and a message",
					*body.Error, tc.status, http.StatusText(tc.status))
			}
			if tc.status == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestKeystoneVersions(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/identity", http.StatusMultipleChoices},
		{"/identity/", http.StatusMultipleChoices},
		{"/identity/v2.0", http.StatusOK},
		{"/identity/v2.0/", http.StatusOK},
	} {
		status, _, b := e.call(t, "GET", tc.path, "", "")
		if status != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.path, status, tc.status)
		}
		if want := e.url + "/identity/v2.0/"; !strings.Contains(string(b), want) {
			t.Errorf("GET %s: body %s does not link %s", tc.path, b, want)
		}
	}
}
