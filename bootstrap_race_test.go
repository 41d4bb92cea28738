package cloudimage_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// lateStore is an identity store whose lookups of the bootstrap user and
// project miss once: what a replica sees when another one bootstraps
// between its lookup and its insert.
type lateStore struct {
	cloudimage.IdentityStore
	userMissed, projectMissed bool
}

func (s *lateStore) UserByName(ctx context.Context, name string) (*cloudimage.User, error) {
	if !s.userMissed {
		s.userMissed = true
		return nil, cloudimage.Errorf(cloudimage.ENOTFOUND, "not yet")
	}
	return s.IdentityStore.UserByName(ctx, name)
}

func (s *lateStore) ProjectByName(ctx context.Context, name string) (*cloudimage.Project, error) {
	if !s.projectMissed {
		s.projectMissed = true
		return nil, cloudimage.Errorf(cloudimage.ENOTFOUND, "not yet")
	}
	return s.IdentityStore.ProjectByName(ctx, name)
}

// TestBootstrapRace bootstraps once, then again through a store whose
// lookups miss what the first made, as a replica starting at the same
// moment would: the second finds the project and the user taken and
// returns nil, without an error and without a second admin.
func TestBootstrapRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	first, err := cloudimage.NewIdentityService(db, time.Hour).Bootstrap(ctx, "first-password")
	if err != nil || first == nil {
		t.Fatalf("first Bootstrap: %v, %v", first, err)
	}
	late := &lateStore{IdentityStore: db}
	second, err := cloudimage.NewIdentityService(late, time.Hour).Bootstrap(ctx, "second-password")
	if err != nil || second != nil {
		t.Fatalf("Bootstrap beside another: %+v, %v; want nil, nil", second, err)
	}
	if !late.userMissed || !late.projectMissed {
		t.Fatal("the store's lookups did not miss: the test tests nothing")
	}
	ids := cloudimage.NewIdentityService(db, time.Hour)
	cr := cloudimage.Credentials{ProjectName: cloudimage.BootstrapProject,
		Username: cloudimage.BootstrapUser, Password: "first-password"}
	if _, err := ids.Issue(ctx, cr); err != nil {
		t.Errorf("the first bootstrap's password no longer works: %v", err)
	}
}
