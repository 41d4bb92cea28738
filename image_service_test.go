package cloudimage_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/google/uuid"
)

// openDB opens a fresh SQLite database in a temporary directory.
func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// wantCode fails the test unless err carries the code want.
func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := cloudimage.ErrorCode(err); got != want {
		t.Fatalf("got code %q (err %v), want %q", got, err, want)
	}
}

// fixture is an image service over real stores, with two projects, A and
// B, and a caller for each role that matters.
type fixture struct {
	ctx     context.Context
	db      *sqlite.DB
	blobs   *fsblob.Store
	blobDir string
	ids     *cloudimage.IdentityService
	svc     *cloudimage.ImageService
	logger  *slog.Logger

	adminA, memberA, readerA *cloudimage.Caller
	adminB, memberB          *cloudimage.Caller
}

// seedUsers are the fixture's users: project, name and role.
var seedUsers = []struct {
	project, name string
	role          cloudimage.Role
}{
	{"alpha", "alice", cloudimage.RoleAdmin},
	{"alpha", "andy", cloudimage.RoleMember},
	{"alpha", "ann", cloudimage.RoleReader},
	{"beta", "bella", cloudimage.RoleAdmin},
	{"beta", "bob", cloudimage.RoleMember},
}

// identityTemplate is a database file holding the fixture's projects and
// users and a token for each user. They are made once, through the
// IdentityService, because bcrypt under the race detector makes a user
// cost most of a second; each fixture starts from a copy of the file.
var identityTemplate struct {
	once   sync.Once
	dir    string
	tokens map[string]string // user name -> token secret
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if identityTemplate.dir != "" {
		os.RemoveAll(identityTemplate.dir)
	}
	os.Exit(code)
}

func buildIdentityTemplate() error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cloudimage-test-")
	if err != nil {
		return err
	}
	identityTemplate.dir = dir
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		return err
	}
	defer db.Close()
	ids := cloudimage.NewIdentityService(db, 0)
	projects := map[string]*cloudimage.Project{}
	for _, name := range []string{"alpha", "beta"} {
		if projects[name], err = ids.CreateProject(ctx, name); err != nil {
			return err
		}
	}
	identityTemplate.tokens = map[string]string{}
	for _, u := range seedUsers {
		_, pw, err := ids.CreateUser(ctx, projects[u.project].ID, u.name, "", u.role)
		if err != nil {
			return fmt.Errorf("create user %s: %w", u.name, err)
		}
		tok, err := ids.Issue(ctx, cloudimage.Credentials{ProjectName: u.project, Username: u.name, Password: pw})
		if err != nil {
			return fmt.Errorf("issue token for %s: %w", u.name, err)
		}
		identityTemplate.tokens[u.name] = tok.ID
	}
	return db.Close()
}

// copyIdentityTemplate copies the template database into dir.
func copyIdentityTemplate(t *testing.T, dir string) string {
	t.Helper()
	identityTemplate.once.Do(func() { identityTemplate.err = buildIdentityTemplate() })
	if identityTemplate.err != nil {
		t.Fatalf("build identity template: %v", identityTemplate.err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(filepath.Join(identityTemplate.dir, "db"+suffix))
		if os.IsNotExist(err) && suffix != "" {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "db"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "db")
}

// newFixture builds a fixture whose service has the given options (the
// nhn profile unless they say otherwise). wrap, if not nil, stands between
// the service and the file store, so a test can make the store misbehave.
// The service is closed, and its background imports waited for, before
// the stores close.
func newFixture(t *testing.T, wrap func(cloudimage.BlobStore) cloudimage.BlobStore,
	opts ...cloudimage.ServiceOption) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), blobDir: t.TempDir()}
	db, err := sqlite.Open(f.ctx, copyIdentityTemplate(t, t.TempDir()))
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	if f.blobs, err = fsblob.Open(f.blobDir); err != nil {
		t.Fatalf("open blob store: %v", err)
	}
	var blobs cloudimage.BlobStore = f.blobs
	if wrap != nil {
		blobs = wrap(blobs)
	}
	f.logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	f.ids = cloudimage.NewIdentityService(f.db, 0)
	f.svc = cloudimage.NewImageService(f.db, blobs, f.logger, opts...)
	t.Cleanup(f.svc.Close)

	f.adminA = f.caller(t, "alice", cloudimage.RoleAdmin)
	f.memberA = f.caller(t, "andy", cloudimage.RoleMember)
	f.readerA = f.caller(t, "ann", cloudimage.RoleReader)
	f.adminB = f.caller(t, "bella", cloudimage.RoleAdmin)
	f.memberB = f.caller(t, "bob", cloudimage.RoleMember)
	if f.adminA.ProjectID != f.memberA.ProjectID || f.adminA.ProjectID == f.adminB.ProjectID {
		t.Fatalf("fixture projects are not as the test assumes")
	}
	return f
}

// caller returns who the token of the named user speaks for, as a
// request would resolve it.
func (f *fixture) caller(t *testing.T, name string, role cloudimage.Role) *cloudimage.Caller {
	t.Helper()
	tok, err := f.ids.Validate(f.ctx, identityTemplate.tokens[name])
	if err != nil {
		t.Fatalf("validate token of %s: %v", name, err)
	}
	c := tok.Caller()
	if !slices.Equal(c.Roles, []cloudimage.Role{role}) {
		t.Fatalf("%s holds roles %v, want [%s]", name, c.Roles, role)
	}
	return c
}

// create creates an image as c with the formats an upload needs and,
// when the profile requires one, os_type linux unless in names an os_type.
func (f *fixture) create(t *testing.T, c *cloudimage.Caller, in cloudimage.ImageCreate) *cloudimage.Image {
	t.Helper()
	if in.DiskFormat == "" {
		in.DiskFormat = "raw"
	}
	if in.ContainerFormat == "" {
		in.ContainerFormat = "bare"
	}
	if _, ok := in.Properties["os_type"]; !ok && f.svc.Profile().RequireOSType {
		in.Properties = withProps(in.Properties, "os_type", "linux")
	}
	img, err := f.svc.Create(f.ctx, c, in)
	if err != nil {
		t.Fatalf("create image %q: %v", in.Name, err)
	}
	return img
}

