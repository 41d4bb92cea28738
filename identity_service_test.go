package cloudimage_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
	"golang.org/x/crypto/bcrypt"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// identity is an identity service over a fresh database, with a project
// "alpha" whose member is "andy", and a project "beta" with nobody in it.
type identity struct {
	ctx      context.Context
	db       *sqlite.DB
	svc      *cloudimage.IdentityService
	alpha    *cloudimage.Project
	beta     *cloudimage.Project
	andy     *cloudimage.User
	password string
}

func newIdentity(t *testing.T, ttl time.Duration) *identity {
	t.Helper()
	id := &identity{ctx: context.Background(), db: openDB(t), password: "correct horse battery"}
	id.svc = cloudimage.NewIdentityService(id.db, ttl)
	var err error
	if id.alpha, err = id.svc.CreateProject(id.ctx, "alpha"); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	if id.beta, err = id.svc.CreateProject(id.ctx, "beta"); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	var pw string
	id.andy, pw, err = id.svc.CreateUser(id.ctx, id.alpha.Name, "andy", id.password, cloudimage.RoleMember)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if pw != id.password {
		t.Fatalf("CreateUser returned password %q, want the one given", pw)
	}
	return id
}

func TestIssue(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	for name, cr := range map[string]cloudimage.Credentials{
		"project ID":   {ProjectID: id.alpha.ID},
		"project name": {ProjectName: id.alpha.Name},
		"appkey":       {AppKey: id.alpha.AppKey},
	} {
		t.Run(name, func(t *testing.T) {
			cr.Username, cr.Password = "andy", id.password
			before := time.Now()
			tok, err := id.svc.Issue(id.ctx, cr)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if !hex32.MatchString(tok.ID) {
				t.Errorf("token ID %q, want 32 hex digits", tok.ID)
			}
			if tok.Hash != cloudimage.HashToken(tok.ID) {
				t.Errorf("Hash = %q, want HashToken(ID) = %q", tok.Hash, cloudimage.HashToken(tok.ID))
			}
			if tok.Project.ID != id.alpha.ID || tok.User.ID != id.andy.ID {
				t.Errorf("token for user %s in project %s, want %s in %s",
					tok.User.ID, tok.Project.ID, id.andy.ID, id.alpha.ID)
			}
			if !slices.Equal(tok.Roles, []cloudimage.Role{cloudimage.RoleMember}) {
				t.Errorf("Roles = %v, want [member]", tok.Roles)
			}
			if d := tok.ExpiresAt.Sub(tok.IssuedAt); d != cloudimage.DefaultTokenTTL {
				t.Errorf("token lives %v, want %v", d, cloudimage.DefaultTokenTTL)
			}
			if tok.IssuedAt.Before(before.Add(-time.Second)) || tok.IssuedAt.After(time.Now()) {
				t.Errorf("IssuedAt = %v, want about now", tok.IssuedAt)
			}

			v, err := id.svc.Validate(id.ctx, tok.ID)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			c := v.Caller()
			if c.UserID != id.andy.ID || c.UserName != "andy" || c.ProjectID != id.alpha.ID ||
				!c.CanWrite() || c.IsAdmin() {
				t.Errorf("Caller = %+v, want andy, member of alpha", c)
			}
		})
	}
}

