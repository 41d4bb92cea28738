package cloudimage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"regexp"
	"slices"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// DefaultTokenTTL is how long a token lives unless configured otherwise.
const DefaultTokenTTL = 12 * time.Hour

// Names of the project and user created on first start.
const (
	BootstrapProject = "admin"
	BootstrapUser    = "admin"
)

var (
	projectNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	userNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@_.+-]{0,254}$`)
)

// maxPasswordLength is bcrypt's limit: it ignores anything after 72 bytes,
// so longer passwords are refused rather than silently truncated.
const maxPasswordLength = 72

// dummyHash is compared against when a user does not exist, so that an
// unknown name takes as long to refuse as a wrong password. It is a
// bcrypt hash at bcrypt.DefaultCost of a password nobody has, written out
// rather than computed: computing it would cost every start of the
// program, the CLI's included, some 70 ms.
var dummyHash = []byte("$2a$10$t4NDbqU7ziVum2/ukSimVu.j0xgEyqdIhjcxe/3joMVa6nZ8MaPTi")

// IdentityService issues and validates tokens and manages projects and
// users. Every API face authenticates through it.
type IdentityService struct {
	store    IdentityStore
	ttl      time.Duration
	now      func() time.Time
	failures *authLimiter // nil: no limit

	authBurst    int
	authInterval time.Duration
	authStore    AuthFailureStore

	comparePassword func(hash, password []byte) error // bcrypt's; tests count the checks

	versions Versioner             // nil: no token cache
	tokens   *VersionCache[*Token] // validated tokens by hash, for one version of the store
}

// IdentityOption configures an IdentityService.
type IdentityOption func(*IdentityService)

// WithAuthFailureLimit limits failed token requests: once burst attempts
// have failed for a user name, or from a client address, further ones are
// refused with ETOOMANY before any password is checked, until the budget
// refills at one attempt every interval. Successful attempts take nothing
// from the budget. A zero burst or interval means no limit, the default.
// A user named by ID and by name has one budget. The budgets are kept by
// the identity store when it is an AuthFailureStore too, as the SQL
// stores are, so that every replica on one database shares them (see
// WithAuthFailureStore); otherwise in the memory of this process.
func WithAuthFailureLimit(burst int, interval time.Duration) IdentityOption {
	return func(s *IdentityService) { s.authBurst, s.authInterval = burst, interval }
}

// WithAuthFailureStore makes the failure limit of WithAuthFailureLimit
// keep its budgets in store rather than in the identity store.
func WithAuthFailureStore(store AuthFailureStore) IdentityOption {
	return func(s *IdentityService) { s.authStore = store }
}

// DefaultTokenCacheSize is how many tokens an IdentityService keeps
// validated, unless WithTokenCache says otherwise.
const DefaultTokenCacheSize = 10_000

// WithTokenCache makes the service keep up to n tokens it has found in
// the store, so that validating one again costs no more than asking
// versions whether anything changed; n = 0 turns the cache off. Any
// change committed to the store (a token revoked, a role removed, a user
// or project deleted, but also any other write) empties the cache, so a
// token is never accepted longer than the store would accept it. Expiry
// is checked on every validation. By default the cache is on, with
// DefaultTokenCacheSize entries, when the identity store is a Versioner
// itself.
func WithTokenCache(versions Versioner, n int) IdentityOption {
	return func(s *IdentityService) {
		s.versions, s.tokens = versions, nil
		if versions != nil && n > 0 {
			s.tokens = NewVersionCache[*Token](n, 1)
		}
	}
}

// WithIdentityClock makes the service read the time from now: token
// issue and expiry, and the refilling of failure budgets.
func WithIdentityClock(now func() time.Time) IdentityOption {
	return func(s *IdentityService) { s.now = now }
}

// NewIdentityService returns a service over store whose tokens live for ttl
// (DefaultTokenTTL when ttl is zero).
func NewIdentityService(store IdentityStore, ttl time.Duration, opts ...IdentityOption) *IdentityService {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	s := &IdentityService{store: store, ttl: ttl, now: time.Now, comparePassword: bcrypt.CompareHashAndPassword}
	if v, ok := store.(Versioner); ok {
		WithTokenCache(v, DefaultTokenCacheSize)(s)
	}
	for _, o := range opts {
		o(s)
	}
	if s.authStore == nil {
		s.authStore, _ = store.(AuthFailureStore)
	}
	s.failures = newAuthLimiter(s.authBurst, s.authInterval, s.authStore)
	return s
}

// Credentials are what a token request carries: a user, named by Username
// or by UserID, with its password, and the project to scope the token to,
// named by at most one of ProjectID, ProjectName or AppKey. With no project
// named, SoleProject scopes the token to the one project the user holds a
// role in; without it, a project is required. Client is the network
// address (host) the request comes from, when there is one: failure
// limits count per user and per client.
type Credentials struct {
	ProjectID   string
	ProjectName string
	AppKey      string
	SoleProject bool
	Username    string
	UserID      string
	Password    string
	Client      string
}

// IssuedToken is a freshly issued token: ID is the secret the caller sends
// back as X-Auth-Token. It is returned once and never stored.
type IssuedToken struct {
	ID string
	*Token
}

// Issue authenticates cr and returns a new token scoped to its project.
// Bad credentials, an unknown project and a user without a role in the
// project are all EUNAUTHORIZED, with the same message. A SoleProject
// request from a user with roles in several projects is EINVALID: tokens
// are always project-scoped, and which project is then the caller's to say.
// With a failure limit, an attempt whose user or client has failed too
// often is ETOOMANY (a *RetryError), whatever its password.
func (s *IdentityService) Issue(ctx context.Context, cr Credentials) (*IssuedToken, error) {
	if (cr.Username == "" && cr.UserID == "") || cr.Password == "" {
		return nil, Errorf(EINVALID, "username and password are required")
	}
	// The user is looked up first, so that its budget is the same
	// whether cr names it by name or by ID; an unknown one is nil.
	var user *User
	var err error
	if cr.UserID != "" {
		user, err = s.store.UserByID(ctx, cr.UserID)
	} else {
		user, err = s.store.UserByName(ctx, cr.Username)
	}
	if ErrorCode(err) == ENOTFOUND {
		user = nil
	} else if err != nil {
		return nil, err
	}
	keys := authKeys(cr, user)
	if err := s.failures.begin(ctx, s.now(), keys); err != nil {
		return nil, err
	}
	t, err := s.issue(ctx, cr, user)
	s.failures.end(ctx, s.now(), keys, ErrorCode(err) == EUNAUTHORIZED)
	return t, err
}

// issue is Issue once the attempt by user (nil: unknown) is admitted.
func (s *IdentityService) issue(ctx context.Context, cr Credentials, user *User) (*IssuedToken, error) {
	named := cr.ProjectID != "" || cr.ProjectName != "" || cr.AppKey != ""
	if !named && !cr.SoleProject {
		return nil, Errorf(EINVALID, "a project is required")
	}
	var project *Project
	var err error
	if named {
		if project, err = s.findProject(ctx, cr); err != nil {
			return nil, err
		}
	}
	user, err = s.authenticate(cr, user)
	if err != nil {
		return nil, err
	}
	if !named {
		if project, err = s.soleProject(ctx, user); err != nil {
			return nil, err
		}
	}
	if project == nil {
		return nil, errBadCredentials
	}
	roles, err := s.store.Roles(ctx, user.ID, project.ID)
	if err != nil {
		return nil, err
	} else if len(roles) == 0 {
		return nil, errBadCredentials
	}
	return s.newToken(ctx, user, project, roles)
}

// newToken stores and returns a new token of user in project.
func (s *IdentityService) newToken(ctx context.Context, user *User, project *Project, roles []Role) (*IssuedToken, error) {
	secret := randomHex()
	now := s.now().UTC()
	t := &Token{
		Hash:      HashToken(secret),
		User:      user,
		Project:   project,
		Roles:     roles,
		IssuedAt:  now,
		ExpiresAt: now.Add(s.ttl),
	}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return nil, err
	}
	return &IssuedToken{ID: secret, Token: t}, nil
}

// authenticate returns user, the one cr names, if cr's password is the
// user's. An unknown user (nil) costs a password check too, so that it
// takes as long to refuse as a wrong password.
func (s *IdentityService) authenticate(cr Credentials, user *User) (*User, error) {
	if user == nil {
		_ = s.comparePassword(dummyHash, []byte(cr.Password))
		return nil, errBadCredentials
	}
	if s.comparePassword([]byte(user.PasswordHash), []byte(cr.Password)) != nil {
		return nil, errBadCredentials
	}
	return user, nil
}

// soleProject returns the one project user holds a role in. A user with
// none is refused as bad credentials are; one with several must choose.
func (s *IdentityService) soleProject(ctx context.Context, user *User) (*Project, error) {
	projects, err := s.UserProjects(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	switch len(projects) {
	case 0:
		return nil, errBadCredentials
	case 1:
		return projects[0], nil
	}
	return nil, Errorf(EINVALID, "The user holds roles in %d projects and tokens are always "+
		"scoped to one: name the project.", len(projects))
}

var errBadCredentials = Errorf(EUNAUTHORIZED, "The request you have made requires authentication.")

// findProject resolves the project cr names. An unknown project yields a
// nil project and no error, so that Issue can still spend the time of a
// password check before refusing.
func (s *IdentityService) findProject(ctx context.Context, cr Credentials) (*Project, error) {
	var p *Project
	var err error
	switch {
	case cr.ProjectID != "":
		p, err = s.store.Project(ctx, cr.ProjectID)
	case cr.ProjectName != "":
		p, err = s.store.ProjectByName(ctx, cr.ProjectName)
	default:
		p, err = s.store.ProjectByAppKey(ctx, cr.AppKey)
	}
	if ErrorCode(err) == ENOTFOUND {
		return nil, nil
	}
	return p, err
}

// Validate returns the token whose secret is id, or EUNAUTHORIZED when it
// is unknown, expired, or its user no longer holds a role in its project.
func (s *IdentityService) Validate(ctx context.Context, id string) (*Token, error) {
	if id == "" {
		return nil, Errorf(EUNAUTHORIZED, "X-Auth-Token header is required")
	}
	hash := HashToken(id)
	t, err := s.findToken(ctx, hash)
	if err != nil {
		return nil, err
	}
	if !s.now().Before(t.ExpiresAt) {
		return nil, Errorf(EUNAUTHORIZED, "token has expired")
	}
	if len(t.Roles) == 0 {
		return nil, Errorf(EUNAUTHORIZED, "token's user has no role in its project")
	}
	return t, nil
}

// findToken returns the token stored under hash, from the cache when the
// store has not changed since it was read, or EUNAUTHORIZED when there is
// none. The token returned is the caller's own copy.
func (s *IdentityService) findToken(ctx context.Context, hash string) (*Token, error) {
	var version uint64
	cache := s.tokens != nil
	if cache {
		v, err := ReadVersion(ctx, s.versions)
		if err == nil {
			if t, ok := s.tokens.Get(v, hash); ok {
				return t.clone(), nil
			}
		}
		// Without a version nothing read now may be kept.
		version, cache = v, err == nil
	}
	t, err := s.store.Token(ctx, hash)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(EUNAUTHORIZED, "invalid token")
	} else if err != nil {
		return nil, err
	}
	// The store found the token by its hash; the hash it holds must be
	// the one asked for, compared in constant time, whatever the store's
	// lookup is (a case-insensitive or prefix match would not do).
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1 {
		return nil, Errorf(EUNAUTHORIZED, "invalid token")
	}
	if cache {
		s.tokens.Put(version, hash, t.clone(), 1)
	}
	return t, nil
}

// clone returns a copy of t that shares nothing with it.
func (t *Token) clone() *Token {
	c := *t
	if t.User != nil {
		u := *t.User
		c.User = &u
	}
	if t.Project != nil {
		p := *t.Project
		c.Project = &p
	}
	c.Roles = slices.Clone(t.Roles)
	return &c
}

// Inspect returns the token whose secret is subject, if caller may see
// it: a token of caller's own user, in any project, or, for an admin, a
// token scoped to the project caller is an admin of. A subject that is
// empty, unknown, expired, or whose user lost its role is ENOTFOUND, and
// so, with the same message, is a live token caller may not see: 403
// would confirm to whoever holds a stolen or guessed secret that it is
// valid, 404 tells nothing.
func (s *IdentityService) Inspect(ctx context.Context, caller *Caller, subject string) (*Token, error) {
	if subject == "" {
		return nil, Errorf(ENOTFOUND, "No token in the request.")
	}
	t, err := s.Validate(ctx, subject)
	if ErrorCode(err) == EUNAUTHORIZED {
		return nil, errNoSuchToken
	} else if err != nil {
		return nil, err
	}
	if !mayInspect(caller, t) {
		return nil, errNoSuchToken
	}
	return t, nil
}

var errNoSuchToken = Errorf(ENOTFOUND, "Failed to validate token.")

// mayInspect reports whether caller may validate and revoke t: t is a
// token of caller's own user, in any project, or caller is an admin of the
// project t is scoped to. An admin is an admin of its own project only, so
// it reaches no other project's tokens, even of users it shares a project
// with.
func mayInspect(caller *Caller, t *Token) bool {
	return t.User.ID == caller.UserID || caller.IsAdmin() && caller.ProjectID == t.Project.ID
}

// Revoke deletes the token whose secret is secret, so that no API accepts
// it any more, if caller may inspect it. Like Inspect, it answers ENOTFOUND
// alike for a token that is unknown, expired or not caller's to revoke.
func (s *IdentityService) Revoke(ctx context.Context, caller *Caller, secret string) error {
	t, err := s.Inspect(ctx, caller, secret)
	if err != nil {
		return err
	}
	return s.store.DeleteToken(ctx, t.Hash)
}

// UserProjects returns the projects the user holds a role in, oldest
// first; none for an unknown user.
func (s *IdentityService) UserProjects(ctx context.Context, userID string) ([]*Project, error) {
	all, err := s.store.Projects(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Project
	for _, p := range all {
		roles, err := s.store.Roles(ctx, userID, p.ID)
		if err != nil {
			return nil, err
		}
		if len(roles) > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

// ListUserProjects returns those of the projects of the user userID that
// caller may see: all of them if the user is caller's own; for an admin,
// the one project it is an admin of (its token's) if the user holds a role
// there, or none, so that an admin learns nothing about other projects;
// anyone else is EFORBIDDEN.
func (s *IdentityService) ListUserProjects(ctx context.Context, caller *Caller, userID string) ([]*Project, error) {
	if userID == caller.UserID {
		return s.UserProjects(ctx, userID)
	} else if !caller.IsAdmin() {
		return nil, Errorf(EFORBIDDEN,
			"You are not authorized to perform the requested action: identity:list_user_projects.")
	}
	roles, err := s.store.Roles(ctx, userID, caller.ProjectID)
	if err != nil || len(roles) == 0 {
		return nil, err
	}
	p, err := s.store.Project(ctx, caller.ProjectID)
	if err != nil {
		return nil, err
	}
	return []*Project{p}, nil
}

// Caller returns who t speaks for.
func (t *Token) Caller() *Caller {
	return &Caller{UserID: t.User.ID, UserName: t.User.Name, ProjectID: t.Project.ID, Roles: t.Roles}
}

// HashToken returns the hex SHA-256 of a token's secret: the only form in
// which tokens are stored. A token has 128 random bits, so a fast hash is
// enough.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateProject creates a project with a new tenant ID and appkey.
func (s *IdentityService) CreateProject(ctx context.Context, name string) (*Project, error) {
	if !projectNameRE.MatchString(name) {
		return nil, Errorf(EINVALID, "project name must be 1 to 64 letters, digits, '_', '.' or '-'")
	}
	p := &Project{ID: randomHex(), Name: name, AppKey: newAppKey(), CreatedAt: s.now().UTC()}
	if err := s.store.CreateProject(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Projects returns every project.
func (s *IdentityService) Projects(ctx context.Context) ([]*Project, error) {
	return s.store.Projects(ctx)
}

// FindProject returns the project whose ID, name or appkey is ref.
func (s *IdentityService) FindProject(ctx context.Context, ref string) (*Project, error) {
	for _, find := range []func(context.Context, string) (*Project, error){
		s.store.Project, s.store.ProjectByName, s.store.ProjectByAppKey,
	} {
		p, err := find(ctx, ref)
		if ErrorCode(err) != ENOTFOUND {
			return p, err
		}
	}
	return nil, Errorf(ENOTFOUND, "no project %q", ref)
}

// CreateUser creates a user with the given password and grants it role in
// the project named by projectRef (ID, name or appkey). An empty password
// is replaced by a generated one, which is returned.
func (s *IdentityService) CreateUser(ctx context.Context, projectRef, name, password string, role Role) (*User, string, error) {
	if !userNameRE.MatchString(name) {
		return nil, "", Errorf(EINVALID, "user name must be 1 to 255 letters, digits or any of '@_.+-'")
	} else if !role.Valid() {
		return nil, "", Errorf(EINVALID, "role must be admin, member or reader")
	}
	if password == "" {
		password = NewPassword()
	} else if len(password) > maxPasswordLength {
		return nil, "", Errorf(EINVALID, "password must be at most %d bytes", maxPasswordLength)
	}
	p, err := s.FindProject(ctx, projectRef)
	if err != nil {
		return nil, "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, "", err
	}
	u := &User{ID: randomHex(), Name: name, PasswordHash: string(hash), CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, "", err
	}
	if err := s.store.AssignRole(ctx, u.ID, p.ID, role); err != nil {
		return nil, "", err
	}
	return u, password, nil
}

// Bootstrap is what a first start creates.
type Bootstrap struct {
	Project  *Project
	User     *User
	Password string
}

// Bootstrap creates the admin user, an admin of the admin project (which
// it creates too if need be), unless that user exists already; it returns
// nil then. So the first start makes them even when projects were created
// offline before it. An empty password is generated. Of replicas that
// start together on a new database one bootstraps; the others return nil.
func (s *IdentityService) Bootstrap(ctx context.Context, password string) (*Bootstrap, error) {
	if _, err := s.store.UserByName(ctx, BootstrapUser); ErrorCode(err) != ENOTFOUND {
		return nil, err
	}
	p, err := s.store.ProjectByName(ctx, BootstrapProject)
	if ErrorCode(err) == ENOTFOUND {
		p, err = s.CreateProject(ctx, BootstrapProject)
		if ErrorCode(err) == ECONFLICT { // another replica created it
			p, err = s.store.ProjectByName(ctx, BootstrapProject)
		}
	}
	if err != nil {
		return nil, err
	}
	u, pw, err := s.CreateUser(ctx, p.ID, BootstrapUser, password, RoleAdmin)
	if ErrorCode(err) == ECONFLICT {
		if _, lookup := s.store.UserByName(ctx, BootstrapUser); lookup == nil {
			return nil, nil // another replica bootstrapped
		}
	}
	if err != nil {
		return nil, err
	}
	return &Bootstrap{Project: p, User: u, Password: pw}, nil
}

// PurgeExpiredTokens removes tokens that have expired.
func (s *IdentityService) PurgeExpiredTokens(ctx context.Context) (int64, error) {
	return s.store.DeleteExpiredTokens(ctx, s.now())
}

// NewPassword returns a random password of 26 characters (128 bits).
func NewPassword() string {
	return rand.Text()
}

// randomHex returns 128 random bits as 32 hex digits: the form of token
// secrets and of project and user IDs (Keystone's).
func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported systems
	return hex.EncodeToString(b)
}

func newAppKey() string {
	return rand.Text()[:20]
}
