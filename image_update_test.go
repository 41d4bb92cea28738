package cloudimage_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

func strp(s string) *string { return &s }
func intp(i int) *int       { return &i }
func boolp(b bool) *bool    { return &b }
func visp(v cloudimage.Visibility) *cloudimage.Visibility {
	return &v
}

// cloneImage returns a deep copy of img.
func cloneImage(img *cloudimage.Image) *cloudimage.Image {
	c := *img
	c.Tags = slices.Clone(img.Tags)
	c.Properties = maps.Clone(img.Properties)
	return &c
}

// TestUpdateEachField changes one field at a time of a queued image and
// checks that exactly that field changed, in what Update returns and in
// the store, and that updated_at moved.
func TestUpdateEachField(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		u      cloudimage.ImageUpdate
		change func(*cloudimage.Image)
	}{
		{"name", cloudimage.ImageUpdate{Name: strp("renamed")},
			func(i *cloudimage.Image) { i.Name = "renamed" }},
		{"empty name", cloudimage.ImageUpdate{Name: strp("")},
			func(i *cloudimage.Image) { i.Name = "" }},
		{"visibility", cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityPrivate)},
			func(i *cloudimage.Image) { i.Visibility = cloudimage.VisibilityPrivate }},
		{"protected", cloudimage.ImageUpdate{Protected: boolp(true)},
			func(i *cloudimage.Image) { i.Protected = true }},
		{"os_hidden", cloudimage.ImageUpdate{Hidden: boolp(true)},
			func(i *cloudimage.Image) { i.Hidden = true }},
		{"disk_format", cloudimage.ImageUpdate{DiskFormat: strp("qcow2")},
			func(i *cloudimage.Image) { i.DiskFormat = "qcow2" }},
		{"container_format", cloudimage.ImageUpdate{ContainerFormat: strp("ova")},
			func(i *cloudimage.Image) { i.ContainerFormat = "ova" }},
		{"min_disk", cloudimage.ImageUpdate{MinDisk: intp(40)},
			func(i *cloudimage.Image) { i.MinDisk = 40 }},
		{"min_ram", cloudimage.ImageUpdate{MinRAM: intp(2048)},
			func(i *cloudimage.Image) { i.MinRAM = 2048 }},
		{"tags", cloudimage.ImageUpdate{Tags: []string{"z", "x", "z"}},
			func(i *cloudimage.Image) { i.Tags = []string{"x", "z"} }},
		{"tags cleared", cloudimage.ImageUpdate{Tags: []string{}},
			func(i *cloudimage.Image) { i.Tags = nil }},
		{"property added", cloudimage.ImageUpdate{SetProperties: map[string]string{"new": "1"}},
			func(i *cloudimage.Image) { i.Properties["new"] = "1" }},
		{"property replaced", cloudimage.ImageUpdate{SetProperties: map[string]string{"os_distro": "debian"}},
			func(i *cloudimage.Image) { i.Properties["os_distro"] = "debian" }},
		{"property removed", cloudimage.ImageUpdate{RemoveProperties: []string{"os_distro"}},
			func(i *cloudimage.Image) { delete(i.Properties, "os_distro") }},
		{"os_type changed", cloudimage.ImageUpdate{SetProperties: map[string]string{"os_type": "windows"}},
			func(i *cloudimage.Image) { i.Properties["os_type"] = "windows" }},
		{"property removed and another set", cloudimage.ImageUpdate{
			RemoveProperties: []string{"os_distro"}, SetProperties: map[string]string{"os_version": "12"}},
			func(i *cloudimage.Image) { delete(i.Properties, "os_distro"); i.Properties["os_version"] = "12" }},
		{"nothing", cloudimage.ImageUpdate{}, func(*cloudimage.Image) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := f.create(t, f.memberA, cloudimage.ImageCreate{
				Name: "original", Tags: []string{"a", "b"},
				Properties: map[string]string{"os_type": "linux", "os_distro": "ubuntu"},
			})
			time.Sleep(2 * time.Millisecond) // so that updated_at can move
			got, err := f.svc.Update(f.ctx, f.memberA, img.ID, tt.u)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if !got.UpdatedAt.After(img.UpdatedAt) {
				t.Errorf("UpdatedAt %v, want after %v", got.UpdatedAt, img.UpdatedAt)
			}
			want := cloneImage(img)
			tt.change(want)
			want.UpdatedAt = got.UpdatedAt
			sameImage(t, got, want)
			sameImage(t, f.stored(t, img.ID), want)
		})
	}
}