func TestIssueDistinctTokens(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	cr := cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy", Password: id.password}
	a, err := id.svc.Issue(id.ctx, cr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := id.svc.Issue(id.ctx, cr)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID {
		t.Errorf("two issues gave the same token %s", a.ID)
	}
	for _, tok := range []*cloudimage.IssuedToken{a, b} {
		if _, err := id.svc.Validate(id.ctx, tok.ID); err != nil {
			t.Errorf("Validate(%s): %v", tok.ID, err)
		}
	}
}

func TestIssueRefused(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	// bob holds a role only in beta.
	_, _, err := id.svc.CreateUser(id.ctx, id.beta.ID, "bob", "bobs password", cloudimage.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cr   cloudimage.Credentials
		want string
	}{
		{"wrong password", cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy", Password: "wrong"},
			cloudimage.EUNAUTHORIZED},
		{"password prefix", cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy",
			Password: id.password[:len(id.password)-1]}, cloudimage.EUNAUTHORIZED},
		{"unknown user", cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "nobody", Password: id.password},
			cloudimage.EUNAUTHORIZED},
		{"user name case", cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "Andy", Password: id.password},
			cloudimage.EUNAUTHORIZED},
		{"unknown project ID", cloudimage.Credentials{ProjectID: strings.Repeat("0", 32), Username: "andy",
			Password: id.password}, cloudimage.EUNAUTHORIZED},
		{"unknown project name", cloudimage.Credentials{ProjectName: "gamma", Username: "andy",
			Password: id.password}, cloudimage.EUNAUTHORIZED},
		{"unknown appkey", cloudimage.Credentials{AppKey: "NOSUCHAPPKEY", Username: "andy", Password: id.password},
			cloudimage.EUNAUTHORIZED},
		{"no role in the project", cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "bob",
			Password: "bobs password"}, cloudimage.EUNAUTHORIZED},
		{"no role, by name", cloudimage.Credentials{ProjectName: "beta", Username: "andy", Password: id.password},
			cloudimage.EUNAUTHORIZED},
		{"missing username", cloudimage.Credentials{ProjectID: id.alpha.ID, Password: id.password},
			cloudimage.EINVALID},
		{"missing password", cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy"}, cloudimage.EINVALID},
		{"missing project", cloudimage.Credentials{Username: "andy", Password: id.password}, cloudimage.EINVALID},
	}
	var unauthorized []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := id.svc.Issue(id.ctx, tt.cr)
			wantCode(t, err, tt.want)
			if tok != nil {
				t.Errorf("Issue returned a token along with error %v", err)
			}
			if tt.want == cloudimage.EUNAUTHORIZED {
				unauthorized = append(unauthorized, cloudimage.ErrorMessage(err))
			}
		})
	}
	// A refusal must not tell which part of the credentials was wrong.
	for _, msg := range unauthorized {
		if msg != unauthorized[0] {
			t.Errorf("refusal messages differ: %q and %q", unauthorized[0], msg)
		}
	}
}

func TestValidateRefused(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	tok, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy",
		Password: id.password})
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{
		"empty":                "",
		"unknown":              strings.Repeat("a", 32),
		"the hash, not the ID": tok.Hash,
		"ID with a space":      tok.ID + " ",
		"ID upper case":        strings.ToUpper(tok.ID),
	} {
		t.Run(name, func(t *testing.T) {
			v, err := id.svc.Validate(id.ctx, secret)
			wantCode(t, err, cloudimage.EUNAUTHORIZED)
			if v != nil {
				t.Errorf("Validate returned a token along with error %v", err)
			}
		})
	}
}

func TestValidateExpired(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, time.Millisecond)
	tok, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy",
		Password: id.password})
	if err != nil {
		t.Fatal(err)
	}
	if d := tok.ExpiresAt.Sub(tok.IssuedAt); d != time.Millisecond {
		t.Errorf("token lives %v, want 1ms", d)
	}
	time.Sleep(20 * time.Millisecond)
	_, err = id.svc.Validate(id.ctx, tok.ID)
	wantCode(t, err, cloudimage.EUNAUTHORIZED)

	// The same token seen through a service with a long TTL is still
	// expired: the lifetime is fixed when the token is issued.
	long := cloudimage.NewIdentityService(id.db, time.Hour)
	_, err = long.Validate(id.ctx, tok.ID)
	wantCode(t, err, cloudimage.EUNAUTHORIZED)
}

func TestTokenStoredByHash(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	tok, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy",
		Password: id.password})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := id.db.Token(id.ctx, cloudimage.HashToken(tok.ID))
	if err != nil {
		t.Fatalf("Token(HashToken(id)): %v", err)
	}
	if stored.User.ID != id.andy.ID || stored.Project.ID != id.alpha.ID {
		t.Errorf("stored token is for %s in %s, want %s in %s",
			stored.User.ID, stored.Project.ID, id.andy.ID, id.alpha.ID)
	}
	if !stored.ExpiresAt.Equal(tok.ExpiresAt.Truncate(time.Microsecond)) {
		t.Errorf("stored ExpiresAt = %v, want %v", stored.ExpiresAt, tok.ExpiresAt)
	}
	_, err = id.db.Token(id.ctx, tok.ID)
	wantCode(t, err, cloudimage.ENOTFOUND)
}

func TestHashToken(t *testing.T) {
	t.Parallel()
	// SHA-256 of "abc", from FIPS 180-2.
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := cloudimage.HashToken("abc"); got != want {
		t.Errorf("HashToken(abc) = %s, want %s", got, want)
	}
}