// withProps returns a copy of props with the given key-value pairs set.
func withProps(props map[string]string, kv ...string) map[string]string {
	out := maps.Clone(props)
	if out == nil {
		out = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// linux returns the properties the nhn profile requires of every image.
func linux() map[string]string {
	return map[string]string{"os_type": "linux"}
}

// downloadable returns properties with which the nhn profile lets an
// image's data be downloaded.
func downloadable() map[string]string {
	return map[string]string{"os_type": "linux", "nhncloud_allow_download": "true"}
}

// upload uploads data to the image as c and fails the test on error.
func (f *fixture) upload(t *testing.T, c *cloudimage.Caller, id string, data []byte) *cloudimage.Image {
	t.Helper()
	img, err := f.svc.Upload(f.ctx, c, id, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("upload to %s: %v", id, err)
	}
	return img
}

// stored returns the image as the store holds it, deleted or not.
func (f *fixture) stored(t *testing.T, id string) *cloudimage.Image {
	t.Helper()
	img, err := f.db.Image(f.ctx, id)
	if err != nil {
		t.Fatalf("read image %s from the store: %v", id, err)
	}
	return img
}

// blob returns the data the file store holds under id.
func (f *fixture) blob(t *testing.T, id string) []byte {
	t.Helper()
	rc, err := f.blobs.Open(f.ctx, id)
	if err != nil {
		t.Fatalf("open blob %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read blob %s: %v", id, err)
	}
	return b
}

// noBlob fails the test if the file store holds anything under id.
func (f *fixture) noBlob(t *testing.T, id string) {
	t.Helper()
	rc, err := f.blobs.Open(f.ctx, id)
	if err == nil {
		rc.Close()
	}
	if got := cloudimage.ErrorCode(err); got != cloudimage.ENOTFOUND {
		t.Fatalf("blob %s: Open gave code %q (err %v), want %q", id, got, err, cloudimage.ENOTFOUND)
	}
}

// stagingEmpty fails the test if an upload left a file in staging.
func (f *fixture) stagingEmpty(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.blobDir, ".staging"))
	if err != nil {
		t.Fatalf("read staging directory: %v", err)
	}
	for _, e := range entries {
		t.Errorf("staging directory holds %s, want it empty", e.Name())
	}
}

func wantStatus(t *testing.T, img *cloudimage.Image, want cloudimage.Status) {
	t.Helper()
	if img.Status != want {
		t.Fatalf("image %s: status %s, want %s", img.ID, img.Status, want)
	}
}

func TestCreateDefaults(t *testing.T) {
	t.Parallel()
	for _, p := range cloudimage.Profiles {
		t.Run(p.Name, func(t *testing.T) {
			// Under nhn the one property an image needs; under openstack none.
			var props map[string]string
			if p.RequireOSType {
				props = linux()
			}
			testCreateDefaults(t, newFixture(t, nil, cloudimage.WithProfile(p)), props)
		})
	}
}

func testCreateDefaults(t *testing.T, f *fixture, props map[string]string) {
	before := time.Now().UTC().Add(-time.Second)
	img, err := f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{Name: "plain", Properties: props})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	if _, err := uuid.Parse(img.ID); err != nil || len(img.ID) != 36 {
		t.Errorf("ID = %q, want a generated UUID", img.ID)
	}
	if img.Visibility != cloudimage.VisibilityShared {
		t.Errorf("Visibility = %q, want %q", img.Visibility, cloudimage.VisibilityShared)
	}
	wantStatus(t, img, cloudimage.StatusQueued)
	if img.Owner != f.memberA.ProjectID {
		t.Errorf("Owner = %q, want the caller's project %q", img.Owner, f.memberA.ProjectID)
	}
	if img.Size != nil || img.VirtualSize != nil || img.Checksum != "" || img.HashValue != "" {
		t.Errorf("a new image has data attributes: size %v, virtual %v, checksum %q, hash %q",
			img.Size, img.VirtualSize, img.Checksum, img.HashValue)
	}
	if img.Properties == nil || !maps.Equal(img.Properties, props) {
		t.Errorf("Properties = %#v, want %v in a non-nil map", img.Properties, props)
	}
	if img.CreatedAt.Before(before) || !img.UpdatedAt.Equal(img.CreatedAt) {
		t.Errorf("CreatedAt %v, UpdatedAt %v: want both now and equal", img.CreatedAt, img.UpdatedAt)
	}
	if img.Deleted() || img.Protected || img.Hidden {
		t.Errorf("Deleted %v, Protected %v, Hidden %v: want all false", img.Deleted(), img.Protected, img.Hidden)
	}

	got, err := f.svc.Get(f.ctx, f.memberA, img.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	sameImage(t, got, img)
}

