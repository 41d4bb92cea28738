package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/cloudimage/cloudimage"
)

// Keystone v3: password authentication, token validation and revocation,
// and the projects a token's user may scope to. Tokens are the same as
// v1.0's and v2.0's, so a token from any of them works on every face.

func (s *Server) keystoneV3Routes(mux *routeMux) {
	mux.Handle("GET /identity/v3", s.keystone(s.keystoneVersionV3))
	mux.Handle("GET /identity/v3/{$}", s.keystone(s.keystoneVersionV3))
	mux.Handle("POST /identity/v3/auth/tokens", s.keystone(s.keystoneV3Issue))
	mux.Handle("GET /identity/v3/auth/tokens", s.keystone(s.keystoneV3Validate))
	mux.Handle("DELETE /identity/v3/auth/tokens", s.keystone(s.keystoneV3Revoke))
	mux.Handle("GET /identity/v3/auth/projects", s.keystone(s.keystoneV3AuthProjects))
	mux.Handle("GET /identity/v3/users/{id}/projects", s.keystone(s.keystoneV3UserProjects))
}

// keystoneV3Version is Keystone 2023.1's v3 version: the newest microversion
// whose behaviour this face follows.
func (s *Server) keystoneV3Version() map[string]any {
	return map[string]any{
		"id":      "v3.14",
		"status":  "stable",
		"updated": "2020-04-07T00:00:00Z",
		"links":   []map[string]string{{"rel": "self", "href": s.publicURL + "/identity/v3/"}},
		"media-types": []map[string]string{{
			"base": "application/json", "type": "application/vnd.openstack.identity-v3+json",
		}},
	}
}

func (s *Server) keystoneVersionV3(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"version": s.keystoneV3Version()})
	return nil
}

// v3DomainRef names a domain by ID or by name; the ID wins when both are
// given, as in Keystone.
type v3DomainRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// check refuses a reference that names no domain (400) or another domain
// than the one there is (401, as Keystone answers for an unknown domain).
func (d *v3DomainRef) check(in string) error {
	switch {
	case d.ID == "" && d.Name == "":
		return cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find id or name in %s domain.", in)
	case d.ID != "" && d.ID != cloudimage.DomainID, d.ID == "" && d.Name != cloudimage.DomainName:
		return errV3Unauthorized
	}
	return nil
}

var errV3Unauthorized = cloudimage.Errorf(cloudimage.EUNAUTHORIZED,
	"The request you have made requires authentication.")

