package client

import (
	"context"
	"fmt"
	"net/url"
)

// Token is an issued token as the server describes it.
type Token struct {
	ID        string   `json:"id"`
	IssuedAt  string   `json:"issued_at"`
	Expires   string   `json:"expires"`
	UserID    string   `json:"-"`
	ProjectID string   `json:"-"`
	Roles     []string `json:"-"`
}

type nhnTokenResponse struct {
	Header nhnHeader `json:"header"`
	Access struct {
		Token Token `json:"token"`
		User  struct {
			ID    string   `json:"id"`
			Roles roleList `json:"roles"`
		} `json:"user"`
	} `json:"access"`
}

func (r *nhnTokenResponse) header() nhnHeader { return r.Header }

func (r *nhnTokenResponse) token() *Token {
	t := r.Access.Token
	t.UserID = r.Access.User.ID
	t.Roles = r.Access.User.Roles.names()
	return &t
}

// IssueToken gets a token with the client's credentials, through the
// v1.0 API when AppKey is set and Keystone v2.0 otherwise, and keeps it
// in c.Token for the calls that follow.
func (c *Client) IssueToken(ctx context.Context) (*Token, error) {
	if c.Username == "" || c.Password == "" {
		return nil, fmt.Errorf("a username and password are required (set CLOUDIMAGE_USERNAME and CLOUDIMAGE_PASSWORD)")
	}
	var t *Token
	switch {
	case c.AppKey != "":
		path, _ := c.appkeyPath("/tokens")
		var resp nhnTokenResponse
		body := map[string]any{"auth": map[string]string{"username": c.Username, "password": c.Password}}
		if err := c.doNHN(ctx, "POST", path, body, &resp); err != nil {
			return nil, err
		}
		t = resp.token()
	case c.TenantID != "":
		var resp struct {
			Access struct {
				Token struct {
					Token
					Tenant struct {
						ID string `json:"id"`
					} `json:"tenant"`
				} `json:"token"`
				User struct {
					ID    string   `json:"id"`
					Roles roleList `json:"roles"`
				} `json:"user"`
			} `json:"access"`
		}
		body := map[string]any{"auth": map[string]any{
			"tenantId":            c.TenantID,
			"passwordCredentials": map[string]string{"username": c.Username, "password": c.Password},
		}}
		if err := c.doJSON(ctx, "POST", "/identity/v2.0/tokens", body, &resp, nil); err != nil {
			return nil, err
		}
		tok := resp.Access.Token.Token
		tok.ProjectID = resp.Access.Token.Tenant.ID
		tok.UserID = resp.Access.User.ID
		tok.Roles = resp.Access.User.Roles.names()
		t = &tok
	default:
		return nil, fmt.Errorf("an appkey or a tenant ID is required (set CLOUDIMAGE_APPKEY or CLOUDIMAGE_TENANT_ID)")
	}
	c.Token = t.ID
	return t, nil
}

// ShowToken describes the token id through the v1.0 API.
func (c *Client) ShowToken(ctx context.Context, id string) (*Token, error) {
	path, err := c.appkeyPath("/tokens?id=" + url.QueryEscape(id))
	if err != nil {
		return nil, err
	}
	var resp nhnTokenResponse
	if err := c.doNHN(ctx, "GET", path, nil, &resp); err != nil {
		return nil, err
	}
	return resp.token(), nil
}

// roleList is the roles array both token APIs return.
type roleList []struct {
	Name string `json:"name"`
}

func (l roleList) names() []string {
	out := make([]string, len(l))
	for i, r := range l {
		out[i] = r.Name
	}
	return out
}