// sameImage fails the test unless got and want agree on every attribute.
func sameImage(t *testing.T, got, want *cloudimage.Image) {
	t.Helper()
	type flat struct {
		ID, Name, DiskFormat, ContainerFormat, Checksum, HashAlgo, HashValue, Owner string
		Status                                                                      cloudimage.Status
		Visibility                                                                  cloudimage.Visibility
		Protected, Hidden                                                           bool
		MinDisk, MinRAM                                                             int
		Size, VirtualSize                                                           string
		Tags, Properties                                                            string
		CreatedAt, UpdatedAt                                                        int64
		Deleted                                                                     bool
	}
	ptr := func(p *int64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	mk := func(i *cloudimage.Image) flat {
		return flat{
			i.ID, i.Name, i.DiskFormat, i.ContainerFormat, i.Checksum, i.HashAlgo, i.HashValue, i.Owner,
			i.Status, i.Visibility, i.Protected, i.Hidden, i.MinDisk, i.MinRAM,
			ptr(i.Size), ptr(i.VirtualSize), fmt.Sprint(i.Tags), fmt.Sprint(i.Properties),
			i.CreatedAt.UnixNano(), i.UpdatedAt.UnixNano(), i.Deleted(),
		}
	}
	if g, w := mk(got), mk(want); g != w {
		t.Errorf("image differs:\n got %+v\nwant %+v", g, w)
	}
}

func TestCreateKeepsAttributes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := uuid.NewString()
	in := cloudimage.ImageCreate{
		ID: id, Name: "ubuntu", DiskFormat: "qcow2", ContainerFormat: "bare",
		MinDisk: 20, MinRAM: 1024, Protected: true, Hidden: true,
		Visibility: cloudimage.VisibilityPrivate,
		Tags:       []string{"a", "b", "a", "c", "b", "c"},
		Properties: map[string]string{"os_distro": "ubuntu", "nhncloud_product": "Ubuntu Server", "os_type": "linux"},
	}
	img, err := f.svc.Create(f.ctx, f.memberA, in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if img.ID != id || img.Name != "ubuntu" || img.DiskFormat != "qcow2" || img.ContainerFormat != "bare" ||
		img.MinDisk != 20 || img.MinRAM != 1024 || !img.Protected || !img.Hidden ||
		img.Visibility != cloudimage.VisibilityPrivate {
		t.Errorf("Create returned %+v, want the attributes asked for", img)
	}
	wantTags := []string{"a", "b", "c"}
	if !slices.Equal(img.Tags, wantTags) {
		t.Errorf("Tags = %q, want %q (duplicates dropped)", img.Tags, wantTags)
	}
	got, err := f.svc.Get(f.ctx, f.memberA, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !slices.Equal(got.Tags, wantTags) {
		t.Errorf("stored Tags = %q, want %q", got.Tags, wantTags)
	}
	if !got.HasTag("b") || got.HasTag("d") || got.HasTag("") {
		t.Errorf("HasTag b, d, \"\" = %v %v %v, want true false false",
			got.HasTag("b"), got.HasTag("d"), got.HasTag(""))
	}
	if got.Properties["os_distro"] != "ubuntu" || !maps.Equal(got.Properties, in.Properties) {
		t.Errorf("stored Properties = %v, want %v", got.Properties, in.Properties)
	}
	sameImage(t, got, img)
}

func TestCreateCanonicalID(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := uuid.NewString()
	img, err := f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{ID: strings.ToUpper(id), Properties: linux()})
	if err != nil {
		t.Fatalf("Create with an upper-case UUID: %v", err)
	}
	if img.ID != id {
		t.Errorf("ID = %q, want canonical %q", img.ID, id)
	}
	if _, err := f.svc.Get(f.ctx, f.memberA, id); err != nil {
		t.Errorf("Get(%s): %v", id, err)
	}
}

func TestCreateRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tooManyTags := make([]string, cloudimage.MaxTags+1)
	for i := range tooManyTags {
		tooManyTags[i] = fmt.Sprint("t", i)
	}
	tooManyProps := map[string]string{}
	for i := range cloudimage.MaxProperties + 1 {
		tooManyProps[fmt.Sprint("p", i)] = "v"
	}
	tests := []struct {
		name   string
		caller *cloudimage.Caller
		in     cloudimage.ImageCreate
		want   string
	}{
		{"bad disk_format", f.memberA, cloudimage.ImageCreate{DiskFormat: "qcow3"}, cloudimage.EINVALID},
		{"disk_format case", f.memberA, cloudimage.ImageCreate{DiskFormat: "QCOW2"}, cloudimage.EINVALID},
		{"bad container_format", f.memberA, cloudimage.ImageCreate{ContainerFormat: "zip"}, cloudimage.EINVALID},
		{"negative min_disk", f.memberA, cloudimage.ImageCreate{MinDisk: -1}, cloudimage.EINVALID},
		{"negative min_ram", f.memberA, cloudimage.ImageCreate{MinRAM: -1}, cloudimage.EINVALID},
		{"bad visibility", f.memberA, cloudimage.ImageCreate{Visibility: "everyone"}, cloudimage.EINVALID},
		{"name too long", f.memberA, cloudimage.ImageCreate{Name: strings.Repeat("n", cloudimage.MaxNameLength+1)},
			cloudimage.EINVALID},
		{"reserved property owner", f.memberA,
			cloudimage.ImageCreate{Properties: map[string]string{"owner": "x"}}, cloudimage.EFORBIDDEN},
		{"reserved property os_hash_value", f.memberA,
			cloudimage.ImageCreate{Properties: map[string]string{"ok": "1", "os_hash_value": "x"}},
			cloudimage.EFORBIDDEN},
		{"reserved property prefix os_glance", f.memberA,
			cloudimage.ImageCreate{Properties: map[string]string{"os_glance_import_task": "x"}},
			cloudimage.EFORBIDDEN},
		{"empty property name", f.memberA,
			cloudimage.ImageCreate{Properties: map[string]string{"": "x"}}, cloudimage.EINVALID},
		{"property value too long", f.memberA, cloudimage.ImageCreate{Properties: map[string]string{
			"k": strings.Repeat("v", cloudimage.MaxPropertyValueLength+1)}}, cloudimage.EINVALID},
		{"too many properties", f.memberA, cloudimage.ImageCreate{Properties: tooManyProps}, cloudimage.ETOOLARGE},
		{"empty tag", f.memberA, cloudimage.ImageCreate{Tags: []string{"a", ""}}, cloudimage.EINVALID},
		{"tag too long", f.memberA,
			cloudimage.ImageCreate{Tags: []string{strings.Repeat("t", cloudimage.MaxTagLength+1)}},
			cloudimage.EINVALID},
		{"too many tags", f.memberA, cloudimage.ImageCreate{Tags: tooManyTags}, cloudimage.ETOOLARGE},
		{"reader", f.readerA, cloudimage.ImageCreate{}, cloudimage.EFORBIDDEN},
		{"public by member", f.memberA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic},
			cloudimage.EFORBIDDEN},
		{"public by reader", f.readerA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic},
			cloudimage.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every case names its ID, so that it can check that a
			// refused create stored nothing, and has the os_type the nhn
			// profile requires, so that it is refused for its own reason.
			tt.in.ID = uuid.NewString()
			tt.in.Properties = withProps(tt.in.Properties, "os_type", "linux")
			_, err := f.svc.Create(f.ctx, tt.caller, tt.in)
			wantCode(t, err, tt.want)
			_, err = f.db.Image(f.ctx, tt.in.ID)
			wantCode(t, err, cloudimage.ENOTFOUND)
		})
	}
}

func TestCreateBadID(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := uuid.New()
	for _, bad := range []string{
		"not-a-uuid",
		"12345",
		strings.ReplaceAll(id.String(), "-", ""),
		"{" + id.String() + "}",
		id.URN(),
		id.String()[:35] + "g",
		id.String() + " ",
	} {
		_, err := f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{ID: bad, Properties: linux()})
		if got := cloudimage.ErrorCode(err); got != cloudimage.EINVALID {
			t.Errorf("Create with ID %q: got code %q (err %v), want %q", bad, got, err, cloudimage.EINVALID)
		}
	}
	if _, err := f.db.Image(f.ctx, id.String()); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("an image with ID %s exists after only malformed forms of it were refused", id)
	}
}

func TestCreateAtLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tags := make([]string, cloudimage.MaxTags)
	for i := range tags {
		tags[i] = fmt.Sprintf("%03d", i)
	}
	in := cloudimage.ImageCreate{
		Name:       strings.Repeat("n", cloudimage.MaxNameLength),
		Tags:       tags,
		Properties: map[string]string{strings.Repeat("k", cloudimage.MaxPropertyKeyLength): "v", "os_type": "linux"},
	}
	img, err := f.svc.Create(f.ctx, f.memberA, in)
	if err != nil {
		t.Fatalf("Create at the limits: %v", err)
	}
	got, err := f.svc.Get(f.ctx, f.memberA, img.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(got.Name) != cloudimage.MaxNameLength || !slices.Equal(got.Tags, tags) {
		t.Errorf("stored name of %d bytes and %d tags, want %d and %d",
			len(got.Name), len(got.Tags), cloudimage.MaxNameLength, len(tags))
	}
}

func TestCreatePublic(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img, err := f.svc.Create(f.ctx, f.adminA,
		cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic, Properties: linux()})
	if err != nil {
		t.Fatalf("Create public as admin: %v", err)
	}
	if img.Visibility != cloudimage.VisibilityPublic {
		t.Errorf("Visibility = %q, want public", img.Visibility)
	}
	if _, err := f.svc.Get(f.ctx, f.memberB, img.ID); err != nil {
		t.Errorf("another project's Get of a public image: %v", err)
	}
}

func TestCreateDuplicateID(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := uuid.NewString()
	f.create(t, f.memberA, cloudimage.ImageCreate{ID: id, Name: "first"})

	for _, c := range []*cloudimage.Caller{f.memberA, f.memberB} {
		_, err := f.svc.Create(f.ctx, c, cloudimage.ImageCreate{ID: id, Name: "second", Properties: linux()})
		wantCode(t, err, cloudimage.ECONFLICT)
	}
	img := f.stored(t, id)
	if img.Name != "first" || img.Owner != f.memberA.ProjectID {
		t.Errorf("after refused duplicates: name %q owner %q, want %q %q",
			img.Name, img.Owner, "first", f.memberA.ProjectID)
	}

	// A deleted image keeps its ID taken.
	if err := f.svc.Delete(f.ctx, f.memberA, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{ID: id, Properties: linux()})
	wantCode(t, err, cloudimage.ECONFLICT)
}

