package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/client"
	"github.com/cloudimage/cloudimage/fsblob"
	"github.com/cloudimage/cloudimage/postgres"
	"github.com/cloudimage/cloudimage/s3blob"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imageimport"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
	"github.com/schollz/progressbar/v3"
)

// The migrate tests build a catalog through a real server (uploads,
// shares, tags, a deactivated, a deleted and a staged image), stop it,
// migrate its database and data, start a server on the destination and
// check that users see there what they saw before.

// migrateSource is a catalog built through a server, and what its users
// saw of it before the server stopped.
type migrateSource struct {
	dir      string // the server's data directory: cloudimage.db and images/
	appKey   string // of the admin project
	users    []gcProject
	data     map[string][]byte        // the data of each image that has any, by image ID
	views    map[string]*images.Image // each image not deleted, as its owner's v2 GET shows it
	members  map[string][]members.Member
	lists    map[string][]string             // each user's v2 list, by user name
	v1       map[string][]client.ListedImage // the v1.0 list of the admin and of alice, by user name
	appKeys  map[string]string               // by user name, for the v1.0 lists
	imageIDs []string                        // every image, deleted ones included
}

// migrateServerArgs are the flags of every server these tests start.
var migrateServerArgs = []string{"--profile", "openstack", "--delayed-delete", "--orphan-grace", "1h"}