// TestUpdateAll changes every field in one call.
func TestUpdateAll(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{
		Name: "original", Tags: []string{"a"}, Properties: map[string]string{"os_type": "linux", "gone": "x"},
	})
	got, err := f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{
		Name: strp("new"), Visibility: visp(cloudimage.VisibilityPrivate), Protected: boolp(true),
		Hidden: boolp(true), DiskFormat: strp("vmdk"), ContainerFormat: strp("ovf"), MinDisk: intp(1),
		MinRAM: intp(2), Tags: []string{"t"}, SetProperties: map[string]string{"k": "v"},
		RemoveProperties: []string{"gone"},
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := cloneImage(img)
	want.Name, want.Visibility, want.Protected, want.Hidden = "new", cloudimage.VisibilityPrivate, true, true
	want.DiskFormat, want.ContainerFormat, want.MinDisk, want.MinRAM = "vmdk", "ovf", 1, 2
	want.Tags, want.Properties = []string{"t"}, map[string]string{"os_type": "linux", "k": "v"}
	want.UpdatedAt = got.UpdatedAt
	sameImage(t, got, want)
	sameImage(t, f.stored(t, img.ID), want)
	if g, err := f.svc.Get(f.ctx, f.memberA, img.ID); err != nil {
		t.Fatalf("Get: %v", err)
	} else {
		sameImage(t, g, want)
	}
}