func TestCreateProject(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	for _, p := range []*cloudimage.Project{id.alpha, id.beta} {
		if !hex32.MatchString(p.ID) {
			t.Errorf("project %s: ID %q, want 32 hex digits", p.Name, p.ID)
		}
		if len(p.AppKey) != 20 {
			t.Errorf("project %s: appkey %q, want 20 characters", p.Name, p.AppKey)
		}
		if p.CreatedAt.IsZero() {
			t.Errorf("project %s: zero CreatedAt", p.Name)
		}
		for _, ref := range []string{p.ID, p.Name, p.AppKey} {
			got, err := id.svc.FindProject(id.ctx, ref)
			if err != nil || got.ID != p.ID {
				t.Errorf("FindProject(%q) = %v, %v; want project %s", ref, got, err, p.ID)
			}
		}
	}
	if id.alpha.ID == id.beta.ID || id.alpha.AppKey == id.beta.AppKey {
		t.Errorf("two projects share an ID or appkey: %+v, %+v", id.alpha, id.beta)
	}
	_, err := id.svc.FindProject(id.ctx, "gamma")
	wantCode(t, err, cloudimage.ENOTFOUND)

	projects, err := id.svc.Projects(id.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(projects) != 2 {
		t.Errorf("Projects gave %d, want 2", len(projects))
	}
}

func TestCreateProjectRefused(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	tests := []struct {
		name string
		want string
	}{
		{"", cloudimage.EINVALID},
		{"-leading-dash", cloudimage.EINVALID},
		{".hidden", cloudimage.EINVALID},
		{"with space", cloudimage.EINVALID},
		{"slash/name", cloudimage.EINVALID},
		{strings.Repeat("p", 65), cloudimage.EINVALID},
		{"alpha", cloudimage.ECONFLICT},
	}
	for _, tt := range tests {
		_, err := id.svc.CreateProject(id.ctx, tt.name)
		if got := cloudimage.ErrorCode(err); got != tt.want {
			t.Errorf("CreateProject(%q): got code %q (err %v), want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := id.svc.CreateProject(id.ctx, strings.Repeat("p", 64)); err != nil {
		t.Errorf("CreateProject with a 64-character name: %v", err)
	}
}

func TestCreateUserGeneratedPassword(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	u, pw, err := id.svc.CreateUser(id.ctx, id.beta.AppKey, "robot@example.com", "", cloudimage.RoleReader)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if len(pw) < 20 {
		t.Errorf("generated password %q, want at least 20 characters", pw)
	}
	if !hex32.MatchString(u.ID) {
		t.Errorf("user ID %q, want 32 hex digits", u.ID)
	}
	if u.PasswordHash == "" || strings.Contains(u.PasswordHash, pw) {
		t.Errorf("PasswordHash %q: want a hash that does not hold the password", u.PasswordHash)
	}
	tok, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.beta.ID,
		Username: "robot@example.com", Password: pw})
	if err != nil {
		t.Fatalf("Issue with the generated password: %v", err)
	}
	if !slices.Equal(tok.Roles, []cloudimage.Role{cloudimage.RoleReader}) {
		t.Errorf("Roles = %v, want [reader]", tok.Roles)
	}
	if tok.Caller().CanWrite() {
		t.Errorf("a reader's caller can write")
	}
}

func TestCreateUserPasswordLength(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	long := strings.Repeat("x", 72)
	_, _, err := id.svc.CreateUser(id.ctx, id.alpha.ID, "seventy-two", long, cloudimage.RoleMember)
	if err != nil {
		t.Fatalf("CreateUser with a 72-byte password: %v", err)
	}
	if _, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "seventy-two",
		Password: long}); err != nil {
		t.Errorf("Issue with the 72-byte password: %v", err)
	}

	// Over 72 bytes is refused, also when the bytes are few characters.
	for _, pw := range []string{long + "y", strings.Repeat("é", 37)} {
		_, _, err := id.svc.CreateUser(id.ctx, id.alpha.ID, "too-long", pw, cloudimage.RoleMember)
		wantCode(t, err, cloudimage.EINVALID)
	}
	// Nothing was created by the refusals.
	_, err = id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "too-long",
		Password: long + "y"})
	wantCode(t, err, cloudimage.EUNAUTHORIZED)
}

