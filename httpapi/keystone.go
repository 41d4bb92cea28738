package httpapi

import (
	"net/http"
	"time"

	"github.com/cloudimage/cloudimage"
)

// The identity face: Keystone v2.0 and v3 tokens, enough for OpenStack
// clients and NHN Cloud's IaaS token API. v3 is in keystone_v3.go.

func (s *Server) keystoneRoutes(mux *routeMux) {
	mux.Handle("GET /identity", s.keystone(s.keystoneVersions))
	mux.Handle("GET /identity/{$}", s.keystone(s.keystoneVersions))
	mux.Handle("GET /identity/v2.0/{$}", s.keystone(s.keystoneVersionV2))
	mux.Handle("GET /identity/v2.0", s.keystone(s.keystoneVersionV2))
	mux.Handle("POST /identity/v2.0/tokens", s.keystone(s.keystoneIssueToken))
	s.keystoneV3Routes(mux)
}

// keystone adapts an identity handler that returns an error.
func (s *Server) keystone(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeKeystoneError(w, r, err)
		}
	})
}

func (s *Server) keystoneV2Version() map[string]any {
	return map[string]any{
		"id":      "v2.0",
		"status":  "stable",
		"updated": "2014-04-17T00:00:00Z",
		"links":   []map[string]string{{"rel": "self", "href": s.publicURL + "/identity/v2.0/"}},
		"media-types": []map[string]string{{
			"base": "application/json", "type": "application/vnd.openstack.identity-v2.0+json",
		}},
	}
}

// keystoneVersions lists the identity versions, the newest first, as
// Keystone's root does: clients pick v3 from it.
func (s *Server) keystoneVersions(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusMultipleChoices, map[string]any{
		"versions": map[string]any{"values": []any{s.keystoneV3Version(), s.keystoneV2Version()}},
	})
	return nil
}

func (s *Server) keystoneVersionV2(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"version": s.keystoneV2Version()})
	return nil
}

// keystoneTokenRequest is the body of POST /v2.0/tokens.
type keystoneTokenRequest struct {
	Auth *struct {
		TenantID            string `json:"tenantId"`
		TenantName          string `json:"tenantName"`
		PasswordCredentials *struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"passwordCredentials"`
	} `json:"auth"`
}

func (s *Server) keystoneIssueToken(w http.ResponseWriter, r *http.Request) error {
	var req keystoneTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		if cloudimage.ErrorCode(err) == cloudimage.ETOOLARGE {
			return err
		}
		return cloudimage.Errorf(cloudimage.EINVALID, "Malformed JSON in request body.")
	}
	a := req.Auth
	switch {
	case a == nil:
		return cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find auth in request body.")
	case a.PasswordCredentials == nil || a.PasswordCredentials.Username == "" || a.PasswordCredentials.Password == "":
		return cloudimage.Errorf(cloudimage.EINVALID,
			"Expecting to find passwordCredentials with username and password in auth.")
	case a.TenantID == "" && a.TenantName == "":
		return cloudimage.Errorf(cloudimage.EINVALID, "Expecting to find tenantId or tenantName in auth.")
	}
	t, err := s.identity.Issue(r.Context(), cloudimage.Credentials{
		ProjectID:   a.TenantID,
		ProjectName: a.TenantName,
		Username:    a.PasswordCredentials.Username,
		Password:    a.PasswordCredentials.Password,
		Client:      clientHost(r),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.keystoneTokenBody(t))
	return nil
}

// keystoneTokenBody is a Keystone v2 token with this server's catalog:
// the image endpoint is the server's root (clients add /v2/...), the
// identity endpoint its /identity/v2.0.
func (s *Server) keystoneTokenBody(t *cloudimage.IssuedToken) map[string]any {
	roles := make([]map[string]string, len(t.Roles))
	roleNames := make([]string, len(t.Roles))
	isAdmin := 0
	for i, r := range t.Roles {
		roles[i] = map[string]string{"name": string(r)}
		roleNames[i] = string(r)
		if r == cloudimage.RoleAdmin {
			isAdmin = 1
		}
	}
	endpoint := func(id, url string) map[string]any {
		return map[string]any{
			"id": id, "region": s.region,
			"publicURL": url, "internalURL": url, "adminURL": url,
		}
	}
	service := func(typ, name, url string) map[string]any {
		return map[string]any{
			"type": typ, "name": name, "endpoints_links": []any{},
			"endpoints": []any{endpoint(typ, url)},
		}
	}
	return map[string]any{"access": map[string]any{
		"token": map[string]any{
			"id":        t.ID,
			"issued_at": t.IssuedAt.UTC().Format(nhnTime),
			"expires":   t.ExpiresAt.UTC().Truncate(time.Second).Format(keystoneExpires),
			"tenant": map[string]any{
				"id": t.Project.ID, "name": t.Project.Name, "description": "", "enabled": true,
			},
		},
		"serviceCatalog": []any{
			service("image", "glance", s.publicURL),
			service("identity", "keystone", s.publicURL+"/identity/v2.0"),
		},
		"user": map[string]any{
			"id": t.User.ID, "name": t.User.Name, "username": t.User.Name,
			"roles": roles, "roles_links": []any{},
		},
		"metadata": map[string]any{"is_admin": isAdmin, "roles": roleNames},
	}}
}
