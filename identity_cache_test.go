package cloudimage_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
)

// countingTokens counts the token lookups the identity service makes.
type countingTokens struct {
	*sqlite.DB
	lookups atomic.Int64
}

func (c *countingTokens) Token(ctx context.Context, hash string) (*cloudimage.Token, error) {
	c.lookups.Add(1)
	return c.DB.Token(ctx, hash)
}

// TestTokenCache checks that a token validated again, with nothing in the
// store changed, is not looked up again; that the caller gets its own
// copy; and that expiry and any change in the store still apply at once.
func TestTokenCache(t *testing.T) {
	id := newIdentity(t, 0)
	store := &countingTokens{DB: id.db}
	now := time.Now()
	svc := cloudimage.NewIdentityService(store, time.Hour,
		cloudimage.WithIdentityClock(func() time.Time { return now }))
	tok, err := svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy",
		Password: id.password})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := svc.Validate(id.ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Project.ID != id.alpha.ID || len(got.Roles) != 1 {
			t.Fatalf("validated token: project %s, roles %v", got.Project.ID, got.Roles)
		}
		// What the caller does with its copy is its own business.
		got.Roles[0], got.Project.ID = cloudimage.RoleAdmin, "changed"
	}
	if n := store.lookups.Load(); n != 1 {
		t.Errorf("3 validations of one token looked it up %d times, want 1", n)
	}

	// Any commit, here a new project, makes the service look again.
	if _, err := svc.CreateProject(id.ctx, "gamma"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Validate(id.ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if n := store.lookups.Load(); n != 2 {
		t.Errorf("after a change the token was looked up %d times in all, want 2", n)
	}

	// Expiry is checked on every validation, cached or not.
	now = now.Add(2 * time.Hour)
	_, err = svc.Validate(id.ctx, tok.ID)
	wantCode(t, err, cloudimage.EUNAUTHORIZED)
	now = now.Add(-2 * time.Hour)

	// A token revoked by another process is refused at once.
	other, err := sqlite.Open(id.ctx, id.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := svc.Validate(id.ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteToken(id.ctx, cloudimage.HashToken(tok.ID)); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Validate(id.ctx, tok.ID)
	wantCode(t, err, cloudimage.EUNAUTHORIZED)
}

// TestTokenCacheOff checks that WithTokenCache(nil, 0) looks every token up.
func TestTokenCacheOff(t *testing.T) {
	id := newIdentity(t, 0)
	store := &countingTokens{DB: id.db}
	svc := cloudimage.NewIdentityService(store, time.Hour, cloudimage.WithTokenCache(nil, 0))
	tok, err := svc.Issue(id.ctx, cloudimage.Credentials{ProjectID: id.alpha.ID, Username: "andy",
		Password: id.password})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := svc.Validate(id.ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.lookups.Load(); n != 3 {
		t.Errorf("3 validations without a cache looked the token up %d times, want 3", n)
	}
}

// BenchmarkValidate measures validating one token again and again, with
// the token cache (nothing in the store changes meanwhile) and without.
// benchstat -col /cache compares the two.
func BenchmarkValidate(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, b.TempDir()+"/db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	setup := cloudimage.NewIdentityService(db, time.Hour)
	p, err := setup.CreateProject(ctx, "alpha")
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := setup.CreateUser(ctx, p.Name, "andy", "correct horse battery", cloudimage.RoleMember); err != nil {
		b.Fatal(err)
	}
	tok, err := setup.Issue(ctx, cloudimage.Credentials{ProjectID: p.ID, Username: "andy", Password: "correct horse battery"})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts []cloudimage.IdentityOption
	}{
		{"cache=off", []cloudimage.IdentityOption{cloudimage.WithTokenCache(nil, 0)}},
		{"cache=on", nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			svc := cloudimage.NewIdentityService(db, time.Hour, c.opts...)
			for b.Loop() {
				if _, err := svc.Validate(ctx, tok.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
