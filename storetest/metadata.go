// Package storetest holds the conformance suites that every implementation
// of cloudimage's store interfaces must pass: one for the metadata stores
// (images and identity) and one for the blob stores. Each implementation's
// tests call them with a constructor of fresh, empty stores.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// MetadataStore is a store of both images and identity, as the SQL
// implementations are: images belong to projects it holds.
type MetadataStore interface {
	cloudimage.ImageStore
	cloudimage.IdentityStore
}

// TestMetadataStore runs the metadata conformance suite; open must return
// a new, empty store each time it is called.
func TestMetadataStore(t *testing.T, open func(t *testing.T) MetadataStore) {
	t.Run("ImageRoundTrip", func(t *testing.T) { testImageRoundTrip(t, open(t)) })
	t.Run("ImageErrors", func(t *testing.T) { testImageErrors(t, open(t)) })
	t.Run("UpdateImage", func(t *testing.T) { testUpdateImage(t, open(t)) })
	t.Run("UpdateImageIsAtomic", func(t *testing.T) { testUpdateImageAtomic(t, open(t)) })
	t.Run("ListImagesViews", func(t *testing.T) { testListViews(t, open(t)) })
	t.Run("ListImagesFilters", func(t *testing.T) { testListFilters(t, open(t)) })
	t.Run("ListImagesPagination", func(t *testing.T) { testListPagination(t, open(t)) })
	t.Run("ListImagesInvalid", func(t *testing.T) { testListInvalid(t, open(t)) })
	t.Run("Members", func(t *testing.T) { testMembers(t, open(t)) })
	t.Run("MembersMax", func(t *testing.T) { testMembersMax(t, open(t)) })
	t.Run("UpdateMemberIsAtomic", func(t *testing.T) { testUpdateMemberAtomic(t, open(t)) })
	t.Run("ImagesInStatus", func(t *testing.T) { testImagesInStatus(t, open(t)) })
	t.Run("ImagesPendingDeleteBefore", func(t *testing.T) { testImagesPendingDeleteBefore(t, open(t)) })
	t.Run("ProjectUsage", func(t *testing.T) { testProjectUsage(t, open(t)) })
	t.Run("CreateImageWithin", func(t *testing.T) { testCreateImageWithin(t, open(t)) })
	t.Run("UpdateImageWithin", func(t *testing.T) { testUpdateImageWithin(t, open(t)) })
	t.Run("QuotaIsAtomic", func(t *testing.T) { testQuotaIsAtomic(t, open(t)) })
	t.Run("Projects", func(t *testing.T) { testProjects(t, open(t)) })
	t.Run("UsersAndRoles", func(t *testing.T) { testUsersAndRoles(t, open(t)) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, open(t)) })
	t.Run("OddKeys", func(t *testing.T) { testOddKeys(t, open(t)) })
}

// base is a fixed instant with microsecond precision, what stores keep.
var base = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func mustProject(t *testing.T, s MetadataStore, name string) *cloudimage.Project {
	t.Helper()
	p := &cloudimage.Project{ID: uuidHex(), Name: name, AppKey: "key-" + name, CreatedAt: base}
	if err := s.CreateProject(context.Background(), p); err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	return p
}

func uuidHex() string {
	u := uuid.New()
	return fmt.Sprintf("%x", u[:])
}

func newImage(owner string, created time.Time) *cloudimage.Image {
	return &cloudimage.Image{
		ID:         uuid.NewString(),
		Name:       "image",
		Status:     cloudimage.StatusQueued,
		Visibility: cloudimage.VisibilityPrivate,
		Owner:      owner,
		Tags:       []string{},
		Properties: map[string]string{},
		CreatedAt:  created,
		UpdatedAt:  created,
	}
}