func TestCreateUserRefused(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	tests := []struct {
		name, project, user string
		role                cloudimage.Role
		want                string
	}{
		{"bad role", id.alpha.ID, "carol", "owner", cloudimage.EINVALID},
		{"empty role", id.alpha.ID, "carol", "", cloudimage.EINVALID},
		{"empty name", id.alpha.ID, "", cloudimage.RoleMember, cloudimage.EINVALID},
		{"name with space", id.alpha.ID, "carol smith", cloudimage.RoleMember, cloudimage.EINVALID},
		{"name too long", id.alpha.ID, strings.Repeat("c", 256), cloudimage.RoleMember, cloudimage.EINVALID},
		{"unknown project", "gamma", "carol", cloudimage.RoleMember, cloudimage.ENOTFOUND},
		{"taken name", id.beta.ID, "andy", cloudimage.RoleMember, cloudimage.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := id.svc.CreateUser(id.ctx, tt.project, tt.user, "pw", tt.role)
			wantCode(t, err, tt.want)
		})
	}
	// The taken name still logs in with its own password, in its own project only.
	if _, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy",
		Password: id.password}); err != nil {
		t.Errorf("Issue for andy after a refused duplicate: %v", err)
	}
	_, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.beta.ID, Username: "andy",
		Password: id.password})
	wantCode(t, err, cloudimage.EUNAUTHORIZED)
}

func TestBootstrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	svc := cloudimage.NewIdentityService(db, 0)

	b, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	if b == nil {
		t.Fatal("first Bootstrap returned nil, want what it created")
	}
	if b.Project.Name != cloudimage.BootstrapProject || b.User.Name != cloudimage.BootstrapUser {
		t.Errorf("bootstrapped project %q user %q, want %q %q",
			b.Project.Name, b.User.Name, cloudimage.BootstrapProject, cloudimage.BootstrapUser)
	}
	if b.Password == "" {
		t.Errorf("Bootstrap generated an empty password")
	}
	tok, err := svc.Issue(ctx, cloudimage.Credentials{ProjectName: cloudimage.BootstrapProject,
		Username: cloudimage.BootstrapUser, Password: b.Password})
	if err != nil {
		t.Fatalf("Issue as the bootstrap admin: %v", err)
	}
	if !tok.Caller().IsAdmin() {
		t.Errorf("bootstrap user's roles %v, want admin", tok.Roles)
	}

	again, err := svc.Bootstrap(ctx, "another password")
	if err != nil || again != nil {
		t.Errorf("second Bootstrap = %+v, %v; want nil, nil", again, err)
	}
	projects, err := svc.Projects(ctx)
	if err != nil || len(projects) != 1 {
		t.Errorf("after two bootstraps: %d projects (err %v), want 1", len(projects), err)
	}
	// The second call changed no password.
	if _, err := svc.Issue(ctx, cloudimage.Credentials{ProjectName: "admin", Username: "admin",
		Password: "another password"}); cloudimage.ErrorCode(err) != cloudimage.EUNAUTHORIZED {
		t.Errorf("the second Bootstrap's password works (err %v), want it ignored", err)
	}
}

func TestBootstrapGivenPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := cloudimage.NewIdentityService(openDB(t), 0)
	b, err := svc.Bootstrap(ctx, "s3cret-admin")
	if err != nil || b == nil {
		t.Fatalf("Bootstrap = %v, %v", b, err)
	}
	if b.Password != "s3cret-admin" {
		t.Errorf("Bootstrap password %q, want the one given", b.Password)
	}
	if _, err := svc.Issue(ctx, cloudimage.Credentials{ProjectID: b.Project.ID, Username: "admin",
		Password: "s3cret-admin"}); err != nil {
		t.Errorf("Issue with the given password: %v", err)
	}
}

