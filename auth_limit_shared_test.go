package cloudimage_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/cloudimage/cloudimage/storetest"
)

// TestMemAuthFailuresConformance runs the conformance suite on the
// in-memory store of failure budgets, the fallback of identity stores
// that keep none.
func TestMemAuthFailuresConformance(t *testing.T) {
	storetest.TestAuthFailureStore(t, func(*testing.T) cloudimage.AuthFailureStore {
		return cloudimage.NewMemAuthFailures()
	})
}

// TestAuthFailureLimitByID checks that a user named by ID and by name
// draws on one budget: failures one way spend the budget of the other,
// so naming a user both ways does not double its guesses. Unknown users
// still have budgets, by the name or ID given.
func TestAuthFailureLimitByID(t *testing.T) {
	t.Parallel()
	l := newLimited(t, 3)
	byID := func(id string, right bool) string {
		t.Helper()
		pw := l.password
		if !right {
			pw = "wrong " + pw
		}
		_, err := l.svc.Issue(l.ctx, cloudimage.Credentials{ProjectID: l.alpha.ID, UserID: id, Password: pw})
		return cloudimage.ErrorCode(err)
	}
	const unauth, tooMany = cloudimage.EUNAUTHORIZED, cloudimage.ETOOMANY
	l.expect(t, "failure 1, by name", "andy", "", false, unauth)
	l.expect(t, "failure 2, by name", "andy", "", false, unauth)
	if got := byID(l.andy.ID, false); got != unauth {
		t.Errorf("failure 3, by ID: %q, want %q", got, unauth)
	}
	if got := byID(l.andy.ID, true); got != tooMany {
		t.Errorf("by ID after 3 failures by name and ID: %q, want %q", got, tooMany)
	}
	l.expect(t, "by name after 3 failures by name and ID", "andy", "", true, tooMany)
	l.expect(t, "another user", "bea", "", true, "")

	// An unknown ID's failures cost as a known one's do.
	for range 3 {
		if got := byID("0123456789abcdef0123456789abcdef", true); got != unauth {
			t.Errorf("an unknown ID: %q, want %q", got, unauth)
		}
	}
	if got := byID("0123456789abcdef0123456789abcdef", true); got != tooMany {
		t.Errorf("an unknown ID after 3 failures: %q, want %q", got, tooMany)
	}
	for range 3 {
		l.expect(t, "an unknown name, odd", "nobody\x00 "+string(make([]byte, 300)), "", true, unauth)
	}
	l.expect(t, "that unknown name after 3 failures", "nobody\x00 "+string(make([]byte, 300)), "", true, tooMany)
}

// TestAuthFailureLimitShared checks that replicas on one database share
// the failure budgets: two identity services, each with a connection of
// its own to one SQLite file, as two processes would be; failures
// through one exhaust the budget seen by the other, of the user and of
// the address, and a success through either takes nothing.
func TestAuthFailureLimitShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	clock := newFakeClock()
	replica := func() *cloudimage.IdentityService {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return cloudimage.NewIdentityService(db, 0,
			cloudimage.WithAuthFailureLimit(3, time.Minute), cloudimage.WithIdentityClock(clock.Now))
	}
	a, b := replica(), replica()
	alpha, err := a.CreateProject(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery"
	for _, u := range []string{"andy", "bea"} {
		if _, _, err := a.CreateUser(ctx, alpha.Name, u, pw, cloudimage.RoleMember); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(svc *cloudimage.IdentityService, user, client string, right bool) string {
		p := pw
		if !right {
			p = "wrong"
		}
		_, err := svc.Issue(ctx, cloudimage.Credentials{ProjectID: alpha.ID, Username: user, Password: p, Client: client})
		return cloudimage.ErrorCode(err)
	}
	expect := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	for range 3 {
		expect("a success on b", issue(b, "andy", "10.0.0.1", true), "")
	}
	expect("failure 1 on a", issue(a, "andy", "10.0.0.1", false), cloudimage.EUNAUTHORIZED)
	expect("failure 2 on b", issue(b, "andy", "10.0.0.1", false), cloudimage.EUNAUTHORIZED)
	expect("failure 3 on a", issue(a, "andy", "10.0.0.1", false), cloudimage.EUNAUTHORIZED)
	expect("the user on b", issue(b, "andy", "10.0.0.2", true), cloudimage.ETOOMANY)
	expect("the address on b", issue(b, "bea", "10.0.0.1", true), cloudimage.ETOOMANY)
	expect("the user on a", issue(a, "andy", "10.0.0.3", true), cloudimage.ETOOMANY)
	expect("another user and address on b", issue(b, "bea", "10.0.0.4", true), "")
	clock.Advance(time.Minute)
	expect("a minute later, on b", issue(b, "andy", "10.0.0.1", true), "")
}