func mustCreate(t *testing.T, s MetadataStore, img *cloudimage.Image) {
	t.Helper()
	if err := s.CreateImage(context.Background(), img); err != nil {
		t.Fatalf("create image: %v", err)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := cloudimage.ErrorCode(err); got != code {
		t.Fatalf("error %v: got code %q, want %q", err, got, code)
	}
}

// sameImage compares two images field by field, tags as a set.
func sameImage(t *testing.T, got, want *cloudimage.Image) {
	t.Helper()
	g, w := *got, *want
	g.Tags, w.Tags = slices.Sorted(slices.Values(g.Tags)), slices.Sorted(slices.Values(w.Tags))
	if g.Tags == nil {
		g.Tags = []string{}
	}
	if w.Tags == nil {
		w.Tags = []string{}
	}
	if fmt.Sprintf("%+v", deref(g)) != fmt.Sprintf("%+v", deref(w)) {
		t.Fatalf("image differs:\n got %+v\nwant %+v", deref(g), deref(w))
	}
}

// deref makes pointer fields printable by value for comparison.
func deref(img cloudimage.Image) map[string]any {
	m := map[string]any{
		"id": img.ID, "name": img.Name, "status": img.Status, "visibility": img.Visibility,
		"protected": img.Protected, "hidden": img.Hidden, "disk": img.DiskFormat,
		"container": img.ContainerFormat, "min_disk": img.MinDisk, "min_ram": img.MinRAM,
		"checksum": img.Checksum, "algo": img.HashAlgo, "hash": img.HashValue, "owner": img.Owner,
		"tags": img.Tags, "props": img.Properties,
		"created": img.CreatedAt.UTC().Format(time.RFC3339Nano),
		"updated": img.UpdatedAt.UTC().Format(time.RFC3339Nano),
	}
	if img.Size != nil {
		m["size"] = *img.Size
	}
	if img.VirtualSize != nil {
		m["virtual_size"] = *img.VirtualSize
	}
	if img.DeletedAt != nil {
		m["deleted"] = img.DeletedAt.UTC().Format(time.RFC3339Nano)
	}
	return m
}

func testImageRoundTrip(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	size, vsize := int64(1<<40+3), int64(1<<41)
	deleted := base.Add(time.Hour + 7*time.Microsecond)
	img := &cloudimage.Image{
		ID: uuid.NewString(), Name: "Ubuntu 24.04 — 日本語", Status: cloudimage.StatusActive,
		Visibility: cloudimage.VisibilityPublic, Protected: true, Hidden: true,
		DiskFormat: "qcow2", ContainerFormat: "bare", MinDisk: 10, MinRAM: 512,
		Size: &size, VirtualSize: &vsize, Checksum: "abc", HashAlgo: "sha512", HashValue: "def",
		Owner: p.ID, Tags: []string{"b", "a", "_AVAILABLE_"},
		Properties: map[string]string{"os_type": "linux", "empty": "", "quote": `"'\`},
		CreatedAt:  base.Add(123456 * time.Microsecond), UpdatedAt: base.Add(time.Minute),
		DeletedAt: &deleted,
	}
	mustCreate(t, s, img)
	got, err := s.Image(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, got, img)

	// Null sizes and no tags or properties survive as such.
	bare := newImage(p.ID, base)
	mustCreate(t, s, bare)
	got, err = s.Image(ctx, bare.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != nil || got.VirtualSize != nil || got.DeletedAt != nil {
		t.Fatalf("got size %v, virtual size %v, deleted %v; want all nil", got.Size, got.VirtualSize, got.DeletedAt)
	}
	if got.Properties == nil || len(got.Properties) != 0 || len(got.Tags) != 0 {
		t.Fatalf("got properties %v and tags %v, want empty", got.Properties, got.Tags)
	}
}

func testImageErrors(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	img := newImage(p.ID, base)
	mustCreate(t, s, img)
	wantCode(t, s.CreateImage(ctx, img), cloudimage.ECONFLICT)
	_, err := s.Image(ctx, uuid.NewString())
	wantCode(t, err, cloudimage.ENOTFOUND)
	_, err = s.UpdateImage(ctx, uuid.NewString(), func(*cloudimage.Image) error { return nil })
	wantCode(t, err, cloudimage.ENOTFOUND)
}

func testUpdateImage(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	img := newImage(p.ID, base)
	img.Tags = []string{"old", "keep"}
	mustCreate(t, s, img)

	size := int64(42)
	updated, err := s.UpdateImage(ctx, img.ID, func(img *cloudimage.Image) error {
		img.Name, img.Size, img.Tags = "renamed", &size, []string{"keep", "new"}
		img.Properties["k"] = "v"
		return img.SetStatus(cloudimage.StatusSaving, base.Add(time.Second))
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Image(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, got, updated)
	if got.Name != "renamed" || *got.Size != 42 || got.Status != cloudimage.StatusSaving || got.Properties["k"] != "v" {
		t.Fatalf("update not stored: %+v", got)
	}
	if tags := slices.Sorted(slices.Values(got.Tags)); !slices.Equal(tags, []string{"keep", "new"}) {
		t.Fatalf("got tags %v, want [keep new]", tags)
	}

	// An error from fn writes nothing and comes back as it is.
	boom := errors.New("boom")
	_, err = s.UpdateImage(ctx, img.ID, func(img *cloudimage.Image) error {
		img.Name = "must not be stored"
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got error %v, want %v", err, boom)
	}
	if got, _ := s.Image(ctx, img.ID); got.Name != "renamed" {
		t.Fatalf("got name %q after a failed update, want %q", got.Name, "renamed")
	}
}

func testUpdateImageAtomic(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	img := newImage(p.ID, base)
	mustCreate(t, s, img)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A column and the tags, which a store may keep apart: each
			// update must see the tags the one before it wrote.
			_, err := s.UpdateImage(ctx, img.ID, func(img *cloudimage.Image) error {
				img.MinDisk++
				img.Tags = append(img.Tags, fmt.Sprint("tag-", i))
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Image(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.MinDisk != n {
		t.Fatalf("got min_disk %d after %d concurrent increments, want %d", got.MinDisk, n, n)
	}
	if len(got.Tags) != n {
		t.Fatalf("got %d tags after %d concurrent updates that each added one, want %d: %v", len(got.Tags), n, n, got.Tags)
	}
}

func ids(imgs []*cloudimage.Image) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = img.ID
	}
	return out
}

func testImagesInStatus(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	a, b := mustProject(t, s, "a"), mustProject(t, s, "b")
	var saving []*cloudimage.Image
	for i := range 7 {
		owner := a.ID
		if i%2 == 1 {
			owner = b.ID
		}
		img := newImage(owner, base.Add(time.Duration(i)*time.Second))
		if i%3 != 0 {
			img.Status = cloudimage.StatusSaving
			saving = append(saving, img)
		}
		mustCreate(t, s, img)
	}
	got, err := s.ImagesInStatus(ctx, cloudimage.StatusSaving, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(saving)) {
		t.Fatalf("saving images:\n got %v\nwant %v", ids(got), ids(saving))
	}
	got, err = s.ImagesInStatus(ctx, cloudimage.StatusSaving, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(saving[:2])) {
		t.Fatalf("first two saving images:\n got %v\nwant %v", ids(got), ids(saving[:2]))
	}
}

func testProjects(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "one")
	for _, find := range []struct {
		name string
		fn   func(context.Context, string) (*cloudimage.Project, error)
		key  string
	}{{"ID", s.Project, p.ID}, {"name", s.ProjectByName, p.Name}, {"appkey", s.ProjectByAppKey, p.AppKey}} {
		got, err := find.fn(ctx, find.key)
		if err != nil {
			t.Fatalf("by %s: %v", find.name, err)
		}
		if *got != *p {
			t.Fatalf("by %s: got %+v, want %+v", find.name, got, p)
		}
		_, err = find.fn(ctx, "missing")
		wantCode(t, err, cloudimage.ENOTFOUND)
	}
	dupName := &cloudimage.Project{ID: uuidHex(), Name: "one", AppKey: "other", CreatedAt: base}
	wantCode(t, s.CreateProject(ctx, dupName), cloudimage.ECONFLICT)
	dupKey := &cloudimage.Project{ID: uuidHex(), Name: "two", AppKey: p.AppKey, CreatedAt: base}
	wantCode(t, s.CreateProject(ctx, dupKey), cloudimage.ECONFLICT)
	mustProject(t, s, "two")
	all, err := s.Projects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("got %d projects, want 2", len(all))
	}
}

func mustUser(t *testing.T, s MetadataStore, name string) *cloudimage.User {
	t.Helper()
	u := &cloudimage.User{ID: uuidHex(), Name: name, PasswordHash: "hash-" + name, CreatedAt: base}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func testUsersAndRoles(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	u := mustUser(t, s, "alice@example.com")
	got, err := s.UserByName(ctx, u.Name)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *u {
		t.Fatalf("got %+v, want %+v", got, u)
	}
	_, err = s.UserByName(ctx, "bob")
	wantCode(t, err, cloudimage.ENOTFOUND)
	if got, err = s.UserByID(ctx, u.ID); err != nil {
		t.Fatal(err)
	} else if *got != *u {
		t.Fatalf("by ID: got %+v, want %+v", got, u)
	}
	_, err = s.UserByID(ctx, u.Name) // a name is not an ID
	wantCode(t, err, cloudimage.ENOTFOUND)
	wantCode(t, s.CreateUser(ctx, &cloudimage.User{ID: uuidHex(), Name: u.Name, CreatedAt: base}), cloudimage.ECONFLICT)

	roles, err := s.Roles(ctx, u.ID, p.ID)
	if err != nil || len(roles) != 0 {
		t.Fatalf("got roles %v, %v; want none", roles, err)
	}
	for _, r := range []cloudimage.Role{cloudimage.RoleMember, cloudimage.RoleReader, cloudimage.RoleMember} {
		if err := s.AssignRole(ctx, u.ID, p.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	roles, err = s.Roles(ctx, u.ID, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(roles)
	if !slices.Equal(roles, []cloudimage.Role{cloudimage.RoleMember, cloudimage.RoleReader}) {
		t.Fatalf("got roles %v, want [member reader]", roles)
	}
}

func testTokens(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	u := mustUser(t, s, "alice")
	if err := s.AssignRole(ctx, u.ID, p.ID, cloudimage.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	tok := &cloudimage.Token{
		Hash: cloudimage.HashToken("secret"), User: u, Project: p,
		IssuedAt: base, ExpiresAt: base.Add(time.Hour),
	}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	old := &cloudimage.Token{
		Hash: cloudimage.HashToken("old"), User: u, Project: p,
		IssuedAt: base.Add(-2 * time.Hour), ExpiresAt: base.Add(-time.Hour),
	}
	if err := s.CreateToken(ctx, old); err != nil {
		t.Fatal(err)
	}
	got, err := s.Token(ctx, tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != tok.Hash || got.User.ID != u.ID || got.User.Name != u.Name || got.Project.ID != p.ID ||
		got.Project.AppKey != p.AppKey || !got.IssuedAt.Equal(tok.IssuedAt) || !got.ExpiresAt.Equal(tok.ExpiresAt) ||
		!slices.Equal(got.Roles, []cloudimage.Role{cloudimage.RoleAdmin}) {
		t.Fatalf("got token %+v (user %+v, project %+v)", got, got.User, got.Project)
	}
	_, err = s.Token(ctx, cloudimage.HashToken("unknown"))
	wantCode(t, err, cloudimage.ENOTFOUND)

	n, err := s.DeleteExpiredTokens(ctx, base)
	if err != nil || n != 1 {
		t.Fatalf("got %d, %v; want 1 expired token removed", n, err)
	}
	_, err = s.Token(ctx, old.Hash)
	wantCode(t, err, cloudimage.ENOTFOUND)
	if _, err := s.Token(ctx, tok.Hash); err != nil {
		t.Fatalf("live token removed: %v", err)
	}

	// Revocation removes exactly the one token.
	other := &cloudimage.Token{
		Hash: cloudimage.HashToken("other"), User: u, Project: p,
		IssuedAt: base, ExpiresAt: base.Add(time.Hour),
	}
	if err := s.CreateToken(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteToken(ctx, tok.Hash); err != nil {
		t.Fatal(err)
	}
	_, err = s.Token(ctx, tok.Hash)
	wantCode(t, err, cloudimage.ENOTFOUND)
	wantCode(t, s.DeleteToken(ctx, tok.Hash), cloudimage.ENOTFOUND)
	if _, err := s.Token(ctx, other.Hash); err != nil {
		t.Fatalf("another token was removed with the revoked one: %v", err)
	}
}