func TestGet(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	vis := func(v cloudimage.Visibility) cloudimage.ImageCreate {
		return cloudimage.ImageCreate{Visibility: v}
	}
	private := f.create(t, f.adminA, vis(cloudimage.VisibilityPrivate))
	shared := f.create(t, f.adminA, vis(cloudimage.VisibilityShared))
	public := f.create(t, f.adminA, vis(cloudimage.VisibilityPublic))
	community := f.create(t, f.adminA, vis(cloudimage.VisibilityCommunity))
	deleted := f.create(t, f.adminA, vis(cloudimage.VisibilityShared))
	if err := f.svc.Delete(f.ctx, f.adminA, deleted.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	deletedPublic := f.create(t, f.adminA, vis(cloudimage.VisibilityPublic))
	if err := f.svc.Delete(f.ctx, f.adminA, deletedPublic.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}

	tests := []struct {
		name   string
		caller *cloudimage.Caller
		id     string
		want   string // "" for found
	}{
		{"own private", f.memberA, private.ID, ""},
		{"own private by reader", f.readerA, private.ID, ""},
		{"own shared", f.memberA, shared.ID, ""},
		{"own public", f.memberA, public.ID, ""},
		{"other's private", f.memberB, private.ID, cloudimage.ENOTFOUND},
		{"other's private by admin", f.adminB, private.ID, cloudimage.ENOTFOUND},
		{"other's shared", f.memberB, shared.ID, cloudimage.ENOTFOUND},
		{"other's public", f.memberB, public.ID, ""},
		{"other's community", f.memberB, community.ID, ""},
		{"own deleted", f.adminA, deleted.ID, cloudimage.ENOTFOUND},
		{"other's deleted public", f.memberB, deletedPublic.ID, cloudimage.ENOTFOUND},
		{"unknown", f.memberA, uuid.NewString(), cloudimage.ENOTFOUND},
		{"malformed", f.memberA, "../../etc/passwd", cloudimage.ENOTFOUND},
		{"empty", f.memberA, "", cloudimage.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := f.svc.Get(f.ctx, tt.caller, tt.id)
			wantCode(t, err, tt.want)
			if tt.want == "" && img.ID != tt.id {
				t.Errorf("Get(%s) returned image %s", tt.id, img.ID)
			}
			if tt.want != "" && img != nil {
				t.Errorf("Get returned image %s along with error %v", img.ID, err)
			}
		})
	}
}

func TestUpload(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: "raw", ContainerFormat: "bare",
		Properties: downloadable()})
	data := bytes.Repeat([]byte("cloudimage!"), 100_000) // about 1 MB, several reads

	got := f.upload(t, f.memberA, img.ID, data)

	wantStatus(t, got, cloudimage.StatusActive)
	md5sum, shasum := md5.Sum(data), sha512.Sum512(data)
	if got.Size == nil || *got.Size != int64(len(data)) {
		t.Errorf("Size = %v, want %d", got.Size, len(data))
	}
	if got.VirtualSize == nil || *got.VirtualSize != int64(len(data)) {
		t.Errorf("VirtualSize = %v, want %d for raw", got.VirtualSize, len(data))
	}
	if want := hex.EncodeToString(md5sum[:]); got.Checksum != want {
		t.Errorf("Checksum = %q, want %q", got.Checksum, want)
	}
	if got.HashAlgo != "sha512" {
		t.Errorf("HashAlgo = %q, want sha512", got.HashAlgo)
	}
	if want := hex.EncodeToString(shasum[:]); got.HashValue != want {
		t.Errorf("HashValue = %q, want %q", got.HashValue, want)
	}
	if !got.UpdatedAt.After(img.UpdatedAt) && !got.UpdatedAt.Equal(img.UpdatedAt) {
		t.Errorf("UpdatedAt went back: %v before %v", got.UpdatedAt, img.UpdatedAt)
	}
	sameImage(t, f.stored(t, img.ID), got)

	if b := f.blob(t, img.ID); !bytes.Equal(b, data) {
		t.Errorf("blob holds %d bytes that differ from the %d uploaded", len(b), len(data))
	}
	f.stagingEmpty(t)

	dimg, rc, err := f.svc.Download(f.ctx, f.memberA, img.ID)
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(b, data) || dimg.ID != img.ID {
		t.Errorf("Download gave %d bytes (err %v), want the %d uploaded", len(b), err, len(data))
	}
}

func TestUploadEmpty(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	got := f.upload(t, f.memberA, img.ID, nil)
	wantStatus(t, got, cloudimage.StatusActive)
	sum := sha512.Sum512(nil)
	if got.Size == nil || *got.Size != 0 || got.HashValue != hex.EncodeToString(sum[:]) {
		t.Errorf("Size %v, HashValue %q: want 0 and the sha512 of nothing", got.Size, got.HashValue)
	}
	if b := f.blob(t, img.ID); len(b) != 0 {
		t.Errorf("blob holds %d bytes, want 0", len(b))
	}
}

func TestUploadVirtualSize(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	// Data not in its disk_format is refused unless that check is off.
	unchecked := newFixture(t, nil, cloudimage.WithRequireFormatMatch(false))
	tests := []struct {
		name       string
		f          *fixture
		diskFormat string
		data       []byte
		want       *int64
	}{
		{"raw is its size", f, "raw", make([]byte, 4096), ptr(4096)},
		{"iso that is not iso data", unchecked, "iso", make([]byte, 4096), nil},
		{"qcow2 that is not qcow2 data", unchecked, "qcow2", make([]byte, 4096), nil},
		{"qcow2 header too short", f, "qcow2", []byte("QFI\xfb\x00\x00\x00\x03"), nil},
		{"vmdk that is not vmdk data", unchecked, "vmdk", make([]byte, 4096), nil},
		{"synthetic qcow2 header", f, "qcow2", qcow2Header(5 << 30), ptr(5 << 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: tt.diskFormat})
			got := f.upload(t, f.memberA, img.ID, tt.data)
			if !equalPtr(got.VirtualSize, tt.want) {
				t.Errorf("VirtualSize = %s, want %s", fmtPtr(got.VirtualSize), fmtPtr(tt.want))
			}
			if !equalPtr(f.stored(t, img.ID).VirtualSize, tt.want) {
				t.Errorf("stored VirtualSize differs from %s", fmtPtr(tt.want))
			}
		})
	}
}

// qcow2Header returns the first 512 bytes of a qcow2 image of the given
// virtual size: magic, version 3, and the size at byte 24.
func qcow2Header(size uint64) []byte {
	b := make([]byte, 512)
	copy(b, "QFI\xfb\x00\x00\x00\x03")
	for i := range 8 {
		b[24+i] = byte(size >> (56 - 8*i))
	}
	return b
}

func ptr(v int64) *int64 { return &v }

