package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/httpapi"
	"golang.org/x/crypto/bcrypt"
)

const v3Tokens = "/identity/v3/auth/tokens"

var (
	// v3TimeRE is Keystone's token time: six fraction digits and Z.
	v3TimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)
	hex32RE  = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

const v3TimeLayout = "2006-01-02T15:04:05.000000Z"

// v3TokenKeys are the keys of a v3 token, catalog included.
var v3TokenKeys = []string{"audit_ids", "catalog", "expires_at", "is_domain", "issued_at", "methods",
	"project", "roles", "user"}

type v3DomainJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// v3TokenJSON is a v3 token as the tests read it.
type v3TokenJSON struct {
	Methods []string `json:"methods"`
	User    struct {
		ID     string       `json:"id"`
		Name   string       `json:"name"`
		Domain v3DomainJSON `json:"domain"`
	} `json:"user"`
	Project struct {
		ID     string       `json:"id"`
		Name   string       `json:"name"`
		Domain v3DomainJSON `json:"domain"`
	} `json:"project"`
	Roles []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"roles"`
	IssuedAt  string   `json:"issued_at"`
	ExpiresAt string   `json:"expires_at"`
	AuditIDs  []string `json:"audit_ids"`
	IsDomain  bool     `json:"is_domain"`
	Catalog   []struct {
		Type      string `json:"type"`
		Name      string `json:"name"`
		ID        string `json:"id"`
		Endpoints []struct {
			ID        string `json:"id"`
			Interface string `json:"interface"`
			Region    string `json:"region"`
			RegionID  string `json:"region_id"`
			URL       string `json:"url"`
		} `json:"endpoints"`
	} `json:"catalog"`
}

// v3Response is a v3 token response: the token, its raw keys, and the
// whole decoded body for comparisons.
type v3Response struct {
	tok  v3TokenJSON
	raw  map[string]json.RawMessage
	body map[string]any
}

func decodeV3(t *testing.T, b []byte) v3Response {
	t.Helper()
	top := decodeObject(t, b)
	if !slices.Equal(keys(top), []string{"token"}) {
		t.Fatalf("top-level keys %v, want only token", keys(top))
	}
	var r v3Response
	var wrap struct {
		Token json.RawMessage `json:"token"`
	}
	if err := json.Unmarshal(b, &wrap); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(wrap.Token, &r.tok); err != nil {
		t.Fatalf("token %s: %v", wrap.Token, err)
	}
	if err := json.Unmarshal(wrap.Token, &r.raw); err != nil {
		t.Fatal(err)
	}
	r.body = top
	return r
}

// Bodies of POST /v3/auth/tokens, built as clients build them.

var (
	domainByName = map[string]string{"name": cloudimage.DomainName}
	domainByID   = map[string]string{"id": cloudimage.DomainID}
)

func userByName(name, password string, domain map[string]string) map[string]any {
	return map[string]any{"name": name, "domain": domain, "password": password}
}

func userByID(id, password string) map[string]any {
	return map[string]any{"id": id, "password": password}
}

func projectByID(id string) map[string]any {
	return map[string]any{"project": map[string]any{"id": id}}
}

func projectByName(name string, domain map[string]string) map[string]any {
	return map[string]any{"project": map[string]any{"name": name, "domain": domain}}
}

// v3Body is a password request for user, with scope unless it is nil.
func v3Body(user map[string]any, scope any) string {
	auth := map[string]any{"identity": map[string]any{
		"methods": []string{"password"}, "password": map[string]any{"user": user},
	}}
	if scope != nil {
		auth["scope"] = scope
	}
	b, _ := json.Marshal(map[string]any{"auth": auth})
	return string(b)
}

// v3Issue posts body, which must give a token, and returns its secret and
// the response.
func (e *env) v3Issue(t *testing.T, body string) (string, v3Response) {
	t.Helper()
	status, hdr, b := e.call(t, "POST", v3Tokens, "", body, "Content-Type", "application/json")
	if status != http.StatusCreated {
		t.Fatalf("POST %s: status %d, want 201; body %q", v3Tokens, status, b)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	secret := hdr.Get("X-Subject-Token")
	if !hex32RE.MatchString(secret) {
		t.Fatalf("X-Subject-Token %q, want a token", secret)
	}
	return secret, decodeV3(t, b)
}

// v3Validate validates subject with caller's token; it must succeed.
func (e *env) v3Validate(t *testing.T, caller, subject, query string) v3Response {
	t.Helper()
	status, hdr, b := e.call(t, "GET", v3Tokens+query, caller, "", "X-Subject-Token", subject)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200; body %q", v3Tokens, status, b)
	}
	if got := hdr.Get("X-Subject-Token"); got != subject {
		t.Errorf("X-Subject-Token %q, want the subject echoed", got)
	}
	return decodeV3(t, b)
}

// userID returns the ID of the user who holds role in p.
func (e *env) userID(t *testing.T, p *cloudimage.Project, role cloudimage.Role) string {
	t.Helper()
	tok, err := e.identity.Validate(context.Background(), e.token(t, p, role))
	if err != nil {
		t.Fatal(err)
	}
	return tok.User.ID
}

// checkV3Token checks the whole of a token of user (name and ID) in p
// holding role.
func (e *env) checkV3Token(t *testing.T, r v3Response, p *cloudimage.Project, user, userID string, role cloudimage.Role) {
	t.Helper()
	tok := r.tok
	if got := keys(r.raw); !slices.Equal(got, v3TokenKeys) {
		t.Errorf("token keys %v, want %v", got, v3TokenKeys)
	}
	if !slices.Equal(tok.Methods, []string{"password"}) {
		t.Errorf("methods %v, want [password]", tok.Methods)
	}
	def := v3DomainJSON{ID: cloudimage.DomainID, Name: cloudimage.DomainName}
	if tok.User.ID != userID || tok.User.Name != user || tok.User.Domain != def {
		t.Errorf("user %+v, want %s %s in the default domain", tok.User, userID, user)
	}
	var u map[string]json.RawMessage
	if err := json.Unmarshal(r.raw["user"], &u); err != nil {
		t.Fatal(err)
	}
	if v, ok := u["password_expires_at"]; !ok || string(v) != "null" {
		t.Errorf("user.password_expires_at %s (present %v), want null", v, ok)
	}
	if tok.Project.ID != p.ID || tok.Project.Name != p.Name || tok.Project.Domain != def {
		t.Errorf("project %+v, want %s %s in the default domain", tok.Project, p.ID, p.Name)
	}
	if len(tok.Roles) != 1 || tok.Roles[0].Name != string(role) || !hex32RE.MatchString(tok.Roles[0].ID) {
		t.Errorf("roles %+v, want one, %s, with an ID", tok.Roles, role)
	}
	if !v3TimeRE.MatchString(tok.IssuedAt) || !v3TimeRE.MatchString(tok.ExpiresAt) {
		t.Errorf("issued_at %q, expires_at %q: want 2026-12-03T10:35:43.000000Z", tok.IssuedAt, tok.ExpiresAt)
	}
	issued, _ := time.Parse(v3TimeLayout, tok.IssuedAt)
	expires, _ := time.Parse(v3TimeLayout, tok.ExpiresAt)
	if d := expires.Sub(issued); d < testTTL-time.Second || d > testTTL+time.Second {
		t.Errorf("expires_at - issued_at = %v, want about %v", d, testTTL)
	}
	if d := time.Since(issued); d < -time.Second || d > time.Hour+testTTL {
		t.Errorf("issued_at %s is not about now", tok.IssuedAt)
	}
	if len(tok.AuditIDs) != 1 {
		t.Errorf("audit_ids %v, want one", tok.AuditIDs)
	} else if b, err := base64.RawURLEncoding.DecodeString(tok.AuditIDs[0]); err != nil || len(b) != 16 {
		t.Errorf("audit id %q, want 16 bytes in URL-safe base64", tok.AuditIDs[0])
	}
	if tok.IsDomain {
		t.Error("is_domain true")
	}
	e.checkV3Catalog(t, tok)
}

// checkV3Catalog checks that the catalog holds the image service at the
// root and the identity service at /identity, each with a public, an
// internal and an admin endpoint in the region.
func (e *env) checkV3Catalog(t *testing.T, tok v3TokenJSON) {
	t.Helper()
	want := map[string]struct{ name, url string }{
		"image": {"glance", e.url}, "identity": {"keystone", e.url + "/identity"},
	}
	if len(tok.Catalog) != len(want) {
		t.Errorf("catalog has %d services, want %d", len(tok.Catalog), len(want))
	}
	ids := map[string]bool{}
	for _, svc := range tok.Catalog {
		w, ok := want[svc.Type]
		if !ok || svc.Name != w.name || !hex32RE.MatchString(svc.ID) {
			t.Errorf("service %s %s (id %q) is not expected", svc.Type, svc.Name, svc.ID)
			continue
		}
		delete(want, svc.Type)
		var ifaces []string
		for _, ep := range svc.Endpoints {
			ifaces = append(ifaces, ep.Interface)
			if ep.URL != w.url || ep.Region != httpapi.DefaultRegion || ep.RegionID != httpapi.DefaultRegion {
				t.Errorf("%s %s endpoint %+v, want url %s in %s", svc.Type, ep.Interface, ep, w.url,
					httpapi.DefaultRegion)
			}
			if !hex32RE.MatchString(ep.ID) || ids[ep.ID] {
				t.Errorf("%s %s endpoint id %q: want a distinct ID", svc.Type, ep.Interface, ep.ID)
			}
			ids[ep.ID] = true
		}
		if slices.Sort(ifaces); !slices.Equal(ifaces, []string{"admin", "internal", "public"}) {
			t.Errorf("%s endpoints %v, want admin, internal and public", svc.Type, ifaces)
		}
	}
	if len(want) > 0 {
		t.Errorf("catalog lacks %v", keys(want))
	}
}

// keystoneError checks a Keystone error body of status.
func keystoneError(t *testing.T, status int, hdr http.Header, b []byte) string {
	t.Helper()
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
	if body.Error.Code != status || body.Error.Title != http.StatusText(status) || body.Error.Message == "" {
		t.Errorf("error %+v, want code %d, title %q and a message", *body.Error, status, http.StatusText(status))
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Keystone uri=") {
		t.Errorf("401 with WWW-Authenticate %q", hdr.Get("WWW-Authenticate"))
	}
	return body.Error.Message
}

func TestKeystoneV3Versions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v3 := map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links": []any{map[string]any{"rel": "self", "href": e.url + "/identity/v3/"}},
		"media-types": []any{map[string]any{
			"base": "application/json", "type": "application/vnd.openstack.identity-v3+json",
		}},
	}
	for _, path := range []string{"/identity/v3", "/identity/v3/"} {
		status, _, b := e.call(t, "GET", path, "", "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d, want 200", path, status)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, map[string]any{"version": v3}) {
			t.Errorf("GET %s: %s, want the v3 version %v", path, b, v3)
		}
	}
	for _, path := range []string{"/identity", "/identity/"} {
		status, _, b := e.call(t, "GET", path, "", "")
		if status != http.StatusMultipleChoices {
			t.Fatalf("GET %s: %d, want 300", path, status)
		}
		var got struct {
			Versions struct {
				Values []map[string]any `json:"values"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		vs := got.Versions.Values
		if len(vs) != 2 || !reflect.DeepEqual(vs[0], v3) || vs[1]["id"] != "v2.0" {
			t.Errorf("GET %s: versions %s, want v3 then v2.0", path, b)
		}
	}
}