// TestUpdateRefused checks each rule of Update and that a refused update
// writes nothing, also not the valid changes it came with.
func TestUpdateRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tooManyTags := make([]string, cloudimage.MaxTags+1)
	for i := range tooManyTags {
		tooManyTags[i] = fmt.Sprint("t", i)
	}
	tooManyProps := map[string]string{}
	for i := range cloudimage.MaxProperties { // with os_type, one too many
		tooManyProps[fmt.Sprint("p", i)] = "v"
	}
	rename := strp("must not be written")
	tests := []struct {
		name string
		u    cloudimage.ImageUpdate
		want string
	}{
		{"name too long", cloudimage.ImageUpdate{Name: strp(strings.Repeat("n", cloudimage.MaxNameLength+1))},
			cloudimage.EINVALID},
		{"bad visibility", cloudimage.ImageUpdate{Name: rename, Visibility: visp("everyone")}, cloudimage.EINVALID},
		{"public by member", cloudimage.ImageUpdate{Name: rename, Visibility: visp(cloudimage.VisibilityPublic)},
			cloudimage.EFORBIDDEN},
		{"community by member under nhn", cloudimage.ImageUpdate{Name: rename,
			Visibility: visp(cloudimage.VisibilityCommunity)}, cloudimage.EFORBIDDEN},
		{"bad disk_format", cloudimage.ImageUpdate{Name: rename, DiskFormat: strp("qcow3")}, cloudimage.EINVALID},
		{"bad container_format", cloudimage.ImageUpdate{Name: rename, ContainerFormat: strp("zip")},
			cloudimage.EINVALID},
		{"negative min_disk", cloudimage.ImageUpdate{Name: rename, MinDisk: intp(-1)}, cloudimage.EINVALID},
		{"negative min_ram", cloudimage.ImageUpdate{Name: rename, MinRAM: intp(-1)}, cloudimage.EINVALID},
		{"empty tag", cloudimage.ImageUpdate{Name: rename, Tags: []string{"ok", ""}}, cloudimage.EINVALID},
		{"tag too long", cloudimage.ImageUpdate{Name: rename,
			Tags: []string{strings.Repeat("t", cloudimage.MaxTagLength+1)}}, cloudimage.EINVALID},
		{"too many tags", cloudimage.ImageUpdate{Name: rename, Tags: tooManyTags}, cloudimage.ETOOLARGE},
		{"reserved tag", cloudimage.ImageUpdate{Name: rename, Tags: []string{"_AVAILABLE_"}}, cloudimage.EINVALID},
		{"reserved property", cloudimage.ImageUpdate{Name: rename,
			SetProperties: map[string]string{"status": "active"}}, cloudimage.EFORBIDDEN},
		{"empty property name", cloudimage.ImageUpdate{Name: rename,
			SetProperties: map[string]string{"": "x"}}, cloudimage.EINVALID},
		{"property value too long", cloudimage.ImageUpdate{Name: rename, SetProperties: map[string]string{
			"k": strings.Repeat("v", cloudimage.MaxPropertyValueLength+1)}}, cloudimage.EINVALID},
		{"too many properties", cloudimage.ImageUpdate{Name: rename, SetProperties: tooManyProps},
			cloudimage.ETOOLARGE},
		{"remove a missing property", cloudimage.ImageUpdate{Name: rename,
			RemoveProperties: []string{"os_distro", "missing"}}, cloudimage.ECONFLICT},
		{"remove os_type under nhn", cloudimage.ImageUpdate{Name: rename,
			RemoveProperties: []string{"os_type"}}, cloudimage.EINVALID},
		{"os_type mac under nhn", cloudimage.ImageUpdate{Name: rename,
			SetProperties: map[string]string{"os_type": "mac"}}, cloudimage.EINVALID},
		{"os_type empty under nhn", cloudimage.ImageUpdate{Name: rename,
			SetProperties: map[string]string{"os_type": ""}}, cloudimage.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := f.create(t, f.memberA, cloudimage.ImageCreate{
				Name: "original", Tags: []string{"a"},
				Properties: map[string]string{"os_type": "linux", "os_distro": "ubuntu"},
			})
			_, err := f.svc.Update(f.ctx, f.memberA, img.ID, tt.u)
			wantCode(t, err, tt.want)
			sameImage(t, f.stored(t, img.ID), img)
		})
	}
}

// TestUpdateFormatsOnlyWhileQueued checks that disk and container
// formats may change only before the image has data.
func TestUpdateFormatsOnlyWhileQueued(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	if _, err := f.svc.Update(f.ctx, f.memberA, img.ID,
		cloudimage.ImageUpdate{DiskFormat: strp("qcow2"), ContainerFormat: strp("ovf")}); err != nil {
		t.Fatalf("Update of a queued image's formats: %v", err)
	}
	active := f.upload(t, f.memberA, img.ID, qcow2Header(1<<20))
	if active.DiskFormat != "qcow2" || active.ContainerFormat != "ovf" {
		t.Fatalf("formats %s/%s, want qcow2/ovf", active.DiskFormat, active.ContainerFormat)
	}
	for _, u := range []cloudimage.ImageUpdate{
		{DiskFormat: strp("raw")},
		{ContainerFormat: strp("bare")},
		{Name: strp("renamed"), DiskFormat: strp("raw")},
	} {
		_, err := f.svc.Update(f.ctx, f.memberA, img.ID, u)
		wantCode(t, err, cloudimage.EFORBIDDEN)
		sameImage(t, f.stored(t, img.ID), active)
	}
	// Other fields still change.
	got, err := f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{Name: strp("renamed")})
	if err != nil {
		t.Fatalf("Update of an active image's name: %v", err)
	}
	if got.Name != "renamed" || got.Status != cloudimage.StatusActive || got.DiskFormat != "qcow2" {
		t.Errorf("after Update: name %q status %s disk_format %s", got.Name, got.Status, got.DiskFormat)
	}
}

