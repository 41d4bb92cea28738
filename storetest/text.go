package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// oddTexts are keys a client can put in a path or a query (%00, %FF)
// that no store holds: a NUL byte, and a byte that is not UTF-8. Some
// databases refuse such text outright; a store must treat it as a key
// it does not have.
var oddTexts = []string{"a\x00b", "\xff", "image\x00"}

// testOddKeys checks that looking up, changing or deleting by an odd key
// is ENOTFOUND, and that a filter on one matches nothing, as for any
// other key that is not there.
func testOddKeys(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	img := newImage(p.ID, base)
	img.Name, img.Visibility, img.Tags = "image", cloudimage.VisibilityPublic, []string{"image"}
	img.Properties = map[string]string{"image": "image"}
	mustCreate(t, s, img)
	for _, odd := range oddTexts {
		errs := map[string]error{}
		_, errs["Image"] = s.Image(ctx, odd)
		_, errs["UpdateImage"] = s.UpdateImage(ctx, odd, func(*cloudimage.Image) error { return nil })
		_, errs["Member"] = s.Member(ctx, img.ID, odd)
		_, errs["Members"] = s.Members(ctx, odd)
		_, errs["UpdateMember"] = s.UpdateMember(ctx, odd, odd, func(*cloudimage.Member) error { return nil })
		errs["DeleteMember"] = s.DeleteMember(ctx, img.ID, odd)
		errs["AddMember"] = s.AddMember(ctx, &cloudimage.Member{ImageID: odd, ProjectID: p.ID,
			Status: cloudimage.MemberPending, CreatedAt: base, UpdatedAt: base}, cloudimage.MaxMembers)
		_, errs["Project"] = s.Project(ctx, odd)
		_, errs["ProjectByName"] = s.ProjectByName(ctx, odd)
		_, errs["ProjectByAppKey"] = s.ProjectByAppKey(ctx, odd)
		_, errs["UserByName"] = s.UserByName(ctx, odd)
		_, errs["UserByID"] = s.UserByID(ctx, odd)
		_, errs["Token"] = s.Token(ctx, odd)
		errs["DeleteToken"] = s.DeleteToken(ctx, odd)
		for name, err := range errs {
			if got := cloudimage.ErrorCode(err); got != cloudimage.ENOTFOUND {
				t.Errorf("%s(%q): %v (code %q), want %s", name, odd, err, got, cloudimage.ENOTFOUND)
			}
		}
		if roles, err := s.Roles(ctx, odd, p.ID); err != nil || len(roles) != 0 {
			t.Errorf("Roles(%q): got %v, %v; want none", odd, roles, err)
		}
		if images, bytes, err := s.ProjectUsage(ctx, odd); err != nil || images != 0 || bytes != 0 {
			t.Errorf("ProjectUsage(%q): got %d, %d, %v; want 0, 0", odd, images, bytes, err)
		}
		if got, err := s.ImagesInStatus(ctx, cloudimage.Status(odd), 10); err != nil || len(got) != 0 {
			t.Errorf("ImagesInStatus(%q): got %v, %v; want none", odd, ids(got), err)
		}

		for name, f := range map[string]cloudimage.ImageFilter{
			"ids":               {IDs: []string{odd}},
			"names":             {Names: []string{odd}},
			"statuses":          {Statuses: []cloudimage.Status{cloudimage.Status(odd)}},
			"container formats": {ContainerFormats: []string{odd}},
			"disk formats":      {DiskFormats: []string{odd}},
			"owner":             {Owner: odd},
			"tags":              {Tags: []string{"image", odd}},
			"property value":    {Properties: map[string]string{"image": odd}},
			"property key":      {Properties: map[string]string{odd: "image"}},
		} {
			q := cloudimage.ImageQuery{Viewer: p.ID, Visibility: cloudimage.ListAll, Limit: 10, Filter: f}
			if got, err := s.ListImages(ctx, q); err != nil || len(got) != 0 {
				t.Errorf("list with %s %q: got %v, %v; want none", name, odd, ids(got), err)
			}
		}
		// In a list of values, the others still match.
		q := cloudimage.ImageQuery{Viewer: p.ID, Limit: 10, Filter: cloudimage.ImageFilter{Names: []string{odd, img.Name}}}
		if got, err := s.ListImages(ctx, q); err != nil || len(got) != 1 {
			t.Errorf("list with names %q and %q: got %v, %v; want the one image", odd, img.Name, ids(got), err)
		}
		// A viewer no project is sees what any stranger sees.
		q = cloudimage.ImageQuery{Viewer: odd, Limit: 10}
		if got, err := s.ListImages(ctx, q); err != nil || len(got) != 1 {
			t.Errorf("list as %q: got %v, %v; want the public image", odd, ids(got), err)
		}
	}
	if _, err := s.DeleteExpiredTokens(ctx, base.Add(-time.Hour)); err != nil {
		t.Errorf("the store does not work after odd keys: %v", err)
	}
}