func TestKeystoneV3Issue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	memberA := e.user(t, e.a, cloudimage.RoleMember)
	adminB := e.user(t, e.b, cloudimage.RoleAdmin)
	readerA := e.user(t, e.a, cloudimage.RoleReader)
	// gophercloud's body, keys in its order: user and project by name,
	// both domains by name.
	gophercloud := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"domain":{"name":"Default"},` +
		`"name":"` + memberA + `","password":"` + testPassword + `"}}},"scope":{"project":{"domain":` +
		`{"name":"Default"},"name":"` + e.a.Name + `"}}}}`

	for _, tc := range []struct {
		name   string
		body   string
		p      *cloudimage.Project
		role   cloudimage.Role
		extras bool
	}{
		{"gophercloud: names, domains by name", gophercloud, e.a, cloudimage.RoleMember, false},
		{"keystoneauth: names, domains by ID", v3Body(userByName(adminB, testPassword, domainByID),
			projectByName(e.b.Name, domainByID)), e.b, cloudimage.RoleAdmin, false},
		{"project by ID", v3Body(userByName(readerA, testPassword, domainByName), projectByID(e.a.ID)),
			e.a, cloudimage.RoleReader, false},
		{"project by ID with a domain", v3Body(userByName(memberA, testPassword, domainByID),
			map[string]any{"project": map[string]any{"id": e.a.ID, "domain": domainByID}}),
			e.a, cloudimage.RoleMember, false},
		{"unknown fields are ignored", `{"auth":{"identity":{"methods":["password"],"password":{"user":` +
			`{"name":"` + memberA + `","domain":{"id":"default","extra":1},"password":"` + testPassword +
			`"}},"extra":true},"scope":{"project":{"id":"` + e.a.ID + `"}}},"other":{}}`,
			e.a, cloudimage.RoleMember, true},
		{"user by ID", v3Body(userByID(e.userID(t, e.a, cloudimage.RoleMember), testPassword),
			projectByID(e.a.ID)), e.a, cloudimage.RoleMember, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret, r := e.v3Issue(t, tc.body)
			name := userName(tc.p, tc.role)
			e.checkV3Token(t, r, tc.p, name, e.userID(t, tc.p, tc.role), tc.role)
			// The secret is a token every face takes.
			if status, _, b := e.call(t, "GET", "/v2/images", secret, ""); status != http.StatusOK {
				t.Errorf("GET /v2/images with the v3 token: %d %q", status, b)
			}
		})
	}
}

// TestKeystoneV3RoleIDs: a role's ID is the same in every token and
// differs from the other roles'.
func TestKeystoneV3RoleIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := map[string]string{}
	for _, p := range []*cloudimage.Project{e.a, e.b} {
		for _, role := range roles {
			tok := e.token(t, p, role)
			r := e.v3Validate(t, tok, tok, "")
			e.checkV3Token(t, r, p, userName(p, role), e.userID(t, p, role), role)
			if len(r.tok.Roles) != 1 {
				continue
			}
			got := r.tok.Roles[0]
			if prev, ok := ids[got.Name]; ok && prev != got.ID {
				t.Errorf("role %s has IDs %s and %s", got.Name, prev, got.ID)
			}
			ids[got.Name] = got.ID
		}
	}
	seen := map[string]bool{}
	for name, id := range ids {
		if seen[id] {
			t.Errorf("role %s shares its ID %s", name, id)
		}
		seen[id] = true
	}
	if len(ids) != len(roles) {
		t.Errorf("saw roles %v, want %v", keys(ids), roles)
	}
}

