package cloudimage_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
	"golang.org/x/crypto/bcrypt"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Now().UTC()}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingStore counts the user lookups: every attempt makes one, before
// its budget is checked, to key the budget by the user's ID.
type countingStore struct {
	*sqlite.DB
	lookups atomic.Int64
}

func (s *countingStore) UserByName(ctx context.Context, name string) (*cloudimage.User, error) {
	s.lookups.Add(1)
	return s.DB.UserByName(ctx, name)
}

func (s *countingStore) UserByID(ctx context.Context, id string) (*cloudimage.User, error) {
	s.lookups.Add(1)
	return s.DB.UserByID(ctx, id)
}

// limited is an identity service with a failure limit of burst attempts,
// one more every minute, on a clock of its own, over the users of
// newIdentity and a second member of alpha, "bea".
type limited struct {
	*identity
	clock  *fakeClock
	store  *countingStore
	checks atomic.Int64 // of passwords
}

func newLimited(t *testing.T, burst int) *limited {
	t.Helper()
	id := newIdentity(t, 0)
	_, _, err := id.svc.CreateUser(id.ctx, id.alpha.Name, "bea", id.password, cloudimage.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	l := &limited{identity: id, clock: newFakeClock(), store: &countingStore{DB: id.db}}
	l.svc = cloudimage.NewIdentityService(l.store, 0,
		cloudimage.WithAuthFailureLimit(burst, time.Minute), cloudimage.WithIdentityClock(l.clock.Now),
		cloudimage.WithPasswordCheck(func(hash, pw []byte) error {
			l.checks.Add(1)
			return bcrypt.CompareHashAndPassword(hash, pw)
		}))
	return l
}

// issue asks for a token of user in alpha from client, with the right
// password or a wrong one, and returns the error's code ("" for a token).
func (l *limited) issue(t *testing.T, user, client string, right bool) string {
	t.Helper()
	pw := l.password
	if !right {
		pw = "wrong " + pw
	}
	_, err := l.svc.Issue(l.ctx, cloudimage.Credentials{
		ProjectID: l.alpha.ID, Username: user, Password: pw, Client: client,
	})
	return cloudimage.ErrorCode(err)
}

func (l *limited) expect(t *testing.T, what, user, client string, right bool, want string) {
	t.Helper()
	if got := l.issue(t, user, client, right); got != want {
		t.Errorf("%s: %s from %s: code %q, want %q", what, user, client, got, want)
	}
}

// TestAuthFailureLimit checks the failure budgets of token issuing: after
// burst failures, a user is refused from every address and an address for
// every user, even with the right password and without any password check;
// others are not; the budget refills with time; successes take nothing.
func TestAuthFailureLimit(t *testing.T) {
	t.Parallel()
	l := newLimited(t, 3)
	const unauth, tooMany = cloudimage.EUNAUTHORIZED, cloudimage.ETOOMANY

	// Successes take nothing from either budget.
	for range 5 {
		l.expect(t, "a success", "andy", "10.0.0.1", true, "")
	}
	for i := range 3 {
		l.expect(t, "failure "+string(rune('1'+i)), "andy", "10.0.0.1", false, unauth)
	}
	before, lookups := l.checks.Load(), l.store.lookups.Load()
	l.expect(t, "the right password after 3 failures", "andy", "10.0.0.1", true, tooMany)
	l.expect(t, "the user from another address", "andy", "10.0.0.2", true, tooMany)
	l.expect(t, "another user from the address", "bea", "10.0.0.1", true, tooMany)
	l.expect(t, "a wrong password, refused", "andy", "10.0.0.9", false, tooMany)
	if n := l.checks.Load() - before; n != 0 {
		t.Errorf("refused attempts checked %d passwords", n)
	}
	if n := l.store.lookups.Load() - lookups; n != 4 {
		t.Errorf("4 refused attempts looked up users %d times, want once each", n)
	}
	l.expect(t, "another user from another address", "bea", "10.0.0.3", true, "")

	_, err := l.svc.Issue(l.ctx, cloudimage.Credentials{
		ProjectID: l.alpha.ID, Username: "andy", Password: l.password, Client: "10.0.0.2",
	})
	if d := cloudimage.RetryAfter(err); d <= 0 || d > time.Minute {
		t.Errorf("refusal %v: retry after %s, want (0, 1m]", err, d)
	}
	if !strings.Contains(cloudimage.ErrorMessage(err), "Too many failed") {
		t.Errorf("refusal message %q", cloudimage.ErrorMessage(err))
	}

	// A minute later one more attempt each: a success takes nothing, a
	// failure spends it.
	l.clock.Advance(time.Minute)
	l.expect(t, "a minute later", "andy", "10.0.0.2", true, "")
	l.expect(t, "a minute later, again", "andy", "10.0.0.2", true, "")
	l.expect(t, "a minute later, a failure", "andy", "10.0.0.2", false, unauth)
	l.expect(t, "after that failure", "andy", "10.0.0.2", true, tooMany)
	// The address has its own budget, refilled too.
	l.expect(t, "bea from the address a minute later", "bea", "10.0.0.1", true, "")

	// An unknown user's failures count as a wrong password's do.
	for range 3 {
		l.expect(t, "an unknown user", "nobody", "10.0.0.4", true, unauth)
	}
	l.expect(t, "a known user from that address", "bea", "10.0.0.4", true, tooMany)

	// Without a client address only the user's budget counts.
	l.expect(t, "bea, no address", "bea", "", false, unauth)
	l.expect(t, "bea, no address", "bea", "", true, "")
}

// TestAuthFailureLimitConcurrent checks that concurrent failures cannot
// overdraw a budget: of many wrong passwords sent at once, exactly burst
// are checked and the others refused.
func TestAuthFailureLimitConcurrent(t *testing.T) {
	t.Parallel()
	l := newLimited(t, 3)
	var wg sync.WaitGroup
	codes := make([]string, 20)
	for i := range codes {
		wg.Go(func() { codes[i] = l.issue(t, "andy", "10.0.0.1", false) })
	}
	wg.Wait()
	var checked int
	for _, c := range codes {
		switch c {
		case cloudimage.EUNAUTHORIZED:
			checked++
		case cloudimage.ETOOMANY:
		default:
			t.Errorf("code %q", c)
		}
	}
	if checked != 3 {
		t.Errorf("%d of 20 concurrent wrong passwords were checked, want 3", checked)
	}
}

// TestAuthFailureLimitOff checks that a zero burst or interval is no limit.
func TestAuthFailureLimitOff(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	for _, opt := range []cloudimage.IdentityOption{
		cloudimage.WithAuthFailureLimit(0, time.Minute), cloudimage.WithAuthFailureLimit(3, 0),
	} {
		svc := cloudimage.NewIdentityService(id.db, 0, opt)
		for range 5 {
			svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy", Password: "wrong"})
		}
		if _, err := svc.Issue(id.ctx, cloudimage.Credentials{
			ProjectID: id.alpha.ID, Username: "andy", Password: id.password,
		}); err != nil {
			t.Errorf("after 5 failures without a limit: %v", err)
		}
	}
}

// lyingStore answers every token lookup with the token whose hash is
// real: a store whose lookup matches what it should not (a case-blind or
// prefix match, say).
type lyingStore struct {
	*sqlite.DB
	real string
}

func (s lyingStore) Token(ctx context.Context, _ string) (*cloudimage.Token, error) {
	return s.DB.Token(ctx, s.real)
}

// TestValidateChecksStoredHash checks that Validate accepts a token only
// when the hash the store holds is the one of the secret given, whatever
// the store matched.
func TestValidateChecksStoredHash(t *testing.T) {
	t.Parallel()
	id := newIdentity(t, 0)
	tok, err := id.svc.Issue(id.ctx, cloudimage.Credentials{
		ProjectID: id.alpha.ID, Username: "andy", Password: id.password,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := cloudimage.NewIdentityService(lyingStore{DB: id.db, real: tok.Hash}, 0)
	if _, err := svc.Validate(id.ctx, tok.ID); err != nil {
		t.Fatalf("the token itself: %v", err)
	}
	for _, secret := range []string{"not the token", strings.ToUpper(tok.ID), tok.ID[:16]} {
		if _, err := svc.Validate(id.ctx, secret); cloudimage.ErrorCode(err) != cloudimage.EUNAUTHORIZED {
			t.Errorf("secret %q, which the store wrongly matched: %v, want EUNAUTHORIZED", secret, err)
		}
	}
}