// TestBootstrapWithProjects: projects made offline before the first start
// do not stop the admin user from being created, and an existing "admin"
// project is used rather than duplicated. Once the admin user exists,
// Bootstrap does nothing.
func TestBootstrapWithProjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := cloudimage.NewIdentityService(openDB(t), 0)
	if _, err := svc.CreateProject(ctx, "early"); err != nil {
		t.Fatal(err)
	}
	existing, err := svc.CreateProject(ctx, cloudimage.BootstrapProject)
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Bootstrap(ctx, "s3cret-admin")
	if err != nil || b == nil {
		t.Fatalf("Bootstrap with projects but no admin = %+v, %v; want the admin created", b, err)
	}
	if b.Project.ID != existing.ID {
		t.Errorf("Bootstrap used project %s, want the existing admin project %s", b.Project.ID, existing.ID)
	}
	if _, err := svc.Issue(ctx, cloudimage.Credentials{ProjectName: cloudimage.BootstrapProject,
		Username: cloudimage.BootstrapUser, Password: "s3cret-admin"}); err != nil {
		t.Errorf("Issue as the bootstrapped admin: %v", err)
	}
	if b, err := svc.Bootstrap(ctx, "other"); err != nil || b != nil {
		t.Errorf("second Bootstrap = %+v, %v; want nil, nil", b, err)
	}
	projects, err := svc.Projects(ctx)
	if err != nil || len(projects) != 2 {
		t.Errorf("got %d projects (%v), want early and admin only", len(projects), err)
	}
}

func TestPurgeExpiredTokens(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, time.Millisecond)
	long := cloudimage.NewIdentityService(id.db, time.Hour)
	cr := cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy", Password: id.password}
	short1, err := id.svc.Issue(id.ctx, cr)
	if err != nil {
		t.Fatal(err)
	}
	short2, err := id.svc.Issue(id.ctx, cr)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := long.Issue(id.ctx, cr)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)

	n, err := long.PurgeExpiredTokens(id.ctx)
	if err != nil {
		t.Fatalf("PurgeExpiredTokens: %v", err)
	}
	if n != 2 {
		t.Errorf("PurgeExpiredTokens removed %d tokens, want 2", n)
	}
	for _, tok := range []*cloudimage.IssuedToken{short1, short2} {
		_, err := id.db.Token(id.ctx, tok.Hash)
		wantCode(t, err, cloudimage.ENOTFOUND)
	}
	if _, err := long.Validate(id.ctx, kept.ID); err != nil {
		t.Errorf("unexpired token after a purge: %v", err)
	}
	if n, err := long.PurgeExpiredTokens(id.ctx); err != nil || n != 0 {
		t.Errorf("second purge removed %d (err %v), want 0", n, err)
	}
}

func TestNewPassword(t *testing.T) {
	t.Parallel()
	a, b := cloudimage.NewPassword(), cloudimage.NewPassword()
	if len(a) != 26 || a == b {
		t.Errorf("NewPassword gave %q and %q, want two different 26-character passwords", a, b)
	}
}

// userWithoutRole stores a user with the given password and no role
// anywhere, which CreateUser cannot make.
func (id *identity) userWithoutRole(t *testing.T, name, password string) *cloudimage.User {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u := &cloudimage.User{ID: strings.Repeat("e", 32), Name: name, PasswordHash: string(hash), CreatedAt: time.Now()}
	if err := id.db.CreateUser(id.ctx, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestIssueSoleProject(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	tok, err := id.svc.Issue(id.ctx, cloudimage.Credentials{SoleProject: true, Username: "andy",
		Password: id.password})
	if err != nil {
		t.Fatalf("Issue with SoleProject for a user of one project: %v", err)
	}
	if tok.Project.ID != id.alpha.ID || !slices.Equal(tok.Roles, []cloudimage.Role{cloudimage.RoleMember}) {
		t.Errorf("token in %s with roles %v, want alpha with [member]", tok.Project.Name, tok.Roles)
	}

	// A project named wins over SoleProject.
	_, err = id.svc.Issue(id.ctx, cloudimage.Credentials{SoleProject: true, ProjectID: id.beta.ID,
		Username: "andy", Password: id.password})
	wantCode(t, err, cloudimage.EUNAUTHORIZED)
	// A wrong password is refused before the projects are counted.
	_, err = id.svc.Issue(id.ctx, cloudimage.Credentials{SoleProject: true, Username: "andy", Password: "wrong"})
	wantCode(t, err, cloudimage.EUNAUTHORIZED)

	// A user of two projects must say which.
	if err := id.db.AssignRole(id.ctx, id.andy.ID, id.beta.ID, cloudimage.RoleReader); err != nil {
		t.Fatal(err)
	}
	_, err = id.svc.Issue(id.ctx, cloudimage.Credentials{SoleProject: true, Username: "andy",
		Password: id.password})
	wantCode(t, err, cloudimage.EINVALID)
	if msg := cloudimage.ErrorMessage(err); !strings.Contains(msg, "2 projects") {
		t.Errorf("message %q does not say how many projects", msg)
	}

	// A user of none is refused as bad credentials are.
	id.userWithoutRole(t, "nobody", "nobodys password")
	_, err = id.svc.Issue(id.ctx, cloudimage.Credentials{SoleProject: true, Username: "nobody",
		Password: "nobodys password"})
	wantCode(t, err, cloudimage.EUNAUTHORIZED)
}

func TestIssueByUserID(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	tok, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, UserID: id.andy.ID,
		Password: id.password})
	if err != nil {
		t.Fatalf("Issue by user ID: %v", err)
	}
	if tok.User.ID != id.andy.ID || tok.User.Name != "andy" {
		t.Errorf("token of user %s (%s), want andy %s", tok.User.Name, tok.User.ID, id.andy.ID)
	}
	for name, cr := range map[string]cloudimage.Credentials{
		"wrong password":  {ProjectID: id.alpha.ID, UserID: id.andy.ID, Password: "wrong"},
		"unknown user ID": {ProjectID: id.alpha.ID, UserID: strings.Repeat("0", 32), Password: id.password},
		"the name as ID":  {ProjectID: id.alpha.ID, UserID: "andy", Password: id.password},
	} {
		_, err := id.svc.Issue(id.ctx, cr)
		if cloudimage.ErrorCode(err) != cloudimage.EUNAUTHORIZED {
			t.Errorf("%s: err %v, want %s", name, err, cloudimage.EUNAUTHORIZED)
		}
	}
}

