package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// TestAuthFailuresShared checks that replicas on one database share the
// failure budgets of token issuing: two identity services, each over a
// pool of its own; wrong passwords through one spend the budget that the
// other sees, so that the right password through it is refused.
func TestAuthFailuresShared(t *testing.T) {
	ctx := context.Background()
	dsn := freshDatabase(t)
	a, b := openWith(t, dsn, Options{}), openWith(t, dsn, Options{})
	now := time.Now()
	clock := func() time.Time { return now }
	svcA := cloudimage.NewIdentityService(a, 0, cloudimage.WithAuthFailureLimit(3, time.Minute), cloudimage.WithIdentityClock(clock))
	svcB := cloudimage.NewIdentityService(b, 0, cloudimage.WithAuthFailureLimit(3, time.Minute), cloudimage.WithIdentityClock(clock))
	p, err := svcA.CreateProject(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery"
	u, _, err := svcA.CreateUser(ctx, p.Name, "andy", pw, cloudimage.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(svc *cloudimage.IdentityService, cr cloudimage.Credentials) string {
		cr.ProjectID = p.ID
		_, err := svc.Issue(ctx, cr)
		return cloudimage.ErrorCode(err)
	}
	if c := issue(svcB, cloudimage.Credentials{Username: "andy", Password: pw, Client: "10.0.0.1"}); c != "" {
		t.Fatalf("a success on b: %q", c)
	}
	for i, svc := range []*cloudimage.IdentityService{svcA, svcA, svcB} {
		if c := issue(svc, cloudimage.Credentials{UserID: u.ID, Password: "wrong", Client: "10.0.0.1"}); c != cloudimage.EUNAUTHORIZED {
			t.Fatalf("failure %d: %q", i+1, c)
		}
	}
	for name, svc := range map[string]*cloudimage.IdentityService{"a": svcA, "b": svcB} {
		if c := issue(svc, cloudimage.Credentials{Username: "andy", Password: pw, Client: "10.0.0.2"}); c != cloudimage.ETOOMANY {
			t.Errorf("the right password on %s after 3 failures: %q, want ETOOMANY", name, c)
		}
	}
}