// TestKeystoneV3Unscoped: a request without a project scope gets a token
// for the user's only project; a user of several must name one, and a
// user of none is refused.
func TestKeystoneV3Unscoped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	memberA := e.user(t, e.a, cloudimage.RoleMember)
	for name, body := range map[string]string{
		"no scope":  v3Body(userByName(memberA, testPassword, domainByName), nil),
		"unscoped":  v3Body(userByName(memberA, testPassword, domainByName), "unscoped"),
		"null":      strings.Replace(v3Body(userByName(memberA, testPassword, domainByName), "x"), `"x"`, "null", 1),
		"wrong pwd": v3Body(userByName(memberA, "wrong", domainByName), nil),
	} {
		t.Run(name, func(t *testing.T) {
			if name == "wrong pwd" {
				status, hdr, b := e.call(t, "POST", v3Tokens, "", body)
				if status != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401; body %q", status, b)
				}
				keystoneError(t, status, hdr, b)
				return
			}
			_, r := e.v3Issue(t, body)
			e.checkV3Token(t, r, e.a, memberA, e.userID(t, e.a, cloudimage.RoleMember), cloudimage.RoleMember)
		})
	}

	u, _, err := e.identity.CreateUser(ctx, e.a.ID, "two-projects", testPassword, cloudimage.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.AssignRole(ctx, u.ID, e.b.ID, cloudimage.RoleReader); err != nil {
		t.Fatal(err)
	}
	status, hdr, b := e.call(t, "POST", v3Tokens, "", v3Body(userByName(u.Name, testPassword, domainByName), nil))
	if status != http.StatusBadRequest {
		t.Fatalf("a user of two projects without a scope: %d, want 400; body %q", status, b)
	}
	if msg := keystoneError(t, status, hdr, b); !strings.Contains(msg, "2 projects") {
		t.Errorf("message %q does not say why", msg)
	}
	_, r := e.v3Issue(t, v3Body(userByName(u.Name, testPassword, domainByName), projectByID(e.b.ID)))
	e.checkV3Token(t, r, e.b, u.Name, u.ID, cloudimage.RoleReader)

	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	lonely := &cloudimage.User{ID: strings.Repeat("e", 32), Name: "no-projects", PasswordHash: string(hash),
		CreatedAt: time.Now()}
	if err := e.db.CreateUser(ctx, lonely); err != nil {
		t.Fatal(err)
	}
	status, hdr, b = e.call(t, "POST", v3Tokens, "", v3Body(userByName(lonely.Name, testPassword, domainByID), nil))
	if status != http.StatusUnauthorized {
		t.Fatalf("a user of no project: %d, want 401; body %q", status, b)
	}
	keystoneError(t, status, hdr, b)
}