// tokens is an identity with more users and a token of each, for the
// tests of who may see and revoke which token: in alpha, andy (member,
// who is also a reader of beta), alice (admin) and olga (member); in beta,
// boss (admin).
type tokens struct {
	*identity
	alice, olga, boss *cloudimage.User
	// andy1 and andy2 are andy's in alpha, andyBeta his in beta.
	andy1, andy2, andyBeta, alice1, olga1, boss1 *cloudimage.IssuedToken
}

func newTokens(t *testing.T) *tokens {
	t.Helper()
	id := &tokens{identity: newIdentity(t, 0)}
	user := func(p *cloudimage.Project, name string, role cloudimage.Role) *cloudimage.User {
		t.Helper()
		u, _, err := id.svc.CreateUser(id.ctx, p.ID, name, name+" password", role)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	id.alice = user(id.alpha, "alice", cloudimage.RoleAdmin)
	id.olga = user(id.alpha, "olga", cloudimage.RoleMember)
	id.boss = user(id.beta, "boss", cloudimage.RoleAdmin)
	if err := id.db.AssignRole(id.ctx, id.andy.ID, id.beta.ID, cloudimage.RoleReader); err != nil {
		t.Fatal(err)
	}
	issue := func(p *cloudimage.Project, name, password string) *cloudimage.IssuedToken {
		t.Helper()
		tok, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: p.ID, Username: name, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	id.andy1, id.andy2 = issue(id.alpha, "andy", id.password), issue(id.alpha, "andy", id.password)
	id.andyBeta = issue(id.beta, "andy", id.password)
	id.alice1 = issue(id.alpha, "alice", "alice password")
	id.olga1 = issue(id.alpha, "olga", "olga password")
	id.boss1 = issue(id.beta, "boss", "boss password")
	return id
}

// inspectCase is a caller and a subject token, and whether the caller may
// see and revoke it.
type inspectCase struct {
	name           string
	caller, target *cloudimage.IssuedToken
	may            bool
}

// inspectCases is the whole table of who may see and revoke which token.
func (id *tokens) inspectCases() []inspectCase {
	return []inspectCase{
		{"itself", id.andy1, id.andy1, true},
		{"another token of the same user", id.andy1, id.andy2, true},
		{"its user's token in another project", id.andy1, id.andyBeta, true},
		{"from its user's token in another project", id.andyBeta, id.andy1, true},
		{"an admin, another user's in its project", id.alice1, id.andy1, true},
		{"an admin, another member's in its project", id.alice1, id.olga1, true},
		{"an admin of beta, a token in beta of a user of alpha too", id.boss1, id.andyBeta, true},
		{"an admin of another project", id.boss1, id.andy1, false},
		{"an admin, a token in another project of a user of its own", id.alice1, id.andyBeta, false},
		{"an admin, another project's admin's", id.alice1, id.boss1, false},
		{"a member, another member's in the same project", id.olga1, id.andy1, false},
		{"a member, its admin's", id.andy1, id.alice1, false},
		{"a reader, its admin's", id.andyBeta, id.boss1, false},
		{"a member, another project's admin's", id.andy1, id.boss1, false},
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	id := newTokens(t)
	_, unknown := id.svc.Inspect(id.ctx, id.boss1.Caller(), strings.Repeat("a", 32))
	wantCode(t, unknown, cloudimage.ENOTFOUND)
	for _, tc := range id.inspectCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := id.svc.Inspect(id.ctx, tc.caller.Caller(), tc.target.ID)
			if !tc.may {
				// Refused exactly as an unknown token is, so that the
				// refusal does not confirm that the secret is valid.
				wantCode(t, err, cloudimage.ENOTFOUND)
				if got != nil {
					t.Errorf("Inspect returned a token along with %v", err)
				}
				if cloudimage.ErrorMessage(err) != cloudimage.ErrorMessage(unknown) {
					t.Errorf("refusal %q differs from an unknown token's %q", cloudimage.ErrorMessage(err),
						cloudimage.ErrorMessage(unknown))
				}
				return
			}
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if got.Hash != tc.target.Hash || got.User.ID != tc.target.User.ID || got.Project.ID != tc.target.Project.ID {
				t.Errorf("Inspect gave %s's token in %s, want the subject, %s's in %s",
					got.User.Name, got.Project.Name, tc.target.User.Name, tc.target.Project.Name)
			}
		})
	}
	for name, subject := range map[string]string{
		"unknown": strings.Repeat("a", 32), "the hash": id.andy1.Hash, "empty": "",
	} {
		t.Run(name, func(t *testing.T) {
			for _, caller := range []*cloudimage.IssuedToken{id.andy1, id.alice1} {
				_, err := id.svc.Inspect(id.ctx, caller.Caller(), subject)
				wantCode(t, err, cloudimage.ENOTFOUND)
			}
		})
	}
}

