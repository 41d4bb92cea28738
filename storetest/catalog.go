package storetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// CatalogStore is a metadata store that a catalog can be copied from and
// to, as the SQL implementations are.
type CatalogStore interface {
	MetadataStore
	cloudimage.CatalogReader
	cloudimage.CatalogWriter
}

// TestCatalog runs the conformance suite of catalog export and import;
// open must return a new, empty store each time it is called (some tests
// open two: a source and a destination).
func TestCatalog(t *testing.T, open func(t *testing.T) CatalogStore) {
	t.Run("CopyRoundTrip", func(t *testing.T) { testCatalogCopy(t, open(t), open(t)) })
	t.Run("Paging", func(t *testing.T) { testCatalogPaging(t, open(t)) })
	t.Run("ImportIsIdempotent", func(t *testing.T) { testCatalogIdempotent(t, open(t), open(t)) })
	t.Run("ImportConflicts", func(t *testing.T) { testCatalogConflicts(t, open(t), open(t)) })
	t.Run("ImportNeedsOwners", func(t *testing.T) { testCatalogNeedsOwners(t, open(t)) })
	t.Run("ImportImageIsAtomic", func(t *testing.T) { testCatalogImportAtomic(t, open(t)) })
}

// catalog is everything a CatalogReader yields, in its order.
type catalog struct {
	projects []*cloudimage.Project
	users    []*cloudimage.User
	roles    []cloudimage.RoleAssignment
	images   []*cloudimage.CatalogImage
}

// maxCatalogPages bounds every walk of readCatalog, so that a cursor
// that does not advance fails the test rather than hang it.
const maxCatalogPages = 1000