func TestKeystoneV3IssueErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	memberA := e.user(t, e.a, cloudimage.RoleMember)
	memberB := e.user(t, e.b, cloudimage.RoleMember)
	user := userByName(memberA, testPassword, domainByName)
	scope := projectByID(e.a.ID)
	good := v3Body(user, scope)
	other := map[string]string{"name": "Other"}
	// withIdentity is good with identity replaced.
	withIdentity := func(identity string) string {
		return `{"auth":{"identity":` + identity + `,"scope":{"project":{"id":"` + e.a.ID + `"}}}}`
	}
	pw := `"password":"` + testPassword + `"`

	for _, tc := range []struct {
		name   string
		body   string
		status int
	}{
		{"bad password", v3Body(userByName(memberA, "wrong", domainByName), scope), 401},
		{"unknown user", v3Body(userByName("nobody", testPassword, domainByName), scope), 401},
		{"unknown user ID", v3Body(userByID(strings.Repeat("0", 32), testPassword), scope), 401},
		{"the user name as ID", v3Body(userByID(memberA, testPassword), scope), 401},
		{"user in another domain by name", v3Body(userByName(memberA, testPassword, other), scope), 401},
		{"user in another domain by ID", v3Body(userByName(memberA, testPassword,
			map[string]string{"id": "other"}), scope), 401},
		{"domain name case", v3Body(userByName(memberA, testPassword,
			map[string]string{"name": "default"}), scope), 401},
		{"domain ID wins over name", v3Body(userByName(memberA, testPassword,
			map[string]string{"id": "other", "name": "Default"}), scope), 401},
		{"project in another domain", v3Body(user, projectByName(e.a.Name, other)), 401},
		{"unknown project ID", v3Body(user, projectByID(strings.Repeat("0", 32))), 401},
		{"unknown project name", v3Body(user, projectByName("nowhere", domainByID)), 401},
		{"the project's appkey", v3Body(user, projectByID(e.a.AppKey)), 401},
		{"user without a role in the project", v3Body(userByName(memberB, testPassword, domainByID), scope), 401},
		{"domain scope", v3Body(user, map[string]any{"domain": domainByID}), 401},
		{"system scope", v3Body(user, map[string]any{"system": map[string]bool{"all": true}}), 401},
		{"trust scope", v3Body(user, map[string]any{"OS-TRUST:trust": map[string]string{"id": "x"}}), 401},
		{"token method", withIdentity(`{"methods":["token"],"token":{"id":"x"}}`), 401},
		{"password and totp", withIdentity(`{"methods":["password","totp"],"password":{"user":{"name":"` +
			memberA + `","domain":{"id":"default"},` + pw + `}}}`), 401},

		{"malformed JSON", `{"auth":`, 400},
		{"not JSON", `auth=1`, 400},
		{"empty body", ``, 400},
		{"trailing data", good + `]`, 400},
		{"array", `[]`, 400},
		{"no auth", `{}`, 400},
		{"auth null", `{"auth":null}`, 400},
		{"no identity", `{"auth":{"scope":{"project":{"id":"` + e.a.ID + `"}}}}`, 400},
		{"no methods", withIdentity(`{"password":{"user":{"name":"` + memberA + `","domain":{"id":"default"},` +
			pw + `}}}`), 400},
		{"empty methods", withIdentity(`{"methods":[],"password":{"user":{"name":"` + memberA +
			`","domain":{"id":"default"},` + pw + `}}}`), 400},
		{"methods a string", withIdentity(`{"methods":"password","password":{"user":{"name":"` + memberA +
			`","domain":{"id":"default"},` + pw + `}}}`), 400},
		{"no password object", withIdentity(`{"methods":["password"]}`), 400},
		{"no user", withIdentity(`{"methods":["password"],"password":{}}`), 400},
		{"user with no name or ID", v3Body(map[string]any{"domain": domainByID, "password": testPassword}, scope), 400},
		{"user name without a domain", v3Body(map[string]any{"name": memberA, "password": testPassword}, scope), 400},
		{"empty domain", v3Body(userByName(memberA, testPassword, map[string]string{}), scope), 400},
		{"no password", v3Body(map[string]any{"name": memberA, "domain": domainByID}, scope), 400},
		{"empty password", v3Body(userByName(memberA, "", domainByID), scope), 400},
		{"password a number", withIdentity(`{"methods":["password"],"password":{"user":{"name":"` + memberA +
			`","domain":{"id":"default"},"password":7}}}`), 400},
		{"scope a number", v3Body(user, 7), 400},
		{"scope another string", v3Body(user, "project"), 400},
		{"empty scope", v3Body(user, map[string]any{}), 400},
		{"empty project", v3Body(user, map[string]any{"project": map[string]any{}}), 400},
		{"project name without a domain", v3Body(user, map[string]any{"project": map[string]any{"name": e.a.Name}}), 400},
		{"project with an empty domain", v3Body(user, projectByName(e.a.Name, map[string]string{})), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, hdr, b := e.call(t, "POST", v3Tokens, "", tc.body, "Content-Type", "application/json")
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %q", status, tc.status, b)
			}
			if hdr.Get("X-Subject-Token") != "" {
				t.Error("a refusal carries X-Subject-Token")
			}
			keystoneError(t, status, hdr, b)
		})
	}
}