// buildMigrateSource builds the source catalog, through a server that it
// stops before it returns.
func buildMigrateSource(t *testing.T) *migrateSource {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	s := startServer(t, dir, map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword}, migrateServerArgs...)
	sessions := gcSessions(t, s,
		gcSessionSpec{Project: "alpha", User: "alice", Ways: []gcAuthWay{gcV3ByName}},
		gcSessionSpec{Project: "beta", User: "bob", Ways: []gcAuthWay{gcV2ByName}})
	admin := gcProject{ID: s.TenantID, Name: "admin", User: "admin", Password: testAdminPassword}
	adminP, err := gcAuthenticate(ctx, admin.auth(s, gcV3ByName))
	if err != nil {
		t.Fatal(err)
	}
	a, b, root := gcImageClient(t, sessions[0].Providers[0]), gcImageClient(t, sessions[1].Providers[0]),
		gcImageClient(t, adminP)
	src := &migrateSource{dir: dir, appKey: s.AppKey, data: map[string][]byte{}, views: map[string]*images.Image{},
		members: map[string][]members.Member{}, lists: map[string][]string{}, v1: map[string][]client.ListedImage{},
		users: []gcProject{sessions[0].gcProject, sessions[1].gcProject, admin}}

	shared, public := images.ImageVisibilityShared, images.ImageVisibilityPublic
	owners := map[string]*gophercloud.ServiceClient{}
	create := func(c *gophercloud.ServiceClient, name string, data []byte, vis *images.ImageVisibility) string {
		img := gcCreate(t, c, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare",
			Visibility: vis, Tags: []string{"migrate", name}, MinDisk: 1,
			Properties: map[string]string{"os_distro": "debian", "purpose": name}})
		src.imageIDs = append(src.imageIDs, img.ID)
		owners[img.ID] = c
		if data != nil {
			gcUpload(t, c, img.ID, data)
			src.data[img.ID] = data
		}
		return img.ID
	}
	create(a, "big", gcData(3<<20+17, 1), nil)
	sharedID := create(a, "shared", gcData(64<<10, 2), &shared)
	if _, err := members.Create(ctx, a, sharedID, sessions[1].ID).Extract(); err != nil {
		t.Fatal(err)
	}
	accept := members.UpdateOpts{Status: "accepted"}
	if _, err := members.Update(ctx, b, sharedID, sessions[1].ID, accept).Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := members.Create(ctx, a, sharedID, "0123456789abcdef0123456789abcdef").Extract(); err != nil {
		t.Fatal(err)
	}
	deactivated := create(a, "deactivated", gcData(1000, 3), nil)
	if err := gcAction(ctx, a, deactivated, "deactivate"); err != nil {
		t.Fatal(err)
	}
	// With delayed delete the data stays for the scrubber: pending_delete.
	pending := create(a, "pending-delete", gcData(2000, 4), nil)
	if err := images.Delete(ctx, a, pending).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	create(a, "queued", nil, nil)
	staged := create(a, "staged", nil, nil)
	stagedData := gcData(5000, 5)
	if err := imagedata.Stage(ctx, a, staged, bytes.NewReader(stagedData)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	src.data[staged+".staged"] = stagedData
	deleted := create(a, "deleted", nil, nil)
	if err := images.Delete(ctx, a, deleted).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	create(b, "bobs", gcData(10<<10, 6), nil)
	create(root, "public", gcData(4<<10, 7), &public)

	for _, id := range src.imageIDs {
		img, err := images.Get(ctx, owners[id], id).Extract()
		if id == pending || id == deleted {
			if err == nil {
				t.Fatalf("deleted image %s is shown: %+v", id, img)
			}
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		src.views[id] = img
		if img.Visibility == shared {
			src.members[id] = listMembers(t, owners[id], id)
		}
	}
	src.appKeys = map[string]string{"admin": s.AppKey, "alice": projectAppKey(t, dir, "alpha")}
	src.collectLists(t, a, b, root, s)
	s.Stop(t)
	return src
}

func listMembers(t *testing.T, c *gophercloud.ServiceClient, id string) []members.Member {
	t.Helper()
	pages, err := members.List(c, id).AllPages(t.Context())
	if err != nil {
		t.Fatalf("members of %s: %v", id, err)
	}
	ms, err := members.ExtractMembers(pages)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// projectAppKey reads the appkey of the project called name from the
// database under dir.
func projectAppKey(t *testing.T, dir, name string) string {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := db.ProjectByName(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p.AppKey
}

// collectLists records what each user's lists show on s.
func (src *migrateSource) collectLists(t *testing.T, a, b, root *gophercloud.ServiceClient, s *testServer) {
	t.Helper()
	src.lists["alice"] = gcAllPages(t, a, images.ListOpts{})
	src.lists["bob"] = gcAllPages(t, b, images.ListOpts{})
	src.lists["admin"] = gcAllPages(t, root, images.ListOpts{})
	for user, appKey := range src.appKeys {
		src.v1[user] = v1List(t, s.URL, appKey, src.user(user))
	}
}

func (src *migrateSource) user(name string) gcProject {
	for _, u := range src.users {
		if u.User == name {
			return u
		}
	}
	panic("no user " + name)
}

// v1List returns the whole v1.0 list that user sees through appKey.
func v1List(t *testing.T, url, appKey string, user gcProject) []client.ListedImage {
	t.Helper()
	c := testClient(url)
	c.AppKey, c.Username, c.Password = appKey, user.User, user.Password
	if _, err := c.IssueToken(t.Context()); err != nil {
		t.Fatalf("v1.0 token of %s: %v", user.User, err)
	}
	imgs, err := c.ListImages(t.Context(), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

// checkServed starts a server on the destination with args and checks
// that every user logs in there with the old password and sees what it
// saw at the source: the same lists (v1.0 and v2), the same images with
// the same hashes, tags and members, and byte for byte the same data.
func (src *migrateSource) checkServed(t *testing.T, dir string, args ...string) {
	t.Helper()
	ctx := t.Context()
	s := startServer(t, dir, map[string]string{}, append(slices.Clone(migrateServerArgs), args...)...)
	if s.TenantID != "" {
		t.Fatalf("the destination's server bootstrapped a new admin: the migrated one is missing\n%s", s.Stdout)
	}
	clients := map[string]*gophercloud.ServiceClient{}
	for _, u := range src.users {
		p, err := gcAuthenticate(ctx, u.auth(s, gcV3ByName))
		if err != nil {
			t.Fatalf("%s cannot log in at the destination with the old password: %v", u.User, err)
		}
		clients[u.User] = gcImageClient(t, p)
	}
	for user, want := range src.lists {
		if got := gcAllPages(t, clients[user], images.ListOpts{}); !slices.Equal(got, want) {
			t.Errorf("v2 list of %s at the destination:\n got %v\nwant %v", user, got, want)
		}
	}
	for user, want := range src.v1 {
		if got := v1List(t, s.URL, src.appKeys[user], src.user(user)); !reflect.DeepEqual(got, want) {
			t.Errorf("v1.0 list of %s at the destination:\n got %+v\nwant %+v", user, got, want)
		}
	}
	for id, want := range src.views {
		c := clients[src.ownerName(want.Owner)]
		got := gcGet(t, c, id)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("image %s at the destination:\n got %+v\nwant %+v", id, got, want)
		}
		if ms, ok := src.members[id]; ok && !reflect.DeepEqual(listMembers(t, c, id), ms) {
			t.Errorf("members of image %s at the destination:\n got %+v\nwant %+v", id, listMembers(t, c, id), ms)
		}
		if want.Status != images.ImageStatusActive {
			continue
		}
		data, _, err := gcDownload(t, c, id)
		if err != nil {
			t.Fatalf("download %s at the destination: %v", id, err)
		}
		if !bytes.Equal(data, src.data[id]) {
			t.Errorf("data of image %s at the destination: %d bytes differ from the %d uploaded",
				id, len(data), len(src.data[id]))
		}
	}
	// The staged image keeps its staged data: imported, it downloads.
	for id, want := range src.views {
		if want.Status != images.ImageStatusUploading {
			continue
		}
		c := clients[src.ownerName(want.Owner)]
		err := imageimport.Create(ctx, c, id, imageimport.CreateOpts{Name: imageimport.GlanceDirectMethod}).ExtractErr()
		if err != nil {
			t.Fatalf("import the staged image %s at the destination: %v", id, err)
		}
		waitActive(t, c, id)
		if data, _, err := gcDownload(t, c, id); err != nil || !bytes.Equal(data, src.data[id+".staged"]) {
			t.Errorf("data of the imported image %s: %d bytes, %v; want the %d staged", id, len(data), err,
				len(src.data[id+".staged"]))
		}
	}
	// The deactivated image keeps its data: reactivated, it downloads.
	for id, want := range src.views {
		if want.Status != images.ImageStatusDeactivated {
			continue
		}
		c := clients[src.ownerName(want.Owner)]
		if err := gcAction(ctx, c, id, "reactivate"); err != nil {
			t.Fatal(err)
		}
		if data, _, err := gcDownload(t, c, id); err != nil || !bytes.Equal(data, src.data[id]) {
			t.Errorf("data of the reactivated image %s: %d bytes, %v; want the %d uploaded",
				id, len(data), err, len(src.data[id]))
		}
	}
	s.Stop(t)
}

// waitActive waits for image id to become active.
func waitActive(t *testing.T, c *gophercloud.ServiceClient, id string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		img := gcGet(t, c, id)
		if img.Status == images.ImageStatusActive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s is still %s after %s", id, img.Status, waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (src *migrateSource) ownerName(project string) string {
	for _, u := range src.users {
		if u.ID == project {
			return u.User
		}
	}
	return "admin"
}

// migrateCLI runs "cloudimage migrate" with args and returns its output.
func migrateCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(t.Context(), append([]string{"migrate"}, args...), getenvFrom(nil), nil, &out, &errOut)
	return out.String(), errOut.String(), err
}

// fileArgs are the migrate flags from the source's data directory to dst.
func (src *migrateSource) fileArgs(dst string) []string {
	return []string{
		"--from", "sqlite:" + filepath.Join(src.dir, dbFile), "--to", "sqlite:" + filepath.Join(dst, dbFile),
		"--blobs-from", "file:" + filepath.Join(src.dir, "images"), "--blobs-to", "file:" + filepath.Join(dst, "images")}
}

// readAllCatalog reads the whole catalog of r.
func readAllCatalog(t *testing.T, r cloudimage.CatalogReader) (projects []*cloudimage.Project,
	users []*cloudimage.User, roles []cloudimage.RoleAssignment, imgs []*cloudimage.CatalogImage) {
	t.Helper()
	ctx := t.Context()
	var err error
	if projects, err = r.CatalogProjects(ctx, "", 10000); err != nil {
		t.Fatal(err)
	}
	if users, err = r.CatalogUsers(ctx, "", 10000); err != nil {
		t.Fatal(err)
	}
	if roles, err = r.CatalogRoles(ctx, nil, 10000); err != nil {
		t.Fatal(err)
	}
	if imgs, err = r.CatalogImages(ctx, "", 10000); err != nil {
		t.Fatal(err)
	}
	return projects, users, roles, imgs
}

// sameCatalogs fails the test unless a and b hold the same catalog,
// every field of every thing.
func sameCatalogs(t *testing.T, a, b cloudimage.CatalogReader) {
	t.Helper()
	ap, au, ar, ai := readAllCatalog(t, a)
	bp, bu, br, bi := readAllCatalog(t, b)
	if len(ap) != len(bp) || len(au) != len(bu) || !slices.Equal(ar, br) || len(ai) != len(bi) {
		t.Fatalf("catalogs differ: %d/%d projects, %d/%d users, %d/%d images, roles %v / %v",
			len(ap), len(bp), len(au), len(bu), len(ai), len(bi), ar, br)
	}
	for i := range ap {
		if d := ap[i].Diff(bp[i]); d != "" {
			t.Fatalf("project %s: %s differs", ap[i].ID, d)
		}
	}
	for i := range au {
		if d := au[i].Diff(bu[i]); d != "" {
			t.Fatalf("user %s: %s differs", au[i].ID, d)
		}
	}
	for i := range ai {
		if d := ai[i].Diff(bi[i]); d != "" {
			t.Fatalf("image %s: %s differs", ai[i].Image.ID, d)
		}
	}
}

// checkDataInvariant fails the test unless every image record in db
// whose data a migration carries has that data in blobs, equal to the
// source's: an interrupted migration must never leave a record without
// its data.
func checkDataInvariant(t *testing.T, db cloudimage.CatalogReader, blobs cloudimage.BlobStore,
	src *migrateSource) int {
	t.Helper()
	_, _, _, imgs := readAllCatalog(t, db)
	n := 0
	for _, r := range imgs {
		key := dataKey(r.Image)
		if key == "" {
			continue
		}
		n++
		got := readBlobData(t, blobs, key)
		if !bytes.Equal(got, src.data[key]) {
			t.Fatalf("image %s (%s) is at the destination, but its data under %s is %d bytes, want the %d of the source",
				r.Image.ID, r.Image.Status, key, len(got), len(src.data[key]))
		}
	}
	return n
}

func readBlobData(t *testing.T, blobs cloudimage.BlobStore, key string) []byte {
	t.Helper()
	r, err := blobs.Open(t.Context(), key)
	if cloudimage.ErrorCode(err) == cloudimage.ENOTFOUND {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// faultyBlobs is a destination blob store whose Put number failAt (from
// 1) fails: with cancel set it cancels the migration's context once some
// of the data went through, so that the Put is cut off midway; without,
// it stores the data whole and then reports a failure, so that the data
// is there without its record.
type faultyBlobs struct {
	cloudimage.BlobStore
	failAt int
	cancel context.CancelFunc
	puts   int
	keys   []string // of the Puts begun
}

func (f *faultyBlobs) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	f.puts++
	f.keys = append(f.keys, key)
	switch {
	case f.puts != f.failAt:
		return f.BlobStore.Put(ctx, key, r)
	case f.cancel != nil:
		return f.BlobStore.Put(ctx, key, &cancelingReader{r: r, after: 100, cancel: f.cancel})
	}
	n, err := f.BlobStore.Put(ctx, key, r)
	if err != nil {
		return n, err
	}
	return n, errors.New("injected failure after the data was stored")
}

// cancelingReader calls cancel once after bytes have been read.
type cancelingReader struct {
	r      io.Reader
	after  int
	cancel context.CancelFunc
	n      int
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p[:min(len(p), 64)])
	c.n += n
	if c.n >= c.after && c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	return n, err
}

// openDB opens the sqlite database under dir, closed when the test ends.
func openDB(t *testing.T, dir string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openDestination opens the sqlite database and file store under dir.
func openDestination(t *testing.T, dir string) (*sqlite.DB, *fsblob.Store) {
	t.Helper()
	db := openDB(t, dir)
	blobs, err := fsblob.Open(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	return db, blobs
}

// interruptedRun runs the migration of args (as fileArgs orders them)
// with a destination store that fails as faulty does, and returns what
// it returned.
func interruptedRun(ctx context.Context, t *testing.T, args []string, faulty *faultyBlobs) error {
	t.Helper()
	m, closeAll, err := openMigration(ctx, args[1], args[3], args[5], args[7])
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	m.pageSize = 2
	faulty.BlobStore = m.blobsTo
	m.blobsTo = faulty
	return m.run(ctx)
}

func TestMigrateSQLiteFiles(t *testing.T) {
	t.Parallel()
	src := buildMigrateSource(t)
	srcDB := openDB(t, src.dir)
	withData := 0
	for _, r := range func() []*cloudimage.CatalogImage { _, _, _, i := readAllCatalog(t, srcDB); return i }() {
		if dataKey(r.Image) != "" {
			withData++
		}
	}
	if withData != len(src.data) {
		t.Fatalf("the source has %d images with data, want %d", withData, len(src.data))
	}

	t.Run("Copy", func(t *testing.T) {
		dst := t.TempDir()
		stdout, stderr, err := migrateCLI(t, src.fileArgs(dst)...)
		if err != nil {
			t.Fatalf("migrate: %v\n%s%s", err, stdout, stderr)
		}
		want := fmt.Sprintf("images: %d copied, 0 skipped\ndata: %d copied", len(src.imageIDs), len(src.data))
		if !strings.Contains(stdout, want) {
			t.Errorf("summary:\n%s\nwant it to say %q", stdout, want)
		}
		dstDB, dstBlobs := openDestination(t, dst)
		sameCatalogs(t, srcDB, dstDB)
		checkDataInvariant(t, dstDB, dstBlobs, src)
		dstDB.Close()
		src.checkServed(t, dst)
	})

	t.Run("Interrupted", func(t *testing.T) {
		dst := t.TempDir()
		// Cut off midway through the second blob.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		first := &faultyBlobs{failAt: 2, cancel: cancel}
		if err := interruptedRun(ctx, t, src.fileArgs(dst), first); !errors.Is(err, context.Canceled) {
			t.Fatalf("migration cut off midway returned %v, want context.Canceled", err)
		}
		dstDB, dstBlobs := openDestination(t, dst)
		if n := checkDataInvariant(t, dstDB, dstBlobs, src); n != 1 {
			t.Fatalf("after a migration cut off in the second blob, %d images with data are at the destination, want 1", n)
		}
		if got := readBlobData(t, dstBlobs, first.keys[1]); got != nil {
			t.Fatalf("the blob cut off midway is at the destination (%d bytes)", len(got))
		}

		// Then a failure right after the next blob is stored.
		second := &faultyBlobs{failAt: 2}
		err := interruptedRun(t.Context(), t, src.fileArgs(dst), second)
		if err == nil || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("migration with a failing store returned %v, want the injected failure", err)
		}
		if n := checkDataInvariant(t, dstDB, dstBlobs, src); n != 2 {
			t.Fatalf("after the second interrupted run, %d images with data are at the destination, want 2", n)
		}
		if got := readBlobData(t, dstBlobs, second.keys[1]); !bytes.Equal(got, src.data[second.keys[1]]) {
			t.Fatalf("the blob stored before the failure is not at the destination")
		}

		stdout, stderr, err := migrateCLI(t, src.fileArgs(dst)...)
		if err != nil {
			t.Fatalf("migrate again: %v\n%s%s", err, stdout, stderr)
		}
		dataLine := regexp.MustCompile(fmt.Sprintf(`(?m)^data: %d copied \(\d+ bytes, verified\), 2 skipped, 0 missing`,
			len(src.data)-2))
		if !dataLine.MatchString(stdout) {
			t.Errorf("summary of the run that finished:\n%s\nwant %d blobs copied and 2 skipped", stdout, len(src.data)-2)
		}
		sameCatalogs(t, srcDB, dstDB)
		if n := checkDataInvariant(t, dstDB, dstBlobs, src); n != len(src.data) {
			t.Fatalf("%d images with data at the destination, want %d", n, len(src.data))
		}

		// Once more: nothing left to do.
		stdout, _, err = migrateCLI(t, src.fileArgs(dst)...)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("images: 0 copied, %d skipped\ndata: 0 copied (0 bytes, verified), %d skipped",
			len(src.imageIDs), len(src.data))
		if !strings.Contains(stdout, want) {
			t.Errorf("summary of a run with nothing to do:\n%s\nwant %q", stdout, want)
		}
		dstDB.Close()
		src.checkServed(t, dst)
	})

	t.Run("MissingDataIsCopiedAgain", func(t *testing.T) {
		dst := t.TempDir()
		if _, _, err := migrateCLI(t, src.fileArgs(dst)...); err != nil {
			t.Fatal(err)
		}
		_, dstBlobs := openDestination(t, dst)
		var key string
		for k := range src.data {
			key = k
			break
		}
		if err := dstBlobs.Delete(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(blobFile(dst, firstOther(src.data, key)), 10); err != nil {
			t.Fatal(err)
		}
		stdout, _, err := migrateCLI(t, src.fileArgs(dst)...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout, "data: 2 copied") {
			t.Errorf("summary:\n%s\nwant the missing and the truncated blob copied again", stdout)
		}
		dstDB, dstBlobs := openDestination(t, dst)
		checkDataInvariant(t, dstDB, dstBlobs, src)
	})

	t.Run("Corrupt", func(t *testing.T) {
		// A copy of the source with one byte of an active image's data flipped.
		corrupt := t.TempDir()
		if err := os.CopyFS(corrupt, os.DirFS(src.dir)); err != nil {
			t.Fatal(err)
		}
		var id string
		for i, v := range src.views {
			if v.Status == images.ImageStatusActive && v.Name == "big" {
				id = i
			}
		}
		path := blobFile(corrupt, id)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x01
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c := &migrateSource{dir: corrupt}
		dst := t.TempDir()
		_, _, err = migrateCLI(t, c.fileArgs(dst)...)
		if err == nil || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("migrate from a source with a damaged blob: %v; want an error naming image %s", err, id)
		}
		dstDB, dstBlobs := openDestination(t, dst)
		if _, err := dstDB.Image(t.Context(), id); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
			t.Fatalf("the image with damaged data has a record at the destination: %v", err)
		}
		if got := readBlobData(t, dstBlobs, id); got != nil {
			t.Fatalf("the damaged data was left at the destination (%d bytes)", len(got))
		}
		checkDataInvariant(t, dstDB, dstBlobs, src)
	})

	t.Run("Conflicts", func(t *testing.T) {
		// A destination a server started on: its own admin project.
		dst := t.TempDir()
		startServer(t, dst, map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": "another"}).Stop(t)
		_, _, err := migrateCLI(t, src.fileArgs(dst)...)
		if err == nil || !strings.Contains(err.Error(), `name "admin" is another project's`) ||
			!strings.Contains(err.Error(), "nothing was written") {
			t.Fatalf("migrate to a bootstrapped destination: %v; want a refusal naming the admin project", err)
		}
		dstDB, _ := openDestination(t, dst)
		if p, _, _, imgs := readAllCatalog(t, dstDB); len(p) != 1 || len(imgs) != 0 {
			t.Fatalf("after the refusal the destination has %d projects and %d images, want 1 and 0", len(p), len(imgs))
		}
		dstDB.Close()

		// A destination where an image copied before has changed since.
		dst = t.TempDir()
		if err := interruptedRun(t.Context(), t, src.fileArgs(dst), &faultyBlobs{failAt: 3}); err == nil {
			t.Fatal("the interrupted run succeeded")
		}
		dstDB, _ = openDestination(t, dst)
		_, _, _, before := readAllCatalog(t, dstDB)
		changed := before[0].Image.ID
		if _, err := dstDB.UpdateImage(t.Context(), changed, func(img *cloudimage.Image) error {
			img.Name = "renamed at the destination"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		_, _, err = migrateCLI(t, src.fileArgs(dst)...)
		if err == nil || !strings.Contains(err.Error(), changed) || !strings.Contains(err.Error(), "different name") {
			t.Fatalf("migrate to a destination with a changed image: %v; want a refusal naming %s", err, changed)
		}
		if _, _, _, after := readAllCatalog(t, dstDB); len(after) != len(before) {
			t.Fatalf("the refused run wrote: %d images at the destination, %d before", len(after), len(before))
		}
	})

	t.Run("ProgressBar", func(t *testing.T) {
		var drawn bytes.Buffer
		m, closeAll, err := openMigration(t.Context(), "sqlite:"+filepath.Join(src.dir, dbFile),
			"sqlite:"+filepath.Join(t.TempDir(), dbFile), "file:"+filepath.Join(src.dir, "images"),
			"file:"+filepath.Join(t.TempDir(), "images"))
		if err != nil {
			t.Fatal(err)
		}
		defer closeAll()
		var total int64
		m.newBar = func(n int64) *progressbar.ProgressBar {
			total = n
			return progressbar.NewOptions64(n, progressbar.OptionSetWriter(&drawn))
		}
		if err := m.run(t.Context()); err != nil {
			t.Fatal(err)
		}
		var want int64
		for _, data := range src.data {
			want += int64(len(data))
		}
		if total != want || m.sum.Bytes != want || !strings.Contains(drawn.String(), "100%") {
			t.Errorf("bar of %d bytes, %d copied, drawn %q; want %d and a full bar",
				total, m.sum.Bytes, drawn.String(), want)
		}
	})

	t.Run("Flags", func(t *testing.T) {
		dst := t.TempDir()
		args := src.fileArgs(dst)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--from", args[1], "--to", args[1]}, "same database"},
			{[]string{"--from", args[1], "--to", args[3], "--blobs-from", args[5]}, "give both"},
			{[]string{"--from", args[1], "--to", args[3], "--blobs-from", args[5], "--blobs-to", args[5]}, "same store"},
			{[]string{"--from", "sqlite:" + filepath.Join(dst, "missing.db"), "--to", args[3]}, "no database at"},
			{[]string{"--from", args[1], "--to", args[3], "--blobs-from", "file:" + filepath.Join(dst, "none"),
				"--blobs-to", args[7]}, "no blob directory"},
			{[]string{"--from", "mysql://x", "--to", args[3]}, "want postgres://"},
			{[]string{"--to", args[3]}, `"from" not set`},
		} {
			if _, _, err := migrateCLI(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("migrate %v: %v, want an error saying %q", tc.args, err, tc.want)
			}
		}
		if _, err := os.Stat(filepath.Join(dst, "missing.db")); err == nil {
			t.Error("a missing source database was created")
		}

		// Metadata only: the destination shares the source's store.
		stdout, _, err := migrateCLI(t, args[:4]...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout, "data: not copied") {
			t.Errorf("summary of a metadata-only run:\n%s", stdout)
		}
		if _, err := os.Stat(filepath.Join(dst, "images")); err == nil {
			t.Error("a metadata-only run created a blob store")
		}
		sameCatalogs(t, srcDB, openDB(t, dst))
	})
}

// firstOther returns a key of data other than key.
func firstOther(data map[string][]byte, key string) string {
	for k := range data {
		if k != key {
			return k
		}
	}
	return ""
}

// TestMigrateToPostgresS3 migrates from SQLite and files to a fresh
// PostgreSQL database and a fresh S3 prefix, cut off once midway, and
// serves the result.
func TestMigrateToPostgresS3(t *testing.T) {
	t.Parallel()
	dsn, s3URL := requireServers(t)
	src := buildMigrateSource(t)
	db, blob := freshPostgres(t, dsn), freshS3Prefix(t, s3URL)
	args := src.fileArgs(t.TempDir())
	args[3], args[7] = db, blob

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := interruptedRun(ctx, t, args, &faultyBlobs{failAt: 3, cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("migration cut off midway returned %v, want context.Canceled", err)
	}
	dstDB, err := postgres.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer dstDB.Close()
	dstBlobs, err := s3blob.Open(t.Context(), blob)
	if err != nil {
		t.Fatal(err)
	}
	if n := checkDataInvariant(t, dstDB, dstBlobs, src); n != 2 {
		t.Fatalf("after a migration cut off in the third blob, %d images with data are at the destination, want 2", n)
	}

	stdout, stderr, err := migrateCLI(t, args...)
	if err != nil {
		t.Fatalf("migrate: %v\n%s%s", err, stdout, stderr)
	}
	stdout, _, err = migrateCLI(t, args...)
	want := fmt.Sprintf("images: 0 copied, %d skipped", len(src.imageIDs))
	if err != nil || !strings.Contains(stdout, want) {
		t.Fatalf("migrate once more: %v\n%s\nwant %q", err, stdout, want)
	}
	sameCatalogs(t, openDB(t, src.dir), dstDB)
	if n := checkDataInvariant(t, dstDB, dstBlobs, src); n != len(src.data) {
		t.Fatalf("%d images with data at the destination, want %d", n, len(src.data))
	}
	src.checkServed(t, t.TempDir(), "--database", db, "--blob", blob)
}