// TestUpdateWho checks who may update: the owner's writers only.
func TestUpdateWho(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	shared := f.create(t, f.adminA, cloudimage.ImageCreate{})
	private := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPrivate})
	public := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic})
	community := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityCommunity})
	sharedWithB := f.create(t, f.adminA, cloudimage.ImageCreate{})
	if _, err := f.svc.AddMember(f.ctx, f.adminA, sharedWithB.ID, f.memberB.ProjectID); err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	deleted := f.create(t, f.adminA, cloudimage.ImageCreate{})
	if err := f.svc.Delete(f.ctx, f.adminA, deleted.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		caller *cloudimage.Caller
		img    *cloudimage.Image
		want   string
	}{
		{"owner's member", f.memberA, shared, ""},
		{"owner's admin", f.adminA, private, ""},
		{"owner's reader", f.readerA, shared, cloudimage.EFORBIDDEN},
		{"another project, public", f.memberB, public, cloudimage.EFORBIDDEN},
		{"another project's admin, public", f.adminB, public, cloudimage.EFORBIDDEN},
		{"another project, community", f.memberB, community, cloudimage.EFORBIDDEN},
		{"a member project", f.memberB, sharedWithB, cloudimage.EFORBIDDEN},
		{"another project, shared", f.memberB, shared, cloudimage.ENOTFOUND},
		{"another project, private", f.adminB, private, cloudimage.ENOTFOUND},
		{"deleted", f.adminA, deleted, cloudimage.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.stored(t, tt.img.ID)
			name := "renamed by " + tt.name
			got, err := f.svc.Update(f.ctx, tt.caller, tt.img.ID, cloudimage.ImageUpdate{Name: &name})
			wantCode(t, err, tt.want)
			if tt.want != "" {
				if got != nil {
					t.Errorf("refused Update returned an image")
				}
				sameImage(t, f.stored(t, tt.img.ID), before)
				return
			}
			if f.stored(t, tt.img.ID).Name != name {
				t.Errorf("name not written")
			}
		})
	}
	_, err := f.svc.Update(f.ctx, f.memberA, uuid.NewString(), cloudimage.ImageUpdate{Name: strp("x")})
	wantCode(t, err, cloudimage.ENOTFOUND)
}