// expiredToken stores a token of the user who holds role in p that
// expired a minute ago, and returns its secret.
func (e *env) expiredToken(t *testing.T, p *cloudimage.Project, role cloudimage.Role) string {
	t.Helper()
	secret := strings.Repeat("5", 32)
	now := time.Now()
	err := e.db.CreateToken(context.Background(), &cloudimage.Token{
		Hash: cloudimage.HashToken(secret), User: &cloudimage.User{ID: e.userID(t, p, role)}, Project: p,
		IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// memberAInB makes A's member a reader of B too, and returns a token of
// that user scoped to B.
func (e *env) memberAInB(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	userID := e.userID(t, e.a, cloudimage.RoleMember)
	if err := e.db.AssignRole(ctx, userID, e.b.ID, cloudimage.RoleReader); err != nil {
		t.Fatal(err)
	}
	secret := strings.Repeat("6", 32)
	now := time.Now()
	err := e.db.CreateToken(ctx, &cloudimage.Token{
		Hash: cloudimage.HashToken(secret), User: &cloudimage.User{ID: userID}, Project: e.b,
		IssuedAt: now, ExpiresAt: now.Add(testTTL),
	})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// v3Subject is a token to validate or revoke, and whose it is: its user
// holds role in p, or, for memberAInB, the member of A holds role in p.
type v3Subject struct {
	secret string
	p      *cloudimage.Project
	user   string
	role   cloudimage.Role
}

func TestKeystoneV3Validate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	memberA := e.token(t, e.a, cloudimage.RoleMember)
	readerA := e.token(t, e.a, cloudimage.RoleReader)
	adminA := e.token(t, e.a, cloudimage.RoleAdmin)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)
	memberB := e.token(t, e.b, cloudimage.RoleMember)
	memberAName := e.user(t, e.a, cloudimage.RoleMember)
	memberAID := e.userID(t, e.a, cloudimage.RoleMember)
	expired := e.expiredToken(t, e.a, cloudimage.RoleMember)
	inB := e.memberAInB(t)

	// A token validates to what its issue answered.
	secret, issued := e.v3Issue(t, v3Body(userByName(memberAName, testPassword, domainByName), projectByID(e.a.ID)))
	if got := e.v3Validate(t, secret, secret, ""); !reflect.DeepEqual(got.body, issued.body) {
		t.Errorf("validation body\n%v\nwant the issue's\n%v", got.body, issued.body)
	}
	noCatalog := e.v3Validate(t, secret, secret, "?nocatalog")
	if _, ok := noCatalog.raw["catalog"]; ok {
		t.Error("?nocatalog still has a catalog")
	}
	want := slices.DeleteFunc(slices.Clone(v3TokenKeys), func(k string) bool { return k == "catalog" })
	if got := keys(noCatalog.raw); !slices.Equal(got, want) {
		t.Errorf("?nocatalog keys %v, want %v", got, want)
	}

	subj := func(secret string, p *cloudimage.Project, role cloudimage.Role) v3Subject {
		return v3Subject{secret, p, userName(p, role), role}
	}
	ofMemberA := subj(memberA, e.a, cloudimage.RoleMember)
	ofReaderA := subj(readerA, e.a, cloudimage.RoleReader)
	ofAdminA := subj(adminA, e.a, cloudimage.RoleAdmin)
	ofMemberB := subj(memberB, e.b, cloudimage.RoleMember)
	ofAdminB := subj(adminB, e.b, cloudimage.RoleAdmin)
	ofInB := v3Subject{inB, e.b, memberAName, cloudimage.RoleReader}
	none := func(secret string) v3Subject { return v3Subject{secret: secret} }

	// The body of the 404 for a token that does not exist: a token the
	// caller may not see must get the very same answer.
	_, _, unknown := e.call(t, "GET", v3Tokens, adminA, "", "X-Subject-Token", strings.Repeat("a", 32))

	for _, tc := range []struct {
		name    string
		caller  string
		subject v3Subject
		status  int
	}{
		{"another token of the same user", secret, ofMemberA, 200},
		{"its user's token in another project", memberA, ofInB, 200},
		{"from its user's token in another project", inB, ofMemberA, 200},
		{"an admin, another user's token in its project", adminA, ofMemberA, 200},
		{"an admin, a reader's token in its project", adminA, ofReaderA, 200},
		{"an admin, its own", adminA, ofAdminA, 200},
		{"an admin of B, a token in B of a user of A", adminB, ofInB, 200},
		{"an admin of B, a member's of B", adminB, ofMemberB, 200},
		{"an admin of A, a token of B", adminA, ofMemberB, 404},
		{"an admin of A, B's admin's", adminA, ofAdminB, 404},
		{"an admin of A, a token in B of a user of A", adminA, ofInB, 404},
		{"an admin of B, a token of A", adminB, ofMemberA, 404},
		{"a reader of the same project", readerA, ofMemberA, 404},
		{"a member, its admin's", memberA, ofAdminA, 404},
		{"a reader of B, its admin's", inB, ofAdminB, 404},
		{"a member of another project", memberB, ofMemberA, 404},
		{"unknown subject", adminA, none(strings.Repeat("a", 32)), 404},
		{"no subject", adminA, none(""), 404},
		{"expired subject", adminA, none(expired), 404},
		{"the subject's hash", adminA, none(cloudimage.HashToken(memberA)), 404},
		{"no caller", "", ofMemberA, 401},
		{"unknown caller", strings.Repeat("b", 32), ofMemberA, 401},
		{"expired caller", expired, ofMemberA, 401},
		{"expired caller on itself", expired, none(expired), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := tc.subject
			status, hdr, b := e.call(t, "GET", v3Tokens, tc.caller, "", "X-Subject-Token", sub.secret)
			if status != tc.status {
				t.Fatalf("GET: status %d, want %d; body %q", status, tc.status, b)
			}
			switch {
			case status == http.StatusOK:
				userID := memberAID
				if sub.user != memberAName {
					userID = e.userID(t, sub.p, sub.role)
				}
				e.checkV3Token(t, decodeV3(t, b), sub.p, sub.user, userID, sub.role)
				if hdr.Get("X-Subject-Token") != sub.secret {
					t.Errorf("X-Subject-Token %q, want the subject", hdr.Get("X-Subject-Token"))
				}
			case status == http.StatusNotFound && sub.p != nil:
				if string(b) != string(unknown) {
					t.Errorf("a live token the caller may not see: body %q, want an unknown token's %q", b, unknown)
				}
				if hdr.Get("X-Subject-Token") != "" {
					t.Error("a refusal echoes X-Subject-Token")
				}
				fallthrough
			default:
				keystoneError(t, status, hdr, b)
			}

			status, hdr, b = e.call(t, "HEAD", v3Tokens, tc.caller, "", "X-Subject-Token", sub.secret)
			if status != tc.status || len(b) != 0 {
				t.Errorf("HEAD: status %d with %d bytes, want %d and no body", status, len(b), tc.status)
			}
			if got := hdr.Get("X-Subject-Token"); tc.status == 200 && got != sub.secret {
				t.Errorf("HEAD: X-Subject-Token %q, want the subject", got)
			}
		})
	}
}

func TestKeystoneV3Revoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	memberA := e.token(t, e.a, cloudimage.RoleMember)
	readerA := e.token(t, e.a, cloudimage.RoleReader)
	adminA := e.token(t, e.a, cloudimage.RoleAdmin)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)
	memberB := e.token(t, e.b, cloudimage.RoleMember)
	inB := e.memberAInB(t)
	revoke := func(t *testing.T, caller, subject string, want int) {
		t.Helper()
		status, hdr, b := e.call(t, "DELETE", v3Tokens, caller, "", "X-Subject-Token", subject)
		if status != want {
			t.Fatalf("DELETE: status %d, want %d; body %q", status, want, b)
		}
		if status == http.StatusNoContent {
			if len(b) != 0 {
				t.Errorf("204 with body %q", b)
			}
		} else {
			keystoneError(t, status, hdr, b)
		}
	}
	// works tells whether token, scoped to p, is still accepted on every
	// face; p's admin validates it through v3.
	works := func(t *testing.T, p *cloudimage.Project, token string, want bool) {
		t.Helper()
		status, _, _ := e.call(t, "GET", "/v2/images", token, "")
		h, _ := e.nhn(t, "GET", imagesPath(p)+"?limit=1", token, "")
		show, _ := e.nhn(t, "GET", tokensPath(p)+"?id="+token, "", "")
		v3, _, _ := e.call(t, "GET", v3Tokens, e.token(t, p, cloudimage.RoleAdmin), "", "X-Subject-Token", token)
		got := []bool{status == 200, h.IsSuccessful, show.IsSuccessful, v3 == 200}
		if !slices.Equal(got, []bool{want, want, want, want}) {
			t.Errorf("token accepted by v2, v1.0 list, v1.0 token show, v3 validate: %v, want all %v", got, want)
		}
		if !want && (status != 401 || h.ResultCode != -3 || v3 != 404) {
			t.Errorf("refusals: v2 %d, v1.0 %d, v3 %d; want 401, -3, 404", status, h.ResultCode, v3)
		}
	}

	t.Run("refused", func(t *testing.T) {
		// A live token the caller may not revoke is 404, as an unknown
		// one is.
		revoke(t, memberB, memberA, 404)
		revoke(t, readerA, memberA, 404)
		revoke(t, memberA, adminA, 404)
		revoke(t, adminB, memberA, 404)
		revoke(t, adminA, memberB, 404)
		revoke(t, adminA, adminB, 404)
		revoke(t, adminA, inB, 404)
		revoke(t, inB, adminB, 404)
		revoke(t, "", memberA, 401)
		revoke(t, strings.Repeat("b", 32), memberA, 401)
		revoke(t, adminA, strings.Repeat("a", 32), 404)
		revoke(t, adminA, "", 404)
		revoke(t, adminA, cloudimage.HashToken(memberA), 404)
		works(t, e.a, memberA, true)
		works(t, e.a, adminA, true)
		works(t, e.b, memberB, true)
		works(t, e.b, adminB, true)
		works(t, e.b, inB, true)
	})
	t.Run("its own", func(t *testing.T) {
		name := e.user(t, e.a, cloudimage.RoleMember)
		secret, _ := e.v3Issue(t, v3Body(userByName(name, testPassword, domainByID), projectByID(e.a.ID)))
		works(t, e.a, secret, true)
		revoke(t, secret, secret, 204)
		works(t, e.a, secret, false)
		revoke(t, adminA, secret, 404)
		// The user's other tokens are untouched.
		works(t, e.a, memberA, true)
		works(t, e.b, inB, true)
	})
	t.Run("an admin, another user's in its project", func(t *testing.T) {
		revoke(t, adminA, readerA, 204)
		works(t, e.a, readerA, false)
		revoke(t, readerA, readerA, 401)
		works(t, e.a, memberA, true)
	})
	t.Run("an admin of B, a token in B of a user of A", func(t *testing.T) {
		inB2 := strings.Repeat("7", 32)
		now := time.Now()
		if err := e.db.CreateToken(context.Background(), &cloudimage.Token{
			Hash: cloudimage.HashToken(inB2), User: &cloudimage.User{ID: e.userID(t, e.a, cloudimage.RoleMember)},
			Project: e.b, IssuedAt: now, ExpiresAt: now.Add(testTTL),
		}); err != nil {
			t.Fatal(err)
		}
		works(t, e.b, inB2, true)
		revoke(t, adminB, inB2, 204)
		works(t, e.b, inB2, false)
		works(t, e.b, inB, true)
		works(t, e.a, memberA, true)
	})
	t.Run("its user's token in another project", func(t *testing.T) {
		revoke(t, memberA, inB, 204)
		works(t, e.b, inB, false)
		works(t, e.a, memberA, true)
	})
}

