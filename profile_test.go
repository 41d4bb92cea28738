package cloudimage_test

import (
	"slices"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

func TestProfileByName(t *testing.T) {
	t.Parallel()
	for _, want := range []cloudimage.Profile{cloudimage.ProfileNHN, cloudimage.ProfileOpenStack} {
		got, err := cloudimage.ProfileByName(want.Name)
		if err != nil {
			t.Fatalf("ProfileByName(%q): %v", want.Name, err)
		}
		if got.Name != want.Name || got.RequireOSType != want.RequireOSType ||
			!slices.Equal(got.OwnerVisibilities, want.OwnerVisibilities) ||
			got.ReservedTagPrefix != want.ReservedTagPrefix || got.DownloadProperty != want.DownloadProperty ||
			got.DefaultLimit != want.DefaultLimit || got.MaxLimit != want.MaxLimit {
			t.Errorf("ProfileByName(%q) = %+v, want %+v", want.Name, got, want)
		}
	}
	for _, bad := range []string{"", "NHN", "glance", "nhn "} {
		if p, err := cloudimage.ProfileByName(bad); err == nil {
			t.Errorf("ProfileByName(%q) = %+v, want an error", bad, p)
		}
	}
	if len(cloudimage.Profiles) == 0 || cloudimage.Profiles[0].Name != "nhn" {
		t.Errorf("Profiles does not start with nhn, the default")
	}
}

// TestProfileValues checks the profiles against the spec: NHN's rules
// from digest §5 and §7 #27, #29, #31, #32; Glance's defaults.
func TestProfileValues(t *testing.T) {
	t.Parallel()
	nhn, os := cloudimage.ProfileNHN, cloudimage.ProfileOpenStack
	if !nhn.RequireOSType || os.RequireOSType {
		t.Errorf("RequireOSType: nhn %v, openstack %v; want true, false", nhn.RequireOSType, os.RequireOSType)
	}
	if nhn.ReservedTagPrefix != "_" || os.ReservedTagPrefix != "" {
		t.Errorf("ReservedTagPrefix: nhn %q, openstack %q; want \"_\", \"\"",
			nhn.ReservedTagPrefix, os.ReservedTagPrefix)
	}
	if nhn.DownloadProperty != "nhncloud_allow_download" || os.DownloadProperty != "" {
		t.Errorf("DownloadProperty: nhn %q, openstack %q", nhn.DownloadProperty, os.DownloadProperty)
	}
	if nhn.DefaultLimit != 100 || nhn.MaxLimit != 1000 || os.DefaultLimit != 25 || os.MaxLimit != 1000 {
		t.Errorf("limits: nhn %d/%d, openstack %d/%d; want 100/1000, 25/1000",
			nhn.DefaultLimit, nhn.MaxLimit, os.DefaultLimit, os.MaxLimit)
	}
	if !slices.Equal(cloudimage.OSTypes, []string{"linux", "windows"}) {
		t.Errorf("OSTypes = %q, want linux and windows", cloudimage.OSTypes)
	}
}

func TestServiceProfile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	if got := f.svc.Profile().Name; got != "nhn" {
		t.Errorf("default profile %q, want nhn", got)
	}
	f = newFixture(t, nil, cloudimage.WithProfile(cloudimage.ProfileOpenStack))
	if got := f.svc.Profile().Name; got != "openstack" {
		t.Errorf("profile %q after WithProfile(openstack)", got)
	}
}

// profileFixtures returns a fixture for each built-in profile.
func profileFixtures(t *testing.T) map[string]*fixture {
	t.Helper()
	fs := map[string]*fixture{}
	for _, p := range cloudimage.Profiles {
		fs[p.Name] = newFixture(t, nil, cloudimage.WithProfile(p))
	}
	return fs
}

// createCase is one create under one profile and what it must give.
type createCase struct {
	name    string
	profile string
	caller  func(*fixture) *cloudimage.Caller
	in      cloudimage.ImageCreate
	want    string
}

func member(f *fixture) *cloudimage.Caller { return f.memberA }
func admin(f *fixture) *cloudimage.Caller  { return f.adminA }

