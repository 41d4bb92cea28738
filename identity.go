package cloudimage

import (
	"context"
	"slices"
	"time"
)

// Role is what a user may do in a project.
type Role string

// The roles a user may hold in a project.
const (
	RoleAdmin  Role = "admin"  // everything in the project, and publishing images
	RoleMember Role = "member" // create, change and delete the project's images
	RoleReader Role = "reader" // look only
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleMember || r == RoleReader
}

// The one identity domain, which every project and user is in. Keystone
// v3 clients name it by ID or by name.
const (
	DomainID   = "default"
	DomainName = "Default"
)

// Project owns images. Its ID is the OpenStack tenant ID (32 hex digits)
// and its AppKey names it in the NHN Cloud v1.0 paths.
type Project struct {
	ID        string
	Name      string
	AppKey    string
	CreatedAt time.Time
}

// User is a person or a program that authenticates with a password.
type User struct {
	ID           string
	Name         string
	PasswordHash string
	CreatedAt    time.Time
}

// Token is an issued, project-scoped token. The token's secret is never
// stored: the store keys tokens by the SHA-256 of the secret.
type Token struct {
	Hash      string
	User      *User
	Project   *Project
	Roles     []Role // the user's roles in Project, as they are now
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Caller is who is making a request, as resolved from a token.
type Caller struct {
	UserID    string
	UserName  string
	ProjectID string
	Roles     []Role
}

// HasRole reports whether the caller holds role r in its project.
func (c *Caller) HasRole(r Role) bool {
	return slices.Contains(c.Roles, r)
}

// IsAdmin reports whether the caller is an admin of its project.
func (c *Caller) IsAdmin() bool {
	return c.HasRole(RoleAdmin)
}

// CanWrite reports whether the caller may create, change or delete its
// project's images.
func (c *Caller) CanWrite() bool {
	return c.HasRole(RoleAdmin) || c.HasRole(RoleMember)
}

// IdentityStore persists projects, users, role assignments and tokens.
// Lookups of a missing thing return ENOTFOUND; a duplicate name or key
// returns ECONFLICT.
type IdentityStore interface {
	// CreateProject stores p; its ID, name and appkey must be new.
	CreateProject(ctx context.Context, p *Project) error
	// Project, ProjectByName and ProjectByAppKey find one project.
	Project(ctx context.Context, id string) (*Project, error)
	ProjectByName(ctx context.Context, name string) (*Project, error)
	ProjectByAppKey(ctx context.Context, appkey string) (*Project, error)
	// Projects returns every project.
	Projects(ctx context.Context) ([]*Project, error)

	// CreateUser stores u; its ID and name must be new.
	CreateUser(ctx context.Context, u *User) error
	// UserByName and UserByID find one user.
	UserByName(ctx context.Context, name string) (*User, error)
	UserByID(ctx context.Context, id string) (*User, error)

	// AssignRole grants the user role in the project; granting a role
	// the user already holds is not an error.
	AssignRole(ctx context.Context, userID, projectID string, role Role) error

	// Roles returns the user's roles in the project, possibly none.
	Roles(ctx context.Context, userID, projectID string) ([]Role, error)

	// CreateToken stores t, keyed by t.Hash, for t.User in t.Project.
	CreateToken(ctx context.Context, t *Token) error

	// Token returns the token with the given hash, with the hash as
	// stored (the service compares it with the one it asked for), its
	// user, its project and the user's current roles there.
	Token(ctx context.Context, hash string) (*Token, error)

	// DeleteToken removes the token with the given hash: it is revoked.
	DeleteToken(ctx context.Context, hash string) error

	// DeleteExpiredTokens removes tokens that expired before t.
	DeleteExpiredTokens(ctx context.Context, t time.Time) (int64, error)
}