// TestUpdateProfileRules checks the rules of Update that differ between
// the profiles.
func TestUpdateProfileRules(t *testing.T) {
	t.Parallel()
	fs := profileFixtures(t)
	tests := []struct {
		name    string
		profile string
		admin   bool
		u       cloudimage.ImageUpdate
		want    string
	}{
		{"nhn: private", "nhn", false, cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityPrivate)}, ""},
		{"nhn: community", "nhn", false, cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityCommunity)},
			cloudimage.EFORBIDDEN},
		{"nhn: public", "nhn", false, cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityPublic)},
			cloudimage.EFORBIDDEN},
		{"nhn: public by admin", "nhn", true, cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityPublic)}, ""},
		{"nhn: community by admin", "nhn", true,
			cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityCommunity)}, ""},
		{"openstack: private", "openstack", false,
			cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityPrivate)}, ""},
		{"openstack: community", "openstack", false,
			cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityCommunity)}, ""},
		{"openstack: public", "openstack", false,
			cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityPublic)}, cloudimage.EFORBIDDEN},
		{"openstack: public by admin", "openstack", true,
			cloudimage.ImageUpdate{Visibility: visp(cloudimage.VisibilityPublic)}, ""},

		{"nhn: remove os_type", "nhn", false, cloudimage.ImageUpdate{RemoveProperties: []string{"os_type"}},
			cloudimage.EINVALID},
		{"nhn: remove os_type by admin", "nhn", true, cloudimage.ImageUpdate{RemoveProperties: []string{"os_type"}},
			cloudimage.EINVALID},
		{"nhn: os_type mac", "nhn", false, cloudimage.ImageUpdate{SetProperties: map[string]string{"os_type": "mac"}},
			cloudimage.EINVALID},
		{"nhn: os_type windows", "nhn", false,
			cloudimage.ImageUpdate{SetProperties: map[string]string{"os_type": "windows"}}, ""},
		{"openstack: remove os_type", "openstack", false,
			cloudimage.ImageUpdate{RemoveProperties: []string{"os_type"}}, ""},
		{"openstack: os_type mac", "openstack", false,
			cloudimage.ImageUpdate{SetProperties: map[string]string{"os_type": "mac"}}, ""},

		{"nhn: _ tag", "nhn", false, cloudimage.ImageUpdate{Tags: []string{"_X_"}}, cloudimage.EINVALID},
		{"nhn: _ tag by admin", "nhn", true, cloudimage.ImageUpdate{Tags: []string{"_X_"}}, ""},
		{"openstack: _ tag", "openstack", false, cloudimage.ImageUpdate{Tags: []string{"_X_"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fs[tt.profile]
			c := f.memberA
			if tt.admin {
				c = f.adminA
			}
			img := f.create(t, c, cloudimage.ImageCreate{Properties: linux()})
			got, err := f.svc.Update(f.ctx, c, img.ID, tt.u)
			wantCode(t, err, tt.want)
			if tt.want != "" {
				sameImage(t, f.stored(t, img.ID), img)
				return
			}
			sameImage(t, f.stored(t, img.ID), got)
			if tt.u.Visibility != nil && got.Visibility != *tt.u.Visibility {
				t.Errorf("Visibility = %s, want %s", got.Visibility, *tt.u.Visibility)
			}
		})
	}
}

func TestAddTag(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Tags: []string{"m"}})
	time.Sleep(2 * time.Millisecond)
	for _, tag := range []string{"z", "a"} {
		if err := f.svc.AddTag(f.ctx, f.memberA, img.ID, tag); err != nil {
			t.Fatalf("AddTag %s: %v", tag, err)
		}
	}
	after := f.stored(t, img.ID)
	if !slices.Equal(after.Tags, []string{"a", "m", "z"}) {
		t.Errorf("tags %q, want [a m z]", after.Tags)
	}
	if !after.UpdatedAt.After(img.UpdatedAt) {
		t.Errorf("UpdatedAt did not move")
	}
	got, err := f.svc.Get(f.ctx, f.memberA, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, got, after)

	// A tag the image has is no change, and no error.
	if err := f.svc.AddTag(f.ctx, f.memberA, img.ID, "m"); err != nil {
		t.Fatalf("AddTag of a tag the image has: %v", err)
	}
	sameImage(t, f.stored(t, img.ID), after)

	for _, bad := range []string{"", strings.Repeat("t", cloudimage.MaxTagLength+1), "_RESERVED_"} {
		wantCode(t, f.svc.AddTag(f.ctx, f.memberA, img.ID, bad), cloudimage.EINVALID)
	}
	if err := f.svc.AddTag(f.ctx, f.memberA, img.ID, strings.Repeat("t", cloudimage.MaxTagLength)); err != nil {
		t.Errorf("AddTag of a tag of %d characters: %v", cloudimage.MaxTagLength, err)
	}
}

func TestAddTagMax(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tags := make([]string, cloudimage.MaxTags-1)
	for i := range tags {
		tags[i] = fmt.Sprintf("%03d", i)
	}
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Tags: tags})
	if err := f.svc.AddTag(f.ctx, f.memberA, img.ID, "last"); err != nil {
		t.Fatalf("AddTag of tag %d: %v", cloudimage.MaxTags, err)
	}
	full := f.stored(t, img.ID)
	if len(full.Tags) != cloudimage.MaxTags {
		t.Fatalf("%d tags, want %d", len(full.Tags), cloudimage.MaxTags)
	}
	wantCode(t, f.svc.AddTag(f.ctx, f.memberA, img.ID, "one-too-many"), cloudimage.ETOOLARGE)
	// One it has is still no change.
	if err := f.svc.AddTag(f.ctx, f.memberA, img.ID, "last"); err != nil {
		t.Errorf("AddTag of a tag a full image has: %v", err)
	}
	sameImage(t, f.stored(t, img.ID), full)
}