func TestInspectExpired(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, time.Millisecond)
	tok, err := id.svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy",
		Password: id.password})
	if err != nil {
		t.Fatal(err)
	}
	caller := tok.Caller()
	time.Sleep(20 * time.Millisecond)
	_, err = id.svc.Inspect(id.ctx, caller, tok.ID)
	wantCode(t, err, cloudimage.ENOTFOUND)
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	cr := cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy", Password: id.password}
	revoked, err := id.svc.Issue(id.ctx, cr)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := id.svc.Issue(id.ctx, cr)
	if err != nil {
		t.Fatal(err)
	}
	caller := kept.Caller()
	if err := id.svc.Revoke(id.ctx, caller, revoked.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	_, err = id.svc.Validate(id.ctx, revoked.ID)
	wantCode(t, err, cloudimage.EUNAUTHORIZED)
	if _, err := id.svc.Validate(id.ctx, kept.ID); err != nil {
		t.Errorf("the other token of the same user: %v", err)
	}
	wantCode(t, id.svc.Revoke(id.ctx, caller, revoked.ID), cloudimage.ENOTFOUND)
	wantCode(t, id.svc.Revoke(id.ctx, caller, ""), cloudimage.ENOTFOUND)
	// The hash is not the token.
	wantCode(t, id.svc.Revoke(id.ctx, caller, kept.Hash), cloudimage.ENOTFOUND)
	if _, err := id.svc.Validate(id.ctx, kept.ID); err != nil {
		t.Errorf("after revoking by its hash: %v", err)
	}
	// A token may revoke itself.
	if err := id.svc.Revoke(id.ctx, caller, kept.ID); err != nil {
		t.Fatalf("Revoke itself: %v", err)
	}
	_, err = id.svc.Validate(id.ctx, kept.ID)
	wantCode(t, err, cloudimage.EUNAUTHORIZED)
}