// v3AuthRequest is the body of POST /v3/auth/tokens. Scope is an object
// or the string "unscoped", so it is decoded on its own.
type v3AuthRequest struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *struct {
					ID       string       `json:"id"`
					Name     string       `json:"name"`
					Domain   *v3DomainRef `json:"domain"`
					Password string       `json:"password"`
				} `json:"user"`
			} `json:"password"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

// v3Scope is an object scope. Only a project scope can be honoured.
type v3Scope struct {
	Project *struct {
		ID     string       `json:"id"`
		Name   string       `json:"name"`
		Domain *v3DomainRef `json:"domain"`
	} `json:"project"`
	Domain *v3DomainRef    `json:"domain"`
	System json.RawMessage `json:"system"`
	Trust  json.RawMessage `json:"OS-TRUST:trust"`
}

// credentials turns a v3 request into credentials, checking its shape
// (400) and its domains (401).
func (req *v3AuthRequest) credentials() (cloudimage.Credentials, error) {
	var cr cloudimage.Credentials
	a := req.Auth
	switch {
	case a == nil:
		return cr, cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find auth in request body.")
	case a.Identity == nil:
		return cr, cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find identity in auth.")
	case len(a.Identity.Methods) == 0:
		return cr, cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find methods in identity.")
	case slices.ContainsFunc(a.Identity.Methods, func(m string) bool { return m != "password" }):
		return cr, cloudimage.Errorf(cloudimage.EUNAUTHORIZED,
			"Attempted to authenticate with an unsupported method: only password is supported.")
	case a.Identity.Password == nil || a.Identity.Password.User == nil:
		return cr, cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find user in password.")
	}
	u := a.Identity.Password.User
	switch {
	case u.ID == "" && u.Name == "":
		return cr, cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find id or name in user.")
	case u.ID == "" && u.Domain == nil:
		return cr, cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find domain in user.")
	case u.ID == "":
		if err := u.Domain.check("user"); err != nil {
			return cr, err
		}
	}
	if u.Password == "" {
		return cr, cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find password in user.")
	}
	cr.UserID, cr.Username, cr.Password = u.ID, u.Name, u.Password
	if cr.UserID != "" {
		cr.Username = ""
	}
	return cr, scopeCredentials(a.Scope, &cr)
}

// scopeCredentials puts the project raw names into cr. No scope, or the
// explicit "unscoped", asks for the user's only project: tokens here are
// always project-scoped.
func scopeCredentials(raw json.RawMessage, cr *cloudimage.Credentials) error {
	var sc v3Scope
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `"unscoped"` {
		cr.SoleProject = true
		return nil
	} else if err := json.Unmarshal(raw, &sc); err != nil {
		return cloudimage.Errorf(cloudimage.EINVALID, "Expecting scope to be an object or \"unscoped\".")
	}
	p := sc.Project
	switch {
	case p == nil && (sc.Domain != nil || sc.System != nil || sc.Trust != nil):
		return cloudimage.Errorf(cloudimage.EUNAUTHORIZED,
			"Only project-scoped tokens are issued: name a project in auth.scope.")
	case p == nil:
		return cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find project in scope.")
	case p.ID != "":
		cr.ProjectID = p.ID
	case p.Name == "":
		return cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find id or name in project.")
	case p.Domain == nil:
		return cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find domain in project.")
	default:
		if err := p.Domain.check("project"); err != nil {
			return err
		}
		cr.ProjectName = p.Name
	}
	return nil
}

// keystoneV3Issue authenticates with a password and answers 201 with the
// token's secret in X-Subject-Token and the token in the body.
func (s *Server) keystoneV3Issue(w http.ResponseWriter, r *http.Request) error {
	var req v3AuthRequest
	if err := decodeJSON(w, r, &req); err != nil {
		if cloudimage.ErrorCode(err) == cloudimage.ETOOLARGE {
			return err
		}
		return cloudimage.Errorf(cloudimage.EINVALID, "Malformed JSON in request body.")
	}
	cr, err := req.credentials()
	if err != nil {
		return err
	}
	cr.Client = clientHost(r)
	t, err := s.identity.Issue(r.Context(), cr)
	if err != nil {
		return err
	}
	w.Header().Set("X-Subject-Token", t.ID)
	writeJSON(w, http.StatusCreated, s.keystoneV3Body(t.Token, r))
	return nil
}

// keystoneV3Caller authenticates the caller by X-Auth-Token (401).
func (s *Server) keystoneV3Caller(r *http.Request) (*cloudimage.Caller, error) {
	t, err := s.identity.Validate(r.Context(), r.Header.Get("X-Auth-Token"))
	if err != nil {
		return nil, err
	}
	return t.Caller(), nil
}

// keystoneV3Subject authenticates the caller (401) and returns the token
// X-Subject-Token names if the caller may see it: its user's own, or, for
// an admin, one scoped to the admin's project. Any other token is 404, as
// an unknown one is, so that a secret the caller may not see is not
// confirmed to be valid.
func (s *Server) keystoneV3Subject(r *http.Request) (string, *cloudimage.Token, error) {
	caller, err := s.keystoneV3Caller(r)
	if err != nil {
		return "", nil, err
	}
	subject := r.Header.Get("X-Subject-Token")
	t, err := s.identity.Inspect(r.Context(), caller, subject)
	return subject, t, err
}

// keystoneV3Validate answers GET and HEAD: the subject token, echoed in
// X-Subject-Token, with the body of its issue (none for HEAD).
func (s *Server) keystoneV3Validate(w http.ResponseWriter, r *http.Request) error {
	subject, t, err := s.keystoneV3Subject(r)
	if err != nil {
		if r.Method == http.MethodHead {
			status, _ := s.statusAndMessage(w, r, err)
			w.WriteHeader(status)
			return nil
		}
		return err
	}
	w.Header().Set("X-Subject-Token", subject)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	writeJSON(w, http.StatusOK, s.keystoneV3Body(t, r))
	return nil
}

// keystoneV3Revoke revokes the subject token: no API accepts it after.
// Who may revoke a token is who may validate it; others get 404.
func (s *Server) keystoneV3Revoke(w http.ResponseWriter, r *http.Request) error {
	caller, err := s.keystoneV3Caller(r)
	if err != nil {
		return err
	}
	if err := s.identity.Revoke(r.Context(), caller, r.Header.Get("X-Subject-Token")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// keystoneV3AuthProjects lists the projects the caller's user may scope
// a token to.
func (s *Server) keystoneV3AuthProjects(w http.ResponseWriter, r *http.Request) error {
	t, err := s.identity.Validate(r.Context(), r.Header.Get("X-Auth-Token"))
	if err != nil {
		return err
	}
	projects, err := s.identity.UserProjects(r.Context(), t.User.ID)
	if err != nil {
		return err
	}
	s.writeV3Projects(w, projects, "/identity/v3/auth/projects")
	return nil
}

// keystoneV3UserProjects lists a user's projects: all of the caller's
// own; for an admin, another user's in the admin's project only (one or
// none); 403 for anyone else.
func (s *Server) keystoneV3UserProjects(w http.ResponseWriter, r *http.Request) error {
	caller, err := s.keystoneV3Caller(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	projects, err := s.identity.ListUserProjects(r.Context(), caller, id)
	if err != nil {
		return err
	}
	s.writeV3Projects(w, projects, "/identity/v3/users/"+id+"/projects")
	return nil
}

func (s *Server) writeV3Projects(w http.ResponseWriter, projects []*cloudimage.Project, self string) {
	out := make([]map[string]any, len(projects))
	for i, p := range projects {
		out[i] = map[string]any{
			"id": p.ID, "name": p.Name, "domain_id": cloudimage.DomainID, "parent_id": cloudimage.DomainID,
			"description": "", "enabled": true, "is_domain": false, "tags": []string{},
			"links": map[string]string{"self": s.publicURL + "/identity/v3/projects/" + p.ID},
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"projects": out,
		"links":    map[string]any{"self": s.publicURL + self, "previous": nil, "next": nil},
	})
}

// v3Time is Keystone's token time format. Tokens keep whole seconds, as
// Keystone's Fernet tokens do.
const v3Time = "2006-01-02T15:04:05.000000Z"

var v3Domain = map[string]string{"id": cloudimage.DomainID, "name": cloudimage.DomainName}

// keystoneV3Body is the v3 token body, with the catalog unless the query
// has nocatalog.
func (s *Server) keystoneV3Body(t *cloudimage.Token, r *http.Request) map[string]any {
	roles := make([]map[string]string, len(t.Roles))
	for i, role := range t.Roles {
		roles[i] = map[string]string{"id": stableID("role", string(role)), "name": string(role)}
	}
	tok := map[string]any{
		"methods": []string{"password"},
		"user": map[string]any{
			"id": t.User.ID, "name": t.User.Name, "domain": v3Domain, "password_expires_at": nil,
		},
		"project":    map[string]any{"id": t.Project.ID, "name": t.Project.Name, "domain": v3Domain},
		"roles":      roles,
		"issued_at":  t.IssuedAt.UTC().Truncate(time.Second).Format(v3Time),
		"expires_at": t.ExpiresAt.UTC().Truncate(time.Second).Format(v3Time),
		"audit_ids":  []string{auditID(t)},
		"is_domain":  false,
	}
	if !r.URL.Query().Has("nocatalog") {
		tok["catalog"] = []any{
			s.v3Service("image", "glance", s.publicURL),
			s.v3Service("identity", "keystone", s.publicURL+"/identity"),
		}
	}
	return map[string]any{"token": tok}
}

// v3Service is a catalog entry with its public, internal and admin
// endpoints, all at url.
func (s *Server) v3Service(typ, name, url string) map[string]any {
	var endpoints []map[string]string
	for _, iface := range []string{"public", "internal", "admin"} {
		endpoints = append(endpoints, map[string]string{
			"id": stableID("endpoint", s.region, typ, iface), "interface": iface,
			"region": s.region, "region_id": s.region, "url": url,
		})
	}
	return map[string]any{
		"type": typ, "name": name, "id": stableID("service", typ), "endpoints": endpoints,
	}
}

// stableID is a Keystone-shaped ID (32 hex digits) for a thing that has no
// stored ID, the same for the same parts on every server.
func stableID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// auditID identifies a token in logs without being its secret or its key
// in the store: 16 bytes derived from the stored hash, in Keystone's
// URL-safe base64.
func auditID(t *cloudimage.Token) string {
	sum := sha256.Sum256([]byte("audit\x00" + t.Hash))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