func TestProfileCreateRules(t *testing.T) {
	t.Parallel()
	fs := profileFixtures(t)
	props := func(kv ...string) map[string]string { return withProps(nil, kv...) }
	vis := func(v cloudimage.Visibility) cloudimage.ImageCreate {
		return cloudimage.ImageCreate{Visibility: v, Properties: linux()}
	}
	tags := func(tags ...string) cloudimage.ImageCreate {
		return cloudimage.ImageCreate{Tags: tags, Properties: linux()}
	}
	tests := []createCase{
		// os_type
		{"nhn: no os_type", "nhn", member, cloudimage.ImageCreate{}, cloudimage.EINVALID},
		{"nhn: no os_type, other properties", "nhn", member,
			cloudimage.ImageCreate{Properties: props("os_distro", "ubuntu")}, cloudimage.EINVALID},
		{"nhn: no os_type by admin", "nhn", admin, cloudimage.ImageCreate{}, cloudimage.EINVALID},
		{"nhn: os_type linux", "nhn", member, cloudimage.ImageCreate{Properties: props("os_type", "linux")}, ""},
		{"nhn: os_type windows", "nhn", member, cloudimage.ImageCreate{Properties: props("os_type", "windows")}, ""},
		{"nhn: os_type mac", "nhn", member, cloudimage.ImageCreate{Properties: props("os_type", "mac")},
			cloudimage.EINVALID},
		{"nhn: os_type empty", "nhn", member, cloudimage.ImageCreate{Properties: props("os_type", "")},
			cloudimage.EINVALID},
		{"openstack: no os_type", "openstack", member, cloudimage.ImageCreate{}, ""},
		{"openstack: os_type mac", "openstack", member,
			cloudimage.ImageCreate{Properties: props("os_type", "mac")}, ""},

		// visibility
		{"nhn: private", "nhn", member, vis(cloudimage.VisibilityPrivate), ""},
		{"nhn: shared", "nhn", member, vis(cloudimage.VisibilityShared), ""},
		{"nhn: community", "nhn", member, vis(cloudimage.VisibilityCommunity), cloudimage.EFORBIDDEN},
		{"nhn: public", "nhn", member, vis(cloudimage.VisibilityPublic), cloudimage.EFORBIDDEN},
		{"nhn: community by admin", "nhn", admin, vis(cloudimage.VisibilityCommunity), ""},
		{"nhn: public by admin", "nhn", admin, vis(cloudimage.VisibilityPublic), ""},
		{"openstack: private", "openstack", member, vis(cloudimage.VisibilityPrivate), ""},
		{"openstack: shared", "openstack", member, vis(cloudimage.VisibilityShared), ""},
		{"openstack: community", "openstack", member, vis(cloudimage.VisibilityCommunity), ""},
		{"openstack: public", "openstack", member, vis(cloudimage.VisibilityPublic), cloudimage.EFORBIDDEN},
		{"openstack: public by admin", "openstack", admin, vis(cloudimage.VisibilityPublic), ""},

		// reserved tags
		{"nhn: _ tag", "nhn", member, tags("ok", "_AVAILABLE_"), cloudimage.EINVALID},
		{"nhn: _ alone", "nhn", member, tags("_"), cloudimage.EINVALID},
		{"nhn: _ tag by admin", "nhn", admin, tags("_AVAILABLE_"), ""},
		{"nhn: _ inside a tag", "nhn", member, tags("a_b", "b_"), ""},
		{"openstack: _ tag", "openstack", member, tags("_AVAILABLE_"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fs[tt.profile]
			tt.in.ID = uuid.NewString()
			img, err := f.svc.Create(f.ctx, tt.caller(f), tt.in)
			wantCode(t, err, tt.want)
			if tt.want != "" {
				_, err = f.db.Image(f.ctx, tt.in.ID)
				wantCode(t, err, cloudimage.ENOTFOUND)
				return
			}
			got := f.stored(t, img.ID)
			sameImage(t, got, img)
			if tt.in.Visibility != "" && got.Visibility != tt.in.Visibility {
				t.Errorf("Visibility = %s, want %s", got.Visibility, tt.in.Visibility)
			}
		})
	}
}

// TestProfileTagRules checks that the reserved prefix holds on every path
// a tag takes onto an image, under nhn only.
func TestProfileTagRules(t *testing.T) {
	t.Parallel()
	for name, f := range profileFixtures(t) {
		t.Run(name, func(t *testing.T) {
			reserved := name == "nhn"
			img := f.create(t, f.memberA, cloudimage.ImageCreate{Tags: []string{"a"}})

			err := f.svc.AddTag(f.ctx, f.memberA, img.ID, "_NEW_")
			_, uerr := f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{Tags: []string{"a", "_UPD_"}})
			if reserved {
				wantCode(t, err, cloudimage.EINVALID)
				wantCode(t, uerr, cloudimage.EINVALID)
				if got := f.stored(t, img.ID).Tags; !slices.Equal(got, []string{"a"}) {
					t.Errorf("tags %q after refused changes, want [a]", got)
				}
			} else {
				wantCode(t, err, "")
				wantCode(t, uerr, "")
				if got := f.stored(t, img.ID).Tags; !slices.Equal(got, []string{"_UPD_", "a"}) {
					t.Errorf("tags %q, want [_UPD_ a]", got)
				}
			}

			// An admin may always; the owner's members may then keep the
			// operator's tag in a new set of tags, but not add another.
			if err := f.svc.AddTag(f.ctx, f.adminA, img.ID, "_AVAILABLE_"); err != nil {
				t.Fatalf("admin's AddTag of a reserved tag: %v", err)
			}
			if _, err := f.svc.Update(f.ctx, f.memberA, img.ID,
				cloudimage.ImageUpdate{Tags: []string{"_AVAILABLE_", "b"}}); err != nil {
				t.Fatalf("member's Update keeping the operator's tag: %v", err)
			}
			if got := f.stored(t, img.ID).Tags; !slices.Equal(got, []string{"_AVAILABLE_", "b"}) {
				t.Errorf("tags %q, want [_AVAILABLE_ b]", got)
			}
			_, err = f.svc.Update(f.ctx, f.memberA, img.ID,
				cloudimage.ImageUpdate{Tags: []string{"_AVAILABLE_", "_OTHER_"}})
			if reserved {
				wantCode(t, err, cloudimage.EINVALID)
			} else {
				wantCode(t, err, "")
			}
			if _, err := f.svc.Update(f.ctx, f.adminA, img.ID,
				cloudimage.ImageUpdate{Tags: []string{"_ADMIN_"}}); err != nil {
				t.Fatalf("admin's Update with a reserved tag: %v", err)
			}
			if got := f.stored(t, img.ID).Tags; !slices.Equal(got, []string{"_ADMIN_"}) {
				t.Errorf("tags %q, want [_ADMIN_]", got)
			}
		})
	}
}