// TestKeystoneV3Interchangeable: a v3 token works on the v2 and v1.0
// faces, and v1.0 and v2.0 tokens validate through v3.
func TestKeystoneV3Interchangeable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)
	bPublic := e.newImage(t, adminB, "b-public", "visibility", "public", "os_type", "linux")
	bPrivate := e.newImage(t, adminB, "b-private", "visibility", "private", "os_type", "linux")
	member := e.user(t, e.a, cloudimage.RoleMember)
	memberID := e.userID(t, e.a, cloudimage.RoleMember)

	v3, _ := e.v3Issue(t, v3Body(userByName(member, testPassword, domainByName),
		projectByName(e.a.Name, domainByName)))
	id := e.newImage(t, v3, "made with a v3 token", "os_type", "linux")
	if got := e.getImage(t, v3, id)["owner"]; got != e.a.ID {
		t.Errorf("owner %v, want %s", got, e.a.ID)
	}
	if status, _, _ := e.call(t, "GET", "/v2/images/"+bPrivate, v3, ""); status != http.StatusNotFound {
		t.Errorf("B's private image with A's v3 token: %d, want 404", status)
	}
	ids := e.listIDs(t, e.a, v3, "")
	if !slices.Contains(ids, id) || !slices.Contains(ids, bPublic) || slices.Contains(ids, bPrivate) {
		t.Errorf("v1.0 list with a v3 token: %v, want %s and %s, not %s", ids, id, bPublic, bPrivate)
	}
	e.nhnFail(t, "GET", imagesPath(e.b), v3, -3)

	h, top := e.nhn(t, "POST", tokensPath(e.a), "", authBody(member, testPassword))
	if !h.IsSuccessful {
		t.Fatalf("v1.0 token: %+v", h)
	}
	var access struct {
		Token struct {
			ID string `json:"id"`
		} `json:"token"`
	}
	if err := json.Unmarshal(top["access"], &access); err != nil || access.Token.ID == "" {
		t.Fatalf("v1.0 token access %s", top["access"])
	}
	v2 := e.keystoneToken(t, keystoneBody("tenantName", e.a.Name, member, testPassword), e.a, cloudimage.RoleMember)

	for name, tok := range map[string]string{"v1.0": access.Token.ID, "v2.0": v2, "v3": v3} {
		r := e.v3Validate(t, tok, tok, "")
		e.checkV3Token(t, r, e.a, member, memberID, cloudimage.RoleMember)
		// And each validates the others: they are the same user's.
		for _, other := range []string{access.Token.ID, v2, v3} {
			if status, _, b := e.call(t, "GET", v3Tokens, tok, "", "X-Subject-Token", other); status != 200 {
				t.Errorf("%s token validating another of its user's: %d %q", name, status, b)
			}
		}
	}
}