func TestRemoveTag(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Tags: []string{"a", "b", "c"}})
	if err := f.svc.RemoveTag(f.ctx, f.memberA, img.ID, "b"); err != nil {
		t.Fatalf("RemoveTag: %v", err)
	}
	after := f.stored(t, img.ID)
	if !slices.Equal(after.Tags, []string{"a", "c"}) {
		t.Errorf("tags %q, want [a c]", after.Tags)
	}
	wantCode(t, f.svc.RemoveTag(f.ctx, f.memberA, img.ID, "b"), cloudimage.ENOTFOUND)
	wantCode(t, f.svc.RemoveTag(f.ctx, f.memberA, img.ID, "never"), cloudimage.ENOTFOUND)
	sameImage(t, f.stored(t, img.ID), after)
}

// TestTagsWho checks who may add and remove tags: the owner's writers.
func TestTagsWho(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	shared := f.create(t, f.adminA, cloudimage.ImageCreate{Tags: []string{"t"}})
	public := f.create(t, f.adminA,
		cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic, Tags: []string{"t"}})
	tests := []struct {
		name   string
		caller *cloudimage.Caller
		img    *cloudimage.Image
		want   string
	}{
		{"reader", f.readerA, shared, cloudimage.EFORBIDDEN},
		{"another project, public", f.memberB, public, cloudimage.EFORBIDDEN},
		{"another project, shared", f.memberB, shared, cloudimage.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, f.svc.AddTag(f.ctx, tt.caller, tt.img.ID, "new"), tt.want)
			wantCode(t, f.svc.RemoveTag(f.ctx, tt.caller, tt.img.ID, "t"), tt.want)
			sameImage(t, f.stored(t, tt.img.ID), tt.img)
		})
	}
	wantCode(t, f.svc.AddTag(f.ctx, f.memberA, uuid.NewString(), "x"), cloudimage.ENOTFOUND)
	wantCode(t, f.svc.RemoveTag(f.ctx, f.memberA, uuid.NewString(), "x"), cloudimage.ENOTFOUND)
	if err := f.svc.Delete(f.ctx, f.adminA, shared.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.AddTag(f.ctx, f.adminA, shared.ID, "x"), cloudimage.ENOTFOUND)
	wantCode(t, f.svc.RemoveTag(f.ctx, f.adminA, shared.ID, "t"), cloudimage.ENOTFOUND)
}

func TestDeactivateReactivate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Properties: downloadable()})
	uploaded := f.upload(t, f.memberA, img.ID, []byte("bits"))

	for range 2 { // the second time is no change
		if err := f.svc.Deactivate(f.ctx, f.memberA, img.ID); err != nil {
			t.Fatalf("Deactivate: %v", err)
		}
		wantStatus(t, f.stored(t, img.ID), cloudimage.StatusDeactivated)
	}
	_, rc, err := f.svc.Download(f.ctx, f.memberA, img.ID)
	wantCode(t, err, cloudimage.EFORBIDDEN)
	if rc != nil {
		rc.Close()
		t.Errorf("refused Download returned a reader")
	}
	if b := f.download(t, f.adminA, img.ID); string(b) != "bits" {
		t.Errorf("admin's Download of a deactivated image gave %q", b)
	}
	// A deactivated image keeps its metadata and may still be changed.
	if _, err := f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{Name: strp("off")}); err != nil {
		t.Errorf("Update of a deactivated image: %v", err)
	}

	for range 2 {
		if err := f.svc.Reactivate(f.ctx, f.memberA, img.ID); err != nil {
			t.Fatalf("Reactivate: %v", err)
		}
		wantStatus(t, f.stored(t, img.ID), cloudimage.StatusActive)
	}
	if b := f.download(t, f.memberA, img.ID); string(b) != "bits" {
		t.Errorf("Download after reactivation gave %q", b)
	}
	after := f.stored(t, img.ID)
	if !equalPtr(after.Size, uploaded.Size) || after.Checksum != uploaded.Checksum ||
		after.HashValue != uploaded.HashValue {
		t.Errorf("reactivated image has size %s checksum %s, want %s %s",
			fmtPtr(after.Size), after.Checksum, fmtPtr(uploaded.Size), uploaded.Checksum)
	}
}

func TestDeactivateRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	queued := f.create(t, f.memberA, cloudimage.ImageCreate{})
	active := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic})
	f.upload(t, f.adminA, active.ID, []byte("x"))
	private := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPrivate})
	f.upload(t, f.adminA, private.ID, []byte("x"))
	deactivated := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.upload(t, f.memberA, deactivated.ID, []byte("x"))
	if err := f.svc.Deactivate(f.ctx, f.memberA, deactivated.ID); err != nil {
		t.Fatal(err)
	}
	saving := f.create(t, f.memberA, cloudimage.ImageCreate{})
	if _, err := f.db.UpdateImage(f.ctx, saving.ID, func(img *cloudimage.Image) error {
		return img.SetStatus(cloudimage.StatusSaving, time.Now())
	}); err != nil {
		t.Fatal(err)
	}

	type op struct {
		name string
		fn   func(*cloudimage.Caller, string) error
	}
	deactivate := op{"Deactivate", func(c *cloudimage.Caller, id string) error {
		return f.svc.Deactivate(f.ctx, c, id)
	}}
	reactivate := op{"Reactivate", func(c *cloudimage.Caller, id string) error {
		return f.svc.Reactivate(f.ctx, c, id)
	}}
	tests := []struct {
		name   string
		op     op
		caller *cloudimage.Caller
		id     string
		want   string
	}{
		{"queued", deactivate, f.memberA, queued.ID, cloudimage.EFORBIDDEN},
		{"queued", reactivate, f.memberA, queued.ID, cloudimage.EFORBIDDEN},
		{"saving", deactivate, f.memberA, saving.ID, cloudimage.EFORBIDDEN},
		{"saving", reactivate, f.memberA, saving.ID, cloudimage.EFORBIDDEN},
		{"reader", deactivate, f.readerA, active.ID, cloudimage.EFORBIDDEN},
		{"reader", reactivate, f.readerA, deactivated.ID, cloudimage.EFORBIDDEN},
		{"another project, public", deactivate, f.memberB, active.ID, cloudimage.EFORBIDDEN},
		{"another project's admin, public", deactivate, f.adminB, active.ID, cloudimage.EFORBIDDEN},
		{"another project, private", deactivate, f.adminB, private.ID, cloudimage.ENOTFOUND},
		{"another project, deactivated shared", reactivate, f.memberB, deactivated.ID, cloudimage.ENOTFOUND},
		{"unknown", deactivate, f.memberA, uuid.NewString(), cloudimage.ENOTFOUND},
		{"unknown", reactivate, f.memberA, uuid.NewString(), cloudimage.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.op.name+" "+tt.name, func(t *testing.T) {
			before, _ := f.db.Image(f.ctx, tt.id) // nil for an unknown ID
			wantCode(t, tt.op.fn(tt.caller, tt.id), tt.want)
			if before != nil {
				sameImage(t, f.stored(t, tt.id), before)
			}
		})
	}
	if err := f.svc.Delete(f.ctx, f.memberA, deactivated.ID); err != nil {
		t.Fatalf("Delete of a deactivated image: %v", err)
	}
	wantCode(t, f.svc.Reactivate(f.ctx, f.memberA, deactivated.ID), cloudimage.ENOTFOUND)
}