// readCatalog reads all of s, limit at a time.
func readCatalog(t *testing.T, s CatalogStore, limit int) catalog {
	t.Helper()
	ctx := context.Background()
	var c catalog
	pages := 0
	more := func(n int) bool {
		t.Helper()
		if pages++; pages > maxCatalogPages {
			t.Fatalf("more than %d pages: the cursor does not advance", maxCatalogPages)
		}
		return n == limit
	}
	for after := ""; ; {
		page, err := s.CatalogProjects(ctx, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		c.projects = append(c.projects, page...)
		if !more(len(page)) {
			break
		}
		after = page[len(page)-1].ID
	}
	for after := ""; ; {
		page, err := s.CatalogUsers(ctx, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		c.users = append(c.users, page...)
		if !more(len(page)) {
			break
		}
		after = page[len(page)-1].ID
	}
	for after := (*cloudimage.RoleAssignment)(nil); ; {
		page, err := s.CatalogRoles(ctx, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		c.roles = append(c.roles, page...)
		if !more(len(page)) {
			break
		}
		after = &page[len(page)-1]
	}
	for after := ""; ; {
		page, err := s.CatalogImages(ctx, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		c.images = append(c.images, page...)
		if !more(len(page)) {
			break
		}
		after = page[len(page)-1].Image.ID
	}
	return c
}

// importCatalog imports all of c into s and returns how many things it
// wrote.
func importCatalog(t *testing.T, s CatalogStore, c catalog) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	count := func(wrote bool, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if wrote {
			n++
		}
	}
	for _, p := range c.projects {
		count(s.ImportProject(ctx, p))
	}
	for _, u := range c.users {
		count(s.ImportUser(ctx, u))
	}
	for _, r := range c.roles {
		count(s.ImportRole(ctx, r))
	}
	for _, img := range c.images {
		count(s.ImportImage(ctx, img))
	}
	return n
}

// sameCatalog fails the test unless got and want hold the same things.
func sameCatalog(t *testing.T, got, want catalog) {
	t.Helper()
	if len(got.projects) != len(want.projects) || len(got.users) != len(want.users) ||
		len(got.images) != len(want.images) {
		t.Fatalf("got %d projects, %d users, %d images; want %d, %d, %d",
			len(got.projects), len(got.users), len(got.images),
			len(want.projects), len(want.users), len(want.images))
	}
	for i, p := range want.projects {
		if d := got.projects[i].Diff(p); d != "" {
			t.Fatalf("project %s: %s differs: got %+v, want %+v", p.ID, d, got.projects[i], p)
		}
	}
	for i, u := range want.users {
		if d := got.users[i].Diff(u); d != "" {
			t.Fatalf("user %s: %s differs", u.ID, d)
		}
	}
	if !slices.Equal(got.roles, want.roles) {
		t.Fatalf("roles:\n got %v\nwant %v", got.roles, want.roles)
	}
	for i, img := range want.images {
		if d := got.images[i].Diff(img); d != "" {
			t.Fatalf("image %s: %s differs:\n got %+v %v\nwant %+v %v", img.Image.ID, d,
				got.images[i].Image, got.images[i].Members, img.Image, img.Members)
		}
	}
}

// seedCatalog fills s, through its ordinary methods, with a catalog that
// has a bit of everything: images in many statuses, deleted ones among
// them, with tags, properties and members.
func seedCatalog(t *testing.T, s CatalogStore) catalog {
	t.Helper()
	ctx := context.Background()
	var c catalog
	for i, name := range []string{"admin", "alpha", "beta"} {
		p := &cloudimage.Project{ID: uuidHex(), Name: name, AppKey: "key-" + name,
			CreatedAt: base.Add(time.Duration(i)*time.Hour + 17*time.Microsecond)}
		if err := s.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		c.projects = append(c.projects, p)
	}
	for i, name := range []string{"admin", "alice", "bob"} {
		u := &cloudimage.User{ID: uuidHex(), Name: name, PasswordHash: "$2a$10$hash-of-" + name,
			CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		c.users = append(c.users, u)
	}
	for _, r := range []cloudimage.RoleAssignment{
		{UserID: c.users[0].ID, ProjectID: c.projects[0].ID, Role: cloudimage.RoleAdmin},
		{UserID: c.users[1].ID, ProjectID: c.projects[1].ID, Role: cloudimage.RoleMember},
		{UserID: c.users[1].ID, ProjectID: c.projects[1].ID, Role: cloudimage.RoleReader},
		{UserID: c.users[1].ID, ProjectID: c.projects[2].ID, Role: cloudimage.RoleReader},
		{UserID: c.users[2].ID, ProjectID: c.projects[2].ID, Role: cloudimage.RoleAdmin},
	} {
		if err := s.AssignRole(ctx, r.UserID, r.ProjectID, r.Role); err != nil {
			t.Fatal(err)
		}
		c.roles = append(c.roles, r)
	}

	size, vsize := int64(1<<33+5), int64(1<<34)
	staged := int64(77)
	deletedAt := base.Add(3*time.Hour + 9*time.Microsecond)
	statuses := []cloudimage.Status{
		cloudimage.StatusActive, cloudimage.StatusActive, cloudimage.StatusDeactivated,
		cloudimage.StatusPendingDelete, cloudimage.StatusDeleted, cloudimage.StatusQueued,
		cloudimage.StatusUploading, cloudimage.StatusKilled, cloudimage.StatusSaving,
	}
	for i, st := range statuses {
		owner := c.projects[1+i%2].ID
		img := newImage(owner, base.Add(time.Duration(i)*time.Second+time.Duration(i)*time.Microsecond))
		img.Name = fmt.Sprintf("image %d — %s", i, st)
		img.Status = st
		img.UpdatedAt = img.CreatedAt.Add(time.Minute)
		img.DiskFormat, img.ContainerFormat, img.MinDisk, img.MinRAM = "qcow2", "bare", i, 64*i
		img.Tags = []string{fmt.Sprint("tag", i), "common"}
		img.Properties = map[string]string{"os_type": "linux", "index": fmt.Sprint(i), "empty": ""}
		switch st {
		case cloudimage.StatusActive, cloudimage.StatusDeactivated, cloudimage.StatusPendingDelete,
			cloudimage.StatusDeleted:
			img.Size, img.VirtualSize = &size, &vsize
			img.Checksum, img.HashAlgo, img.HashValue = fmt.Sprintf("md5-%d", i), "sha512", fmt.Sprintf("sha-%d", i)
		case cloudimage.StatusUploading:
			img.Size = &staged
		}
		if st == cloudimage.StatusPendingDelete || st == cloudimage.StatusDeleted {
			img.DeletedAt = &deletedAt
		}
		if i == 0 {
			img.Visibility, img.Protected, img.Hidden = cloudimage.VisibilityPublic, true, true
		}
		if i == 1 || i == 4 {
			img.Visibility = cloudimage.VisibilityShared
		}
		mustCreate(t, s, img)
		var members []*cloudimage.Member
		if img.Visibility == cloudimage.VisibilityShared {
			for j, ms := range []cloudimage.MemberStatus{cloudimage.MemberAccepted, cloudimage.MemberRejected} {
				m := &cloudimage.Member{ImageID: img.ID, ProjectID: c.projects[2-j].ID, Status: ms,
					CreatedAt: base.Add(time.Duration(j) * time.Millisecond), UpdatedAt: base.Add(time.Hour)}
				if m.ProjectID == owner {
					m.ProjectID = "0123456789abcdef0123456789abcdef" // a tenant the store does not hold
				}
				if err := s.AddMember(ctx, m, cloudimage.MaxMembers); err != nil {
					t.Fatal(err)
				}
				members = append(members, m)
			}
		}
		slices.SortFunc(members, func(a, b *cloudimage.Member) int { return cmp.Compare(a.ProjectID, b.ProjectID) })
		if members == nil {
			members = []*cloudimage.Member{}
		}
		c.images = append(c.images, &cloudimage.CatalogImage{Image: img, Members: members})
	}

	slices.SortFunc(c.projects, func(a, b *cloudimage.Project) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(c.users, func(a, b *cloudimage.User) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(c.roles, cloudimage.RoleAssignment.Compare)
	slices.SortFunc(c.images, func(a, b *cloudimage.CatalogImage) int { return cmp.Compare(a.Image.ID, b.Image.ID) })
	return c
}

// testCatalogCopy copies a catalog page by page and finds it whole at the
// destination, through the catalog and through the ordinary methods.
func testCatalogCopy(t *testing.T, src, dst CatalogStore) {
	ctx := context.Background()
	want := seedCatalog(t, src)
	got := readCatalog(t, src, 2)
	sameCatalog(t, got, want)

	wrote := importCatalog(t, dst, got)
	if n := len(want.projects) + len(want.users) + len(want.roles) + len(want.images); wrote != n {
		t.Fatalf("import wrote %d things, want %d", wrote, n)
	}
	sameCatalog(t, readCatalog(t, dst, 3), want)

	// What the service reads comes out as it went in.
	alice := want.users[slices.IndexFunc(want.users, func(u *cloudimage.User) bool { return u.Name == "alice" })]
	u, err := dst.UserByName(ctx, "alice")
	if err != nil || u.PasswordHash != alice.PasswordHash || u.ID != alice.ID {
		t.Fatalf("user alice at the destination: %+v, %v; want %+v", u, err, alice)
	}
	for _, p := range want.projects {
		if got, err := dst.ProjectByAppKey(ctx, p.AppKey); err != nil || got.Diff(p) != "" {
			t.Fatalf("project by appkey %s: %+v, %v; want %+v", p.AppKey, got, err, p)
		}
	}
	for _, r := range want.roles {
		roles, err := dst.Roles(ctx, r.UserID, r.ProjectID)
		if err != nil || !slices.Contains(roles, r.Role) {
			t.Fatalf("roles of %s in %s: %v, %v; want %s among them", r.UserID, r.ProjectID, roles, err, r.Role)
		}
	}
	for _, w := range want.images {
		img, err := dst.Image(ctx, w.Image.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, w.Image)
		members, err := dst.Members(ctx, w.Image.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(members) != len(w.Members) {
			t.Fatalf("image %s: %d members, want %d", w.Image.ID, len(members), len(w.Members))
		}
		for i := range members {
			sameMember(t, members[i], w.Members[i])
		}
	}
	// The copy's lists are the source's: the indexes hold the copied rows.
	for _, p := range want.projects {
		for _, vis := range []cloudimage.ListVisibility{cloudimage.ListAll, cloudimage.ListShared} {
			q := cloudimage.ImageQuery{Viewer: p.ID, Visibility: vis, MemberStatus: cloudimage.MemberAny, Limit: 100}
			if g, w := ids(mustList(t, dst, q)), ids(mustList(t, src, q)); !slices.Equal(g, w) {
				t.Fatalf("list %q of %s at the destination:\n got %v\nwant %v", vis, p.Name, g, w)
			}
		}
	}
}

// testCatalogPaging walks each kind in its order with every page size.
func testCatalogPaging(t *testing.T, s CatalogStore) {
	ctx := context.Background()
	want := seedCatalog(t, s)
	for limit := 1; limit <= len(want.images)+1; limit++ {
		sameCatalog(t, readCatalog(t, s, limit), want)
	}
	// A cursor need not be a stored ID: pages start strictly after it.
	mid := want.images[4].Image.ID
	page, err := s.CatalogImages(ctx, mid[:len(mid)-1], 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) == 0 || page[0].Image.ID != mid {
		t.Fatalf("images after a prefix of %s start with %v", mid, page)
	}
	if page, err = s.CatalogImages(ctx, want.images[len(want.images)-1].Image.ID, 100); err != nil || len(page) != 0 {
		t.Fatalf("images after the last: %v, %v; want none", page, err)
	}
	last := want.roles[len(want.roles)-1]
	if roles, err := s.CatalogRoles(ctx, &last, 10); err != nil || len(roles) != 0 {
		t.Fatalf("roles after the last: %v, %v; want none", roles, err)
	}
	for name, call := range map[string]func() error{
		"projects": func() error { _, err := s.CatalogProjects(ctx, "", 0); return err },
		"users":    func() error { _, err := s.CatalogUsers(ctx, "", 0); return err },
		"roles":    func() error { _, err := s.CatalogRoles(ctx, nil, 0); return err },
		"images":   func() error { _, err := s.CatalogImages(ctx, "", -1); return err },
	} {
		if err := call(); cloudimage.ErrorCode(err) != cloudimage.EINVALID {
			t.Errorf("%s with no limit: %v, want EINVALID", name, err)
		}
	}
}

// testCatalogIdempotent imports a catalog twice, and once more after an
// interruption: what is there and equal is left alone.
func testCatalogIdempotent(t *testing.T, src, dst CatalogStore) {
	want := seedCatalog(t, src)
	// An interrupted copy: the identity and the first images only.
	partial := want
	partial.images = want.images[:3]
	importCatalog(t, dst, partial)
	if n := importCatalog(t, dst, want); n != len(want.images)-3 {
		t.Fatalf("the second import wrote %d things, want the %d images left", n, len(want.images)-3)
	}
	if n := importCatalog(t, dst, want); n != 0 {
		t.Fatalf("the third import wrote %d things, want none", n)
	}
	sameCatalog(t, readCatalog(t, dst, 100), want)
}

// testCatalogConflicts imports into a store that holds other data under
// the same IDs, names or appkeys: each is ECONFLICT and changes nothing.
func testCatalogConflicts(t *testing.T, src, dst CatalogStore) {
	ctx := context.Background()
	want := seedCatalog(t, src)
	importCatalog(t, dst, want)

	renamed := *want.projects[0]
	renamed.Name = "renamed"
	other := &cloudimage.Project{ID: uuidHex(), Name: want.projects[1].Name, AppKey: "fresh", CreatedAt: base}
	otherKey := &cloudimage.Project{ID: uuidHex(), Name: "fresh", AppKey: want.projects[1].AppKey, CreatedAt: base}
	later := *want.projects[0]
	later.CreatedAt = later.CreatedAt.Add(time.Microsecond)
	for _, p := range []*cloudimage.Project{&renamed, other, otherKey, &later} {
		_, err := dst.ImportProject(ctx, p)
		wantCode(t, err, cloudimage.ECONFLICT)
	}
	rehashed := *want.users[0]
	rehashed.PasswordHash = "another hash"
	otherUser := &cloudimage.User{ID: uuidHex(), Name: want.users[1].Name, CreatedAt: base}
	for _, u := range []*cloudimage.User{&rehashed, otherUser} {
		_, err := dst.ImportUser(ctx, u)
		wantCode(t, err, cloudimage.ECONFLICT)
	}

	shared := want.images[slices.IndexFunc(want.images, func(r *cloudimage.CatalogImage) bool {
		return len(r.Members) > 0
	})]
	changes := map[string]func(r *cloudimage.CatalogImage){
		"status":     func(r *cloudimage.CatalogImage) { r.Image.Status = cloudimage.StatusQueued },
		"checksum":   func(r *cloudimage.CatalogImage) { r.Image.Checksum = "other" },
		"tags":       func(r *cloudimage.CatalogImage) { r.Image.Tags = append(r.Image.Tags, "more") },
		"properties": func(r *cloudimage.CatalogImage) { r.Image.Properties = map[string]string{"k": "v"} },
		"updated_at": func(r *cloudimage.CatalogImage) { r.Image.UpdatedAt = r.Image.UpdatedAt.Add(time.Second) },
		"members":    func(r *cloudimage.CatalogImage) { r.Members = r.Members[:1] },
		"member status": func(r *cloudimage.CatalogImage) {
			m := *r.Members[0]
			m.Status = cloudimage.MemberPending
			r.Members = append([]*cloudimage.Member{&m}, r.Members[1:]...)
		},
	}
	for name, change := range changes {
		img := *shared.Image
		img.Tags = slices.Clone(img.Tags)
		r := &cloudimage.CatalogImage{Image: &img, Members: slices.Clone(shared.Members)}
		change(r)
		wrote, err := dst.ImportImage(ctx, r)
		if cloudimage.ErrorCode(err) != cloudimage.ECONFLICT || wrote {
			t.Fatalf("import of image with a different %s: wrote %v, %v; want ECONFLICT", name, wrote, err)
		}
	}
	sameCatalog(t, readCatalog(t, dst, 100), want)
}

// testCatalogNeedsOwners imports roles and images whose user or project
// the store does not hold: ENOTFOUND, nothing written.
func testCatalogNeedsOwners(t *testing.T, s CatalogStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	u := mustUser(t, s, "u")
	for _, r := range []cloudimage.RoleAssignment{
		{UserID: uuidHex(), ProjectID: p.ID, Role: cloudimage.RoleMember},
		{UserID: u.ID, ProjectID: uuidHex(), Role: cloudimage.RoleMember},
	} {
		wrote, err := s.ImportRole(ctx, r)
		if cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND || wrote {
			t.Fatalf("import of %+v: wrote %v, %v; want ENOTFOUND", r, wrote, err)
		}
	}
	img := newImage(uuidHex(), base)
	wrote, err := s.ImportImage(ctx, &cloudimage.CatalogImage{Image: img})
	if cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND || wrote {
		t.Fatalf("import of an image of an unknown project: wrote %v, %v; want ENOTFOUND", wrote, err)
	}
	_, err = s.Image(ctx, img.ID)
	wantCode(t, err, cloudimage.ENOTFOUND)
}

// testCatalogImportAtomic imports an image whose members cannot all be
// stored: nothing of it is written, and the same image without the bad
// member is then imported whole.
func testCatalogImportAtomic(t *testing.T, s CatalogStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	img := newImage(p.ID, base)
	img.Visibility = cloudimage.VisibilityShared
	img.Tags = []string{"a", "b"}
	m := &cloudimage.Member{ImageID: img.ID, ProjectID: uuidHex(), Status: cloudimage.MemberAccepted,
		CreatedAt: base, UpdatedAt: base}
	dup := *m
	if _, err := s.ImportImage(ctx, &cloudimage.CatalogImage{Image: img,
		Members: []*cloudimage.Member{m, &dup}}); err == nil {
		t.Fatal("import of an image with a member twice succeeded")
	}
	if _, err := s.Image(ctx, img.ID); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Fatalf("after a failed import the image is there: %v", err)
	}
	page, err := s.CatalogImages(ctx, "", 10)
	if err != nil || len(page) != 0 {
		t.Fatalf("after a failed import: %d images, %v; want none", len(page), err)
	}
	r := &cloudimage.CatalogImage{Image: img, Members: []*cloudimage.Member{m}}
	if wrote, err := s.ImportImage(ctx, r); err != nil || !wrote {
		t.Fatalf("import: wrote %v, %v", wrote, err)
	}
	if page, err = s.CatalogImages(ctx, "", 10); err != nil || len(page) != 1 || page[0].Diff(r) != "" {
		t.Fatalf("after the import: %v, %v; want the image", page, err)
	}
}