func TestKeystoneV3Projects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	memberA := e.token(t, e.a, cloudimage.RoleMember)
	readerA := e.token(t, e.a, cloudimage.RoleReader)
	adminA := e.token(t, e.a, cloudimage.RoleAdmin)
	memberB := e.token(t, e.b, cloudimage.RoleMember)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)
	memberAID := e.userID(t, e.a, cloudimage.RoleMember)

	list := func(t *testing.T, path, token string) []string {
		t.Helper()
		status, _, b := e.call(t, "GET", path, token, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d, want 200; body %q", path, status, b)
		}
		var body struct {
			Projects []struct {
				ID       string            `json:"id"`
				Name     string            `json:"name"`
				DomainID string            `json:"domain_id"`
				Enabled  bool              `json:"enabled"`
				IsDomain bool              `json:"is_domain"`
				Links    map[string]string `json:"links"`
			} `json:"projects"`
			Links map[string]*string `json:"links"`
		}
		if err := json.Unmarshal(b, &body); err != nil || body.Projects == nil {
			t.Fatalf("GET %s: body %q", path, b)
		}
		if self := body.Links["self"]; self == nil || *self != e.url+path {
			t.Errorf("GET %s: links %v, want self %s", path, body.Links, e.url+path)
		}
		var ids []string
		for _, p := range body.Projects {
			if p.DomainID != cloudimage.DomainID || !p.Enabled || p.IsDomain ||
				p.Links["self"] != e.url+"/identity/v3/projects/"+p.ID {
				t.Errorf("project %+v: want in the default domain, enabled, with its link", p)
			}
			ids = append(ids, p.ID)
		}
		return ids
	}

	if got := list(t, "/identity/v3/auth/projects", memberA); !slices.Equal(got, []string{e.a.ID}) {
		t.Errorf("auth/projects of A's member: %v, want [%s]", got, e.a.ID)
	}
	own := "/identity/v3/users/" + memberAID + "/projects"
	ofAdminA := "/identity/v3/users/" + e.userID(t, e.a, cloudimage.RoleAdmin) + "/projects"
	ofAdminB := "/identity/v3/users/" + e.userID(t, e.b, cloudimage.RoleAdmin) + "/projects"
	unknown := "/identity/v3/users/" + strings.Repeat("0", 32) + "/projects"
	check := func(t *testing.T, path, token string, want []string) {
		t.Helper()
		if got := list(t, path, token); !slices.Equal(got, want) {
			t.Errorf("GET %s: %v, want %v", path, got, want)
		}
	}
	refused := func(t *testing.T, path, token string, want int) {
		t.Helper()
		status, hdr, b := e.call(t, "GET", path, token, "")
		if status != want {
			t.Errorf("GET %s with %q: %d, want %d; body %q", path, token, status, want, b)
			return
		}
		keystoneError(t, status, hdr, b)
	}

	t.Run("a user of one project", func(t *testing.T) {
		check(t, own, memberA, []string{e.a.ID})
		check(t, own, adminA, []string{e.a.ID})
		check(t, ofAdminA, adminA, []string{e.a.ID})
		// An admin of B sees none of a user of A's projects.
		check(t, own, adminB, []string{})
		check(t, ofAdminA, adminB, []string{})
		check(t, ofAdminB, adminA, []string{})
		check(t, unknown, adminA, []string{})
		refused(t, own, memberB, 403)
		refused(t, own, readerA, 403)
		refused(t, ofAdminA, memberA, 403)
		refused(t, ofAdminB, memberA, 403)
		refused(t, unknown, memberA, 403)
		refused(t, own, "", 401)
		refused(t, "/identity/v3/auth/projects", "", 401)
		refused(t, "/identity/v3/auth/projects", strings.Repeat("b", 32), 401)
	})
	t.Run("a user of two projects", func(t *testing.T) {
		inB := e.memberAInB(t)
		check(t, "/identity/v3/auth/projects", memberA, []string{e.a.ID, e.b.ID})
		check(t, "/identity/v3/auth/projects", inB, []string{e.a.ID, e.b.ID})
		check(t, own, memberA, []string{e.a.ID, e.b.ID})
		check(t, own, inB, []string{e.a.ID, e.b.ID})
		// Each admin sees only its own project of the user's.
		check(t, own, adminA, []string{e.a.ID})
		check(t, own, adminB, []string{e.b.ID})
		refused(t, own, memberB, 403)
		refused(t, ofAdminB, inB, 403)
	})
}