func equalPtr(a, b *int64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func fmtPtr(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func TestUploadQcow2FromQemuImg(t *testing.T) {
	t.Parallel()
	path := qemuImage(t, "qcow2", "64M")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: "qcow2"})
	got := f.upload(t, f.memberA, img.ID, data)
	if want := int64(64 << 20); got.VirtualSize == nil || *got.VirtualSize != want {
		t.Errorf("VirtualSize = %s, want %d", fmtPtr(got.VirtualSize), want)
	}
	if got.Size == nil || *got.Size != int64(len(data)) {
		t.Errorf("Size = %s, want the file's %d", fmtPtr(got.Size), len(data))
	}
}

func TestUploadToActive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	first := f.upload(t, f.memberA, img.ID, []byte("first data"))

	_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, strings.NewReader("second, longer data"))
	wantCode(t, err, cloudimage.ECONFLICT)

	after := f.stored(t, img.ID)
	wantStatus(t, after, cloudimage.StatusActive)
	if after.Checksum != first.Checksum || *after.Size != *first.Size {
		t.Errorf("checksum %s size %d after a refused upload, want %s %d",
			after.Checksum, *after.Size, first.Checksum, *first.Size)
	}
	if b := f.blob(t, img.ID); string(b) != "first data" {
		t.Errorf("blob = %q after a refused upload, want %q", b, "first data")
	}
	f.stagingEmpty(t)
}

func TestUploadRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	shared := f.create(t, f.adminA, cloudimage.ImageCreate{})
	public := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic})
	noDisk, err := f.svc.Create(f.ctx, f.memberA,
		cloudimage.ImageCreate{ContainerFormat: "bare", Properties: linux()})
	if err != nil {
		t.Fatal(err)
	}
	noContainer, err := f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{DiskFormat: "raw", Properties: linux()})
	if err != nil {
		t.Fatal(err)
	}
	deleted := f.create(t, f.memberA, cloudimage.ImageCreate{})
	if err := f.svc.Delete(f.ctx, f.memberA, deleted.ID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		caller *cloudimage.Caller
		id     string
		want   string
		status cloudimage.Status // what the image must still be
	}{
		{"another project, shared", f.memberB, shared.ID, cloudimage.ENOTFOUND, cloudimage.StatusQueued},
		{"another project's admin, shared", f.adminB, shared.ID, cloudimage.ENOTFOUND, cloudimage.StatusQueued},
		{"another project, public", f.memberB, public.ID, cloudimage.EFORBIDDEN, cloudimage.StatusQueued},
		{"reader", f.readerA, shared.ID, cloudimage.EFORBIDDEN, cloudimage.StatusQueued},
		{"no disk_format", f.memberA, noDisk.ID, cloudimage.EINVALID, cloudimage.StatusQueued},
		{"no container_format", f.memberA, noContainer.ID, cloudimage.EINVALID, cloudimage.StatusQueued},
		{"deleted", f.memberA, deleted.ID, cloudimage.ENOTFOUND, cloudimage.StatusDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReader{r: strings.NewReader("data")}
			_, err := f.svc.Upload(f.ctx, tt.caller, tt.id, r)
			wantCode(t, err, tt.want)
			wantStatus(t, f.stored(t, tt.id), tt.status)
			f.noBlob(t, tt.id)
			if r.n != 0 {
				t.Errorf("a refused upload read %d bytes of its data, want 0", r.n)
			}
		})
	}
	_, err = f.svc.Upload(f.ctx, f.memberA, uuid.NewString(), strings.NewReader("x"))
	wantCode(t, err, cloudimage.ENOTFOUND)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// failingReader yields the first n bytes of data, then err.
type failingReader struct {
	data []byte
	n    int
	err  error
	off  int
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, r.err
	}
	k := copy(p, r.data[r.off:r.n])
	r.off += k
	return k, nil
}

func TestUploadReaderFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	data := bytes.Repeat([]byte{0xab, 0xcd}, 300_000)
	r := &failingReader{data: data, n: len(data) / 2, err: errors.New("connection reset by peer")}

	_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, r)
	if err == nil {
		t.Fatal("Upload from a failing reader: got nil error")
	}
	wantCode(t, err, cloudimage.EINVALID)
	if r.off != r.n {
		t.Errorf("upload stopped after %d bytes, want it to have read the %d offered", r.off, r.n)
	}

	after := f.stored(t, img.ID)
	wantStatus(t, after, cloudimage.StatusQueued)
	if after.Size != nil || after.Checksum != "" || after.HashValue != "" {
		t.Errorf("failed upload left size %s checksum %q hash %q",
			fmtPtr(after.Size), after.Checksum, after.HashValue)
	}
	f.noBlob(t, img.ID)
	f.stagingEmpty(t)

	got := f.upload(t, f.memberA, img.ID, data)
	wantStatus(t, got, cloudimage.StatusActive)
	if b := f.blob(t, img.ID); !bytes.Equal(b, data) {
		t.Errorf("retried upload stored %d bytes that differ from the %d sent", len(b), len(data))
	}
	f.stagingEmpty(t)
}

func TestUploadContextCanceled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	ctx, cancel := context.WithCancel(f.ctx)
	r := &cancelingReader{data: make([]byte, 1<<20), cancel: cancel}

	if _, err := f.svc.Upload(ctx, f.memberA, img.ID, r); err == nil {
		t.Fatal("Upload whose context was canceled: got nil error")
	}
	// The image must be queued again although the request's context is gone.
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
	f.noBlob(t, img.ID)
	f.stagingEmpty(t)
}

// cancelingReader cancels its context after the first read.
type cancelingReader struct {
	data   []byte
	cancel context.CancelFunc
	off    int
}

func (r *cancelingReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 4096)], r.data[r.off:])
	r.off += n
	r.cancel()
	return n, nil
}

// gateReader signals started on its first read and then blocks until
// release is closed, holding an upload in the saving status.
type gateReader struct {
	data    []byte
	started chan struct{}
	release chan struct{}
	once    sync.Once
	off     int
}

func (r *gateReader) Read(p []byte) (int, error) {
	r.once.Do(func() { close(r.started) })
	<-r.release
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

func TestUploadConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	first := &gateReader{
		data:    []byte("the first upload"),
		started: make(chan struct{}),
		release: make(chan struct{}),
	}
	type result struct {
		img *cloudimage.Image
		err error
	}
	done := make(chan result, 1)
	go func() {
		img, err := f.svc.Upload(f.ctx, f.memberA, img.ID, first)
		done <- result{img, err}
	}()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(first.release) }) }
	t.Cleanup(func() {
		// Let a first upload that a failed check left blocked finish
		// before the stores close.
		release()
		done <- <-done
	})
	<-first.started
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusSaving)

	// A second upload while the first streams is refused and must not
	// disturb the first: no requeue, no data.
	second := &countingReader{r: strings.NewReader("the second upload")}
	_, err := f.svc.Upload(f.ctx, f.adminA, img.ID, second)
	wantCode(t, err, cloudimage.ECONFLICT)
	if second.n != 0 {
		t.Errorf("the refused upload read %d bytes, want 0", second.n)
	}
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusSaving)

	release()
	r := <-done
	done <- r
	if r.err != nil {
		t.Fatalf("first upload: %v", r.err)
	}
	wantStatus(t, r.img, cloudimage.StatusActive)
	if b := f.blob(t, img.ID); string(b) != "the first upload" {
		t.Errorf("blob = %q, want the first upload's data", b)
	}
}