// fresh stores another token of tok's user in tok's project, as Issue
// would but without its password check, which is slow under the race
// detector.
func (id *tokens) fresh(t *testing.T, tok *cloudimage.IssuedToken) *cloudimage.IssuedToken {
	t.Helper()
	secret := cloudimage.NewPassword()
	now := time.Now()
	err := id.db.CreateToken(id.ctx, &cloudimage.Token{Hash: cloudimage.HashToken(secret), User: tok.User,
		Project: tok.Project, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := id.svc.Validate(id.ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	return &cloudimage.IssuedToken{ID: secret, Token: v}
}

// TestRevokeWho: a token may be revoked by whoever may inspect it, and
// by no one else; a refusal leaves the token working, and a revocation
// leaves every other token working.
func TestRevokeWho(t *testing.T) {
	t.Parallel()
	id := newTokens(t)
	all := []*cloudimage.IssuedToken{id.andy1, id.andy2, id.andyBeta, id.alice1, id.olga1, id.boss1}
	for _, tc := range id.inspectCases() {
		t.Run(tc.name, func(t *testing.T) {
			// The target is a new token like the case's, which the case
			// may revoke; a token revoking itself is that new token.
			target, caller := id.fresh(t, tc.target), tc.caller
			if tc.caller == tc.target {
				caller = target
			}
			err := id.svc.Revoke(id.ctx, caller.Caller(), target.ID)
			_, after := id.svc.Validate(id.ctx, target.ID)
			if !tc.may {
				wantCode(t, err, cloudimage.ENOTFOUND)
				if after != nil {
					t.Errorf("a refused revocation left the token invalid: %v", after)
				}
				return
			}
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			wantCode(t, after, cloudimage.EUNAUTHORIZED)
			for _, other := range all {
				if _, err := id.svc.Validate(id.ctx, other.ID); err != nil {
					t.Errorf("%s's token in %s after revoking another: %v", other.User.Name, other.Project.Name, err)
				}
			}
		})
	}
}

func TestUserProjects(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	names := func(userID string) []string {
		t.Helper()
		ps, err := id.svc.UserProjects(id.ctx, userID)
		if err != nil {
			t.Fatalf("UserProjects: %v", err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(id.andy.ID); !slices.Equal(got, []string{"alpha"}) {
		t.Errorf("andy's projects %v, want [alpha]", got)
	}
	if err := id.db.AssignRole(id.ctx, id.andy.ID, id.beta.ID, cloudimage.RoleReader); err != nil {
		t.Fatal(err)
	}
	if got := names(id.andy.ID); !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Errorf("andy's projects %v, want [alpha beta]", got)
	}
	if got := names(strings.Repeat("0", 32)); len(got) != 0 {
		t.Errorf("an unknown user's projects %v, want none", got)
	}
	u := id.userWithoutRole(t, "nobody", "pw")
	if got := names(u.ID); len(got) != 0 {
		t.Errorf("a user without roles has projects %v", got)
	}
}

func TestListUserProjects(t *testing.T) {
	t.Parallel()
	id := newTokens(t)
	nobody := id.userWithoutRole(t, "nobody", "pw")
	for _, tc := range []struct {
		name   string
		caller *cloudimage.IssuedToken
		user   string
		want   []string // project names, or nil for EFORBIDDEN
	}{
		{"its own, from alpha", id.andy1, id.andy.ID, []string{"alpha", "beta"}},
		{"its own, from beta", id.andyBeta, id.andy.ID, []string{"alpha", "beta"}},
		{"an admin's own", id.alice1, id.alice.ID, []string{"alpha"}},
		{"an admin, a user of its project and another", id.alice1, id.andy.ID, []string{"alpha"}},
		{"an admin, a user of its project only", id.alice1, id.olga.ID, []string{"alpha"}},
		{"another admin, the same user", id.boss1, id.andy.ID, []string{"beta"}},
		{"an admin, a user of another project", id.boss1, id.olga.ID, []string{}},
		{"an admin, another project's admin", id.alice1, id.boss.ID, []string{}},
		{"an admin, a user without a role", id.alice1, nobody.ID, []string{}},
		{"an admin, an unknown user", id.alice1, strings.Repeat("0", 32), []string{}},
		{"a member, another member", id.olga1, id.andy.ID, nil},
		{"a member, its admin", id.andy1, id.alice.ID, nil},
		{"a reader, its admin", id.andyBeta, id.boss.ID, nil},
		{"a member, an unknown user", id.andy1, strings.Repeat("0", 32), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := id.svc.ListUserProjects(id.ctx, tc.caller.Caller(), tc.user)
			if tc.want == nil {
				wantCode(t, err, cloudimage.EFORBIDDEN)
				if ps != nil {
					t.Errorf("projects %v along with %v", ps, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ListUserProjects: %v", err)
			}
			got := []string{}
			for _, p := range ps {
				got = append(got, p.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("projects %v, want %v", got, tc.want)
			}
		})
	}
}