// TestProfileDownloadGate checks NHN's download rule (digest §7 #32): data
// leaves only for members and admins, and only when the image's
// nhncloud_allow_download is "true"; openstack has no such rule.
func TestProfileDownloadGate(t *testing.T) {
	t.Parallel()
	fs := profileFixtures(t)
	const key = "nhncloud_allow_download"
	data := []byte("image data")
	tests := []struct {
		name    string
		profile string
		props   map[string]string // besides os_type
		caller  func(*fixture) *cloudimage.Caller
		want    string
	}{
		{"nhn: member, true", "nhn", map[string]string{key: "true"}, member, ""},
		{"nhn: admin, true", "nhn", map[string]string{key: "true"}, admin, ""},
		{"nhn: reader, true", "nhn", map[string]string{key: "true"},
			func(f *fixture) *cloudimage.Caller { return f.readerA }, cloudimage.EFORBIDDEN},
		{"nhn: member, missing", "nhn", nil, member, cloudimage.EFORBIDDEN},
		{"nhn: admin, missing", "nhn", nil, admin, cloudimage.EFORBIDDEN},
		{"nhn: member, false", "nhn", map[string]string{key: "false"}, member, cloudimage.EFORBIDDEN},
		{"nhn: member, empty", "nhn", map[string]string{key: ""}, member, cloudimage.EFORBIDDEN},
		{"nhn: member, yes", "nhn", map[string]string{key: "yes"}, member, cloudimage.EFORBIDDEN},
		{"nhn: another project's member, true", "nhn", map[string]string{key: "true"},
			func(f *fixture) *cloudimage.Caller { return f.memberB }, ""},
		{"nhn: another project's member, missing", "nhn", nil,
			func(f *fixture) *cloudimage.Caller { return f.memberB }, cloudimage.EFORBIDDEN},
		{"openstack: member, missing", "openstack", nil, member, ""},
		{"openstack: reader, missing", "openstack", nil,
			func(f *fixture) *cloudimage.Caller { return f.readerA }, ""},
		{"openstack: member, false", "openstack", map[string]string{key: "false"}, member, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fs[tt.profile]
			props := withProps(tt.props, "os_type", "linux")
			// Public, so that project B sees it too.
			img := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic, Properties: props})
			f.upload(t, f.adminA, img.ID, data)

			got, rc, err := f.svc.Download(f.ctx, tt.caller(f), img.ID)
			wantCode(t, err, tt.want)
			if tt.want != "" {
				if rc != nil || got != nil {
					t.Errorf("refused Download returned image %v, reader %v", got, rc)
				}
				return
			}
			if b := f.download(t, tt.caller(f), img.ID); string(b) != string(data) {
				t.Errorf("Download gave %q, want %q", b, data)
			}
			rc.Close()
		})
	}
}

// TestProfileDownloadGateFollowsProperty checks that the gate reads the
// property as it is now: set by Update, removed by Update.
func TestProfileDownloadGateFollowsProperty(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.upload(t, f.memberA, img.ID, []byte("x"))
	_, _, err := f.svc.Download(f.ctx, f.memberA, img.ID)
	wantCode(t, err, cloudimage.EFORBIDDEN)

	set := cloudimage.ImageUpdate{SetProperties: map[string]string{"nhncloud_allow_download": "true"}}
	if _, err := f.svc.Update(f.ctx, f.memberA, img.ID, set); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if b := f.download(t, f.memberA, img.ID); string(b) != "x" {
		t.Errorf("Download gave %q, want %q", b, "x")
	}

	remove := cloudimage.ImageUpdate{RemoveProperties: []string{"nhncloud_allow_download"}}
	if _, err := f.svc.Update(f.ctx, f.memberA, img.ID, remove); err != nil {
		t.Fatalf("Update: %v", err)
	}
	_, _, err = f.svc.Download(f.ctx, f.memberA, img.ID)
	wantCode(t, err, cloudimage.EFORBIDDEN)
}