// brokenPut is a blob store whose Put reads some of the data and fails.
type brokenPut struct {
	cloudimage.BlobStore
}

func (b brokenPut) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	n, _ := io.CopyN(io.Discard, r, 1000)
	return n, errors.New("disk on fire")
}

func TestUploadStoreFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(b cloudimage.BlobStore) cloudimage.BlobStore { return brokenPut{b} })
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})

	_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, bytes.NewReader(make([]byte, 10_000)))
	wantCode(t, err, cloudimage.EINTERNAL)
	if msg := cloudimage.ErrorMessage(err); strings.Contains(msg, "fire") {
		t.Errorf("ErrorMessage = %q: an internal error's detail leaks", msg)
	}
	after := f.stored(t, img.ID)
	wantStatus(t, after, cloudimage.StatusQueued)
	if after.Size != nil || after.Checksum != "" {
		t.Errorf("failed upload left size %s checksum %q", fmtPtr(after.Size), after.Checksum)
	}
	f.noBlob(t, img.ID)
}

// racingDelete is a blob store whose Put runs hook just before or just
// after the data lands, the way a concurrent request would.
type racingDelete struct {
	cloudimage.BlobStore
	before bool
	hook   func()
}

func (r *racingDelete) Put(ctx context.Context, key string, rd io.Reader) (int64, error) {
	if r.before {
		r.hook()
	}
	n, err := r.BlobStore.Put(ctx, key, rd)
	if !r.before {
		r.hook()
	}
	return n, err
}

func TestUploadDeletedWhileStreaming(t *testing.T) {
	t.Parallel()
	for _, before := range []bool{true, false} {
		t.Run(fmt.Sprintf("deleted before data lands=%v", before), func(t *testing.T) {
			race := &racingDelete{before: before}
			f := newFixture(t, func(b cloudimage.BlobStore) cloudimage.BlobStore {
				race.BlobStore = b
				return race
			})
			img := f.create(t, f.memberA, cloudimage.ImageCreate{})
			var delErr error
			race.hook = func() { delErr = f.svc.Delete(f.ctx, f.memberA, img.ID) }

			got, err := f.svc.Upload(f.ctx, f.memberA, img.ID, strings.NewReader("some data"))
			if delErr != nil {
				t.Fatalf("Delete during the upload: %v", delErr)
			}
			if err == nil {
				t.Fatalf("Upload of an image deleted meanwhile: got image in status %s, want an error", got.Status)
			}
			f.noBlob(t, img.ID)
			f.stagingEmpty(t)
			after := f.stored(t, img.ID)
			wantStatus(t, after, cloudimage.StatusDeleted)
			if after.Size != nil || after.Checksum != "" {
				t.Errorf("deleted image got size %s checksum %q", fmtPtr(after.Size), after.Checksum)
			}
			_, err = f.svc.Get(f.ctx, f.memberA, img.ID)
			wantCode(t, err, cloudimage.ENOTFOUND)
		})
	}
}

func TestDownload(t *testing.T) {
	t.Parallel()
	for _, p := range cloudimage.Profiles {
		t.Run(p.Name, func(t *testing.T) {
			testDownload(t, newFixture(t, nil, cloudimage.WithProfile(p)))
		})
	}
}

// testDownload checks the rules of Download that hold under every
// profile, on images whose data the nhn gate lets out.
func testDownload(t *testing.T, f *fixture) {
	queued := f.create(t, f.memberA, cloudimage.ImageCreate{Properties: downloadable()})
	img, rc, err := f.svc.Download(f.ctx, f.memberA, queued.ID)
	if err != nil || rc != nil || img == nil {
		t.Errorf("Download of a queued image: image %v, reader %v, err %v; want the image, no reader, no error",
			img, rc, err)
	}

	active := f.create(t, f.adminA, cloudimage.ImageCreate{Properties: downloadable()})
	f.upload(t, f.adminA, active.ID, []byte("bits"))
	if got := f.download(t, f.memberA, active.ID); string(got) != "bits" {
		t.Errorf("member's Download of an active image gave %q, want %q", got, "bits")
	}
	if _, err := f.db.UpdateImage(f.ctx, active.ID, func(img *cloudimage.Image) error {
		return img.SetStatus(cloudimage.StatusDeactivated, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.Download(f.ctx, f.memberA, active.ID)
	wantCode(t, err, cloudimage.EFORBIDDEN)
	if got := f.download(t, f.adminA, active.ID); string(got) != "bits" {
		t.Errorf("admin's Download of a deactivated image gave %q, want %q", got, "bits")
	}
	_, _, err = f.svc.Download(f.ctx, f.memberB, active.ID)
	wantCode(t, err, cloudimage.ENOTFOUND)
}

// download downloads an image's data as c and fails the test on error or
// when there is no data.
func (f *fixture) download(t *testing.T, c *cloudimage.Caller, id string) []byte {
	t.Helper()
	_, rc, err := f.svc.Download(f.ctx, c, id)
	if err != nil {
		t.Fatalf("Download of %s: %v", id, err)
	}
	if rc == nil {
		t.Fatalf("Download of %s: no data", id)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read data of %s: %v", id, err)
	}
	return b
}

func TestDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var (
		shared    = cloudimage.ImageCreate{}
		private   = cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPrivate}
		public    = cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic}
		protected = cloudimage.ImageCreate{Protected: true}
	)
	tests := []struct {
		name    string
		owner   *cloudimage.Caller
		in      cloudimage.ImageCreate
		upload  bool
		deleter *cloudimage.Caller
		want    string
	}{
		{"own image", f.memberA, shared, true, f.memberA, ""},
		{"own private by admin", f.memberA, private, true, f.adminA, ""},
		{"queued image", f.memberA, shared, false, f.memberA, ""},
		{"protected", f.memberA, protected, true, f.memberA, cloudimage.EFORBIDDEN},
		{"protected by admin", f.adminA, protected, true, f.adminA, cloudimage.EFORBIDDEN},
		{"another project's public", f.adminA, public, true, f.memberB, cloudimage.EFORBIDDEN},
		{"another project's public by its admin", f.adminA, public, true, f.adminB, cloudimage.EFORBIDDEN},
		{"another project's private", f.memberA, private, true, f.adminB, cloudimage.ENOTFOUND},
		{"another project's shared", f.memberA, shared, true, f.memberB, cloudimage.ENOTFOUND},
		{"own public by member", f.adminA, public, true, f.memberA, cloudimage.EFORBIDDEN},
		{"own public by admin", f.adminA, public, true, f.adminA, ""},
		{"reader", f.memberA, shared, true, f.readerA, cloudimage.EFORBIDDEN},
		{"reader, queued image", f.memberA, shared, false, f.readerA, cloudimage.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := f.create(t, tt.owner, tt.in)
			data := []byte("data of " + tt.name)
			if tt.upload {
				img = f.upload(t, tt.owner, img.ID, data)
			}
			deleter := tt.deleter

			err := f.svc.Delete(f.ctx, deleter, img.ID)
			wantCode(t, err, tt.want)

			after := f.stored(t, img.ID)
			if tt.want != "" {
				wantStatus(t, after, img.Status)
				if after.Deleted() {
					t.Errorf("refused delete set DeletedAt")
				}
				if tt.upload && !bytes.Equal(f.blob(t, img.ID), data) {
					t.Errorf("refused delete changed the data")
				}
				return
			}
			wantStatus(t, after, cloudimage.StatusDeleted)
			if after.DeletedAt == nil || after.DeletedAt.Before(after.CreatedAt) {
				t.Errorf("DeletedAt = %v, want a time after creation", after.DeletedAt)
			}
			f.noBlob(t, img.ID)
			_, err = f.svc.Get(f.ctx, tt.owner, img.ID)
			wantCode(t, err, cloudimage.ENOTFOUND)
			wantCode(t, f.svc.Delete(f.ctx, deleter, img.ID), cloudimage.ENOTFOUND)
		})
	}
	wantCode(t, f.svc.Delete(f.ctx, f.adminA, uuid.NewString()), cloudimage.ENOTFOUND)
}

// collect runs a list and returns its images, failing on any error.
func collect(t *testing.T, seq iter.Seq2[*cloudimage.Image, error], err error) []*cloudimage.Image {
	t.Helper()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []*cloudimage.Image
	for img, err := range seq {
		if err != nil {
			t.Fatalf("List, after %d images: %v", len(out), err)
		}
		out = append(out, img)
	}
	return out
}

func ids(imgs []*cloudimage.Image) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = img.ID
	}
	return out
}

// wantIDs fails the test unless got lists exactly want, in order.
func wantIDs(t *testing.T, got []*cloudimage.Image, want []string) {
	t.Helper()
	g := ids(got)
	if slices.Equal(g, want) {
		return
	}
	for i := range min(len(g), len(want)) {
		if g[i] != want[i] {
			t.Fatalf("got %d images, want %d; first difference at %d: got %s, want %s",
				len(g), len(want), i, g[i], want[i])
		}
	}
	t.Fatalf("got %d images, want %d (one is a prefix of the other)", len(g), len(want))
}

// seed inserts n images in one transaction through the bulk path, with
// CreatedAt repeating every groups images so that many of them tie. The
// images alternate between the owners given. It returns them in the
// default order: created_at descending, then ID descending.
func seed(t *testing.T, f *fixture, n, groups int, owners []string,
	vis cloudimage.Visibility) []*cloudimage.Image {
	t.Helper()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	imgs := make([]*cloudimage.Image, n)
	for i := range imgs {
		at := base.Add(time.Duration(i%groups) * time.Second)
		imgs[i] = &cloudimage.Image{
			ID: uuid.NewString(), Name: fmt.Sprint("seed-", i), Status: cloudimage.StatusActive,
			Visibility: vis, DiskFormat: "raw", ContainerFormat: "bare",
			Owner: owners[i%len(owners)], CreatedAt: at, UpdatedAt: at,
		}
	}
	if err := f.db.InsertImages(f.ctx, imgs); err != nil {
		t.Fatalf("InsertImages: %v", err)
	}
	return sortDefault(imgs)
}

func sortDefault(imgs []*cloudimage.Image) []*cloudimage.Image {
	imgs = slices.Clone(imgs)
	slices.SortFunc(imgs, func(a, b *cloudimage.Image) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return imgs
}

func TestListVisibility(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	mk := func(c *cloudimage.Caller, v cloudimage.Visibility) *cloudimage.Image {
		return f.create(t, c, cloudimage.ImageCreate{Visibility: v})
	}
	ownShared := mk(f.adminA, cloudimage.VisibilityShared)
	ownPrivate := mk(f.adminA, cloudimage.VisibilityPrivate)
	ownPublic := mk(f.adminA, cloudimage.VisibilityPublic)
	ownCommunity := mk(f.adminA, cloudimage.VisibilityCommunity)
	ownDeleted := mk(f.memberA, cloudimage.VisibilityShared)
	otherPublic := mk(f.adminB, cloudimage.VisibilityPublic)
	mk(f.adminB, cloudimage.VisibilityPrivate)
	mk(f.adminB, cloudimage.VisibilityShared)
	mk(f.adminB, cloudimage.VisibilityCommunity)
	otherDeletedPublic := mk(f.adminB, cloudimage.VisibilityPublic)
	for _, d := range []struct {
		c  *cloudimage.Caller
		id string
	}{{f.memberA, ownDeleted.ID}, {f.adminB, otherDeletedPublic.ID}} {
		if err := f.svc.Delete(f.ctx, d.c, d.id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}

	wantA := ids(sortDefault([]*cloudimage.Image{ownShared, ownPrivate, ownPublic, ownCommunity, otherPublic}))
	for _, c := range []*cloudimage.Caller{f.adminA, f.memberA, f.readerA} {
		seq, err := f.svc.List(f.ctx, c, cloudimage.ListOptions{Limit: -1})
		wantIDs(t, collect(t, seq, err), wantA)
	}
	seq, err := f.svc.List(f.ctx, f.memberB, cloudimage.ListOptions{Limit: -1})
	got := collect(t, seq, err)
	for _, img := range got {
		if img.Owner != f.memberB.ProjectID && img.Visibility != cloudimage.VisibilityPublic {
			t.Errorf("project B sees %s image %s of project A", img.Visibility, img.ID)
		}
		if img.Deleted() {
			t.Errorf("list holds deleted image %s", img.ID)
		}
	}
	if len(got) != 5 { // B's own four live images and A's public one
		t.Errorf("project B lists %d images, want 5", len(got))
	}
}

func TestListOrderAndPaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	owners := []string{f.memberA.ProjectID, f.memberB.ProjectID}
	// Public images of both projects, five to each CreatedAt.
	all := ids(seed(t, f, 40, 8, owners, cloudimage.VisibilityPublic))

	list := func(opts cloudimage.ListOptions) []*cloudimage.Image {
		t.Helper()
		seq, err := f.svc.List(f.ctx, f.memberA, opts)
		return collect(t, seq, err)
	}
	tests := []struct {
		name string
		opts cloudimage.ListOptions
		want []string
	}{
		{"all", cloudimage.ListOptions{Limit: -1}, all},
		{"limit", cloudimage.ListOptions{Limit: 7}, all[:7]},
		{"limit 1", cloudimage.ListOptions{Limit: 1}, all[:1]},
		{"limit beyond the end", cloudimage.ListOptions{Limit: 1000}, all},
		{"limit exactly all", cloudimage.ListOptions{Limit: len(all)}, all},
		{"limit 0", cloudimage.ListOptions{Limit: 0}, nil},
		{"limit 0 with marker", cloudimage.ListOptions{Limit: 0, Marker: all[3]}, nil},
		{"marker is exclusive", cloudimage.ListOptions{Limit: -1, Marker: all[0]}, all[1:]},
		{"marker inside a tie", cloudimage.ListOptions{Limit: 3, Marker: all[12]}, all[13:16]},
		{"marker at the end", cloudimage.ListOptions{Limit: -1, Marker: all[len(all)-1]}, nil},
		{"marker and limit", cloudimage.ListOptions{Limit: 10, Marker: all[25]}, all[26:36]},
		{"marker and limit past the end", cloudimage.ListOptions{Limit: 10, Marker: all[35]}, all[36:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantIDs(t, list(tt.opts), tt.want)
		})
	}

	// Ties must really be there, or the tie-breaker is not tested.
	imgs := list(cloudimage.ListOptions{Limit: -1})
	ties := 0
	for i := 1; i < len(imgs); i++ {
		if imgs[i].CreatedAt.Equal(imgs[i-1].CreatedAt) {
			ties++
			if imgs[i].ID >= imgs[i-1].ID {
				t.Errorf("tie at %v: %s before %s, want descending IDs", imgs[i].CreatedAt, imgs[i-1].ID, imgs[i].ID)
			}
		} else if imgs[i].CreatedAt.After(imgs[i-1].CreatedAt) {
			t.Errorf("image %d is newer than image %d", i, i-1)
		}
	}
	if ties < 30 {
		t.Errorf("only %d ties in the list, want at least 30", ties)
	}
}

func TestListWalk(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	owners := []string{f.memberA.ProjectID, f.memberB.ProjectID, f.memberA.ProjectID}
	all := ids(seed(t, f, 45, 4, owners, cloudimage.VisibilityPublic))
	for _, limit := range []int{1, 2, 7, 45, 50} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var walked []string
			marker := ""
			for pages := 0; ; pages++ {
				if pages > len(all)+1 {
					t.Fatalf("walk does not end: %d pages", pages)
				}
				seq, err := f.svc.List(f.ctx, f.memberA, cloudimage.ListOptions{Limit: limit, Marker: marker})
				page := collect(t, seq, err)
				if len(page) > limit {
					t.Fatalf("page of %d images, want at most %d", len(page), limit)
				}
				if len(page) == 0 {
					break
				}
				walked = append(walked, ids(page)...)
				marker = page[len(page)-1].ID
			}
			if !slices.Equal(walked, all) {
				t.Errorf("walk visited %d images, want each of %d once in order", len(walked), len(all))
			}
		})
	}
}

func TestListStreamsEverything(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	owners := []string{f.memberA.ProjectID, f.memberB.ProjectID}
	// More than two chunks of 500, with ties that straddle chunk borders.
	pub := seed(t, f, 1100, 7, owners, cloudimage.VisibilityPublic)
	priv := seed(t, f, 150, 3, []string{f.memberB.ProjectID}, cloudimage.VisibilityPrivate)
	want := ids(pub)

	seq, err := f.svc.List(f.ctx, f.memberA, cloudimage.ListOptions{Limit: -1})
	got := collect(t, seq, err)
	wantIDs(t, got, want)
	seen := map[string]bool{}
	for _, id := range ids(got) {
		if seen[id] {
			t.Fatalf("image %s listed twice", id)
		}
		seen[id] = true
	}

	// Limits around the chunk size cut exactly there.
	for _, limit := range []int{499, 500, 501, 1000, 1001, 1099} {
		seq, err := f.svc.List(f.ctx, f.memberA, cloudimage.ListOptions{Limit: limit})
		if got := collect(t, seq, err); !slices.Equal(ids(got), want[:limit]) {
			t.Errorf("limit %d: got %d images, want the first %d in order", limit, len(got), limit)
		}
	}
	// From a marker deep in the list, the rest follows.
	seq, err = f.svc.List(f.ctx, f.memberA, cloudimage.ListOptions{Limit: -1, Marker: want[321]})
	wantIDs(t, collect(t, seq, err), want[322:])

	// B sees its private images too, merged into the same order.
	seq, err = f.svc.List(f.ctx, f.memberB, cloudimage.ListOptions{Limit: -1})
	wantIDs(t, collect(t, seq, err), ids(sortDefault(append(slices.Clone(pub), priv...))))
}

func TestListStopEarly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	all := ids(seed(t, f, 1200, 1200, []string{f.memberA.ProjectID}, cloudimage.VisibilityShared))
	seq, err := f.svc.List(f.ctx, f.memberA, cloudimage.ListOptions{Limit: -1})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for img, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, img.ID)
		if len(got) == 600 { // stop in the second chunk
			break
		}
	}
	if !slices.Equal(got, all[:600]) {
		t.Errorf("stopping early gave %d images, want the first 600 in order", len(got))
	}
}

func TestListDeletedMarker(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	owners := []string{f.memberA.ProjectID, f.memberB.ProjectID}
	all := seed(t, f, 20, 5, owners, cloudimage.VisibilityPublic)
	// Publicly visible seeds may only be deleted by their project's admin.
	callerOf := map[string]*cloudimage.Caller{f.memberA.ProjectID: f.adminA, f.memberB.ProjectID: f.adminB}

	for _, pos := range []int{4, 9} { // one of A's images, one of B's
		marker := all[pos]
		if err := f.svc.Delete(f.ctx, callerOf[marker.Owner], marker.ID); err != nil {
			t.Fatalf("Delete marker %d: %v", pos, err)
		}
	}
	live := slices.DeleteFunc(slices.Clone(all), func(img *cloudimage.Image) bool {
		return img.ID == all[4].ID || img.ID == all[9].ID
	})

	for _, pos := range []int{4, 9} {
		t.Run(fmt.Sprint("marker at ", pos), func(t *testing.T) {
			seq, err := f.svc.List(f.ctx, f.memberA, cloudimage.ListOptions{Limit: -1, Marker: all[pos].ID})
			var want []string
			for _, img := range live {
				if idx := slices.Index(all, img); idx > pos {
					want = append(want, img.ID)
				}
			}
			wantIDs(t, collect(t, seq, err), want)
		})
	}
}

func TestListBadMarker(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	private := f.create(t, f.adminB, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPrivate})
	shared := f.create(t, f.adminB, cloudimage.ImageCreate{})
	deletedPrivate := f.create(t, f.adminB, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPrivate})
	if err := f.svc.Delete(f.ctx, f.adminB, deletedPrivate.ID); err != nil {
		t.Fatal(err)
	}
	for name, marker := range map[string]string{
		"another project's private":         private.ID,
		"another project's shared":          shared.ID,
		"another project's deleted private": deletedPrivate.ID,
		"unknown":                           uuid.NewString(),
		"malformed":                         "not-an-id",
	} {
		t.Run(name, func(t *testing.T) {
			for _, limit := range []int{-1, 0, 5} {
				seq, err := f.svc.List(f.ctx, f.memberA, cloudimage.ListOptions{Limit: limit, Marker: marker})
				wantCode(t, err, cloudimage.EINVALID)
				if seq != nil {
					t.Errorf("limit %d: List returned a sequence along with its error", limit)
				}
			}
		})
	}
	// The owner may use it.
	seq, err := f.svc.List(f.ctx, f.memberB, cloudimage.ListOptions{Limit: -1, Marker: private.ID})
	collect(t, seq, err)
}
