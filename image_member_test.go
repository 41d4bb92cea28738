package cloudimage_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// stranger returns a writer of a project that no image is shared with.
func stranger() *cloudimage.Caller {
	return &cloudimage.Caller{
		ProjectID: "0123456789abcdef0123456789abcdef",
		Roles:     []cloudimage.Role{cloudimage.RoleMember},
	}
}

// readerB returns a reader of project B.
func (f *fixture) readerB() *cloudimage.Caller {
	return &cloudimage.Caller{ProjectID: f.memberB.ProjectID, Roles: []cloudimage.Role{cloudimage.RoleReader}}
}

// setMember sets the status of project B's membership in the image.
func (f *fixture) setMember(t *testing.T, id string, st cloudimage.MemberStatus) {
	t.Helper()
	if _, err := f.svc.UpdateMember(f.ctx, f.memberB, id, f.memberB.ProjectID, st); err != nil {
		t.Fatalf("UpdateMember of %s to %s: %v", id, st, err)
	}
}

// members returns the image's members as the store holds them.
func (f *fixture) members(t *testing.T, id string) []*cloudimage.Member {
	t.Helper()
	ms, err := f.db.Members(f.ctx, id)
	if err != nil {
		t.Fatalf("Members of %s from the store: %v", id, err)
	}
	return ms
}

// memberIDs returns the projects of ms.
func memberIDs(ms []*cloudimage.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ProjectID
	}
	return out
}

// share creates a shared image as owner and adds project as a member.
func (f *fixture) share(t *testing.T, owner *cloudimage.Caller, project string,
	in cloudimage.ImageCreate) *cloudimage.Image {
	t.Helper()
	in.Visibility = cloudimage.VisibilityShared
	img := f.create(t, owner, in)
	if _, err := f.svc.AddMember(f.ctx, owner, img.ID, project); err != nil {
		t.Fatalf("AddMember %s to %s: %v", project, img.ID, err)
	}
	return img
}

func TestAddMember(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	before := time.Now().UTC().Add(-time.Second)

	m, err := f.svc.AddMember(f.ctx, f.memberA, img.ID, f.memberB.ProjectID)
	if err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	if m.ImageID != img.ID || m.ProjectID != f.memberB.ProjectID || m.Status != cloudimage.MemberPending {
		t.Errorf("AddMember returned %+v, want a pending membership of %s in %s", m, f.memberB.ProjectID, img.ID)
	}
	if m.CreatedAt.Before(before) || !m.UpdatedAt.Equal(m.CreatedAt) {
		t.Errorf("CreatedAt %v UpdatedAt %v, want both now and equal", m.CreatedAt, m.UpdatedAt)
	}
	stored, err := f.db.Member(f.ctx, img.ID, f.memberB.ProjectID)
	if err != nil {
		t.Fatalf("stored member: %v", err)
	}
	if *stored != *m {
		t.Errorf("stored member %+v, want %+v", stored, m)
	}

	// The owner's admin may add too; the owner's project may not be one.
	if _, err := f.svc.AddMember(f.ctx, f.adminA, img.ID, "another-project"); err != nil {
		t.Errorf("AddMember by the owner's admin: %v", err)
	}
	want := []string{"another-project", f.memberB.ProjectID}
	slices.Sort(want)
	if got := memberIDs(f.members(t, img.ID)); !slices.Equal(got, want) {
		t.Errorf("members %q, want %q", got, want)
	}
}

func TestAddMemberRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	shared := f.share(t, f.memberA, f.memberB.ProjectID, cloudimage.ImageCreate{})
	private := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPrivate})
	public := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic})
	community := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityCommunity})
	unshared := f.create(t, f.adminA, cloudimage.ImageCreate{})
	deleted := f.create(t, f.adminA, cloudimage.ImageCreate{})
	if err := f.svc.Delete(f.ctx, f.adminA, deleted.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		caller  *cloudimage.Caller
		id      string
		project string
		want    string
	}{
		{"duplicate", f.memberA, shared.ID, f.memberB.ProjectID, cloudimage.ECONFLICT},
		{"owner's reader", f.readerA, shared.ID, "p1", cloudimage.EFORBIDDEN},
		{"a member re-shares", f.memberB, shared.ID, "p1", cloudimage.EFORBIDDEN},
		{"a member's admin re-shares", f.adminB, shared.ID, "p1", cloudimage.EFORBIDDEN},
		{"stranger", stranger(), shared.ID, "p1", cloudimage.ENOTFOUND},
		{"another project, not shared with it", f.memberB, unshared.ID, "p1", cloudimage.ENOTFOUND},
		{"private", f.adminA, private.ID, f.memberB.ProjectID, cloudimage.EFORBIDDEN},
		{"public", f.adminA, public.ID, f.memberB.ProjectID, cloudimage.EFORBIDDEN},
		{"community", f.adminA, community.ID, f.memberB.ProjectID, cloudimage.EFORBIDDEN},
		{"another project, public", f.memberB, public.ID, "p1", cloudimage.EFORBIDDEN},
		{"the owner's project", f.adminA, unshared.ID, f.adminA.ProjectID, cloudimage.EINVALID},
		{"empty project", f.adminA, unshared.ID, "", cloudimage.EINVALID},
		{"deleted", f.adminA, deleted.ID, f.memberB.ProjectID, cloudimage.ENOTFOUND},
		{"unknown", f.adminA, uuid.NewString(), f.memberB.ProjectID, cloudimage.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []string
			if _, err := f.db.Image(f.ctx, tt.id); err == nil {
				before = memberIDs(f.members(t, tt.id))
			}
			m, err := f.svc.AddMember(f.ctx, tt.caller, tt.id, tt.project)
			wantCode(t, err, tt.want)
			if m != nil {
				t.Errorf("refused AddMember returned %+v", m)
			}
			if before != nil {
				if got := memberIDs(f.members(t, tt.id)); !slices.Equal(got, before) {
					t.Errorf("members %q after a refused AddMember, want %q", got, before)
				}
			}
		})
	}
}

func TestAddMemberMax(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	for i := range cloudimage.MaxMembers {
		if _, err := f.svc.AddMember(f.ctx, f.memberA, img.ID, fmt.Sprintf("project-%03d", i)); err != nil {
			t.Fatalf("AddMember %d: %v", i, err)
		}
	}
	_, err := f.svc.AddMember(f.ctx, f.memberA, img.ID, "one-too-many")
	wantCode(t, err, cloudimage.ETOOLARGE)
	if n := len(f.members(t, img.ID)); n != cloudimage.MaxMembers {
		t.Errorf("%d members, want %d", n, cloudimage.MaxMembers)
	}
	// Room again once one is removed.
	if err := f.svc.RemoveMember(f.ctx, f.memberA, img.ID, "project-000"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AddMember(f.ctx, f.memberA, img.ID, "one-too-many"); err != nil {
		t.Errorf("AddMember after a removal: %v", err)
	}
}

// TestMemberSeesImage checks that a member may use a shared image whatever
// its membership's status, and that nobody else may.
func TestMemberSeesImage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.share(t, f.memberA, f.memberB.ProjectID, cloudimage.ImageCreate{Properties: downloadable()})
	f.upload(t, f.memberA, img.ID, []byte("shared data"))
	for _, st := range []cloudimage.MemberStatus{cloudimage.MemberPending, cloudimage.MemberRejected,
		cloudimage.MemberAccepted} {
		t.Run(string(st), func(t *testing.T) {
			if _, err := f.svc.UpdateMember(f.ctx, f.memberB, img.ID, f.memberB.ProjectID, st); err != nil {
				t.Fatalf("UpdateMember to %s: %v", st, err)
			}
			for _, c := range []*cloudimage.Caller{f.memberB, f.adminB, f.readerB()} {
				got, err := f.svc.Get(f.ctx, c, img.ID)
				if err != nil {
					t.Fatalf("member's Get: %v", err)
				}
				sameImage(t, got, f.stored(t, img.ID))
			}
			if b := f.download(t, f.memberB, img.ID); string(b) != "shared data" {
				t.Errorf("member's Download gave %q", b)
			}
			_, err := f.svc.Get(f.ctx, stranger(), img.ID)
			wantCode(t, err, cloudimage.ENOTFOUND)
			_, _, err = f.svc.Download(f.ctx, stranger(), img.ID)
			wantCode(t, err, cloudimage.ENOTFOUND)
		})
	}
}

// listed reports whether c's list with the given options holds id.
func (f *fixture) listed(t *testing.T, c *cloudimage.Caller, opts cloudimage.ListOptions, id string) bool {
	t.Helper()
	opts.Limit = -1
	seq, err := f.svc.List(f.ctx, c, opts)
	return slices.Contains(ids(collect(t, seq, err)), id)
}

// TestMemberList checks which lists of the member hold a shared image,
// for each status of its membership (digest §5 #5, §7 #33).
func TestMemberList(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.share(t, f.memberA, f.memberB.ProjectID, cloudimage.ImageCreate{})
	other := f.create(t, f.memberA, cloudimage.ImageCreate{}) // shared, but not with B
	statuses := []cloudimage.MemberStatus{"", cloudimage.MemberPending, cloudimage.MemberAccepted,
		cloudimage.MemberRejected, cloudimage.MemberAny}
	for _, st := range []cloudimage.MemberStatus{cloudimage.MemberPending, cloudimage.MemberAccepted,
		cloudimage.MemberRejected} {
		t.Run(string(st), func(t *testing.T) {
			if _, err := f.svc.UpdateMember(f.ctx, f.memberB, img.ID, f.memberB.ProjectID, st); err != nil {
				t.Fatalf("UpdateMember: %v", err)
			}
			for _, view := range []cloudimage.ListVisibility{cloudimage.ListDefault, cloudimage.ListShared} {
				for _, filter := range statuses {
					want := filter == st || filter == cloudimage.MemberAny ||
						(filter == "" && st == cloudimage.MemberAccepted)
					opts := cloudimage.ListOptions{Visibility: view, MemberStatus: filter}
					if got := f.listed(t, f.memberB, opts, img.ID); got != want {
						t.Errorf("membership %s, view %q, member_status %q: listed %v, want %v",
							st, view, filter, got, want)
					}
					if f.listed(t, f.memberB, opts, other.ID) {
						t.Errorf("view %q, member_status %q lists an image not shared with the project", view, filter)
					}
				}
			}
			// Not in the views that have no shared images.
			for _, view := range []cloudimage.ListVisibility{cloudimage.ListPrivate, cloudimage.ListPublic,
				cloudimage.ListCommunity} {
				opts := cloudimage.ListOptions{Visibility: view, MemberStatus: cloudimage.MemberAny}
				if f.listed(t, f.memberB, opts, img.ID) {
					t.Errorf("membership %s: view %q lists the shared image", st, view)
				}
			}
			// The owner lists its own image whatever its members said.
			if !f.listed(t, f.memberA, cloudimage.ListOptions{}, img.ID) {
				t.Errorf("membership %s: the owner's list lacks the image", st)
			}
		})
	}
	_, err := f.svc.List(f.ctx, f.memberB, cloudimage.ListOptions{MemberStatus: "bogus"})
	wantCode(t, err, cloudimage.EINVALID)
}

func TestUpdateMember(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.share(t, f.memberA, f.memberB.ProjectID, cloudimage.ImageCreate{})
	if _, err := f.svc.AddMember(f.ctx, f.memberA, img.ID, stranger().ProjectID); err != nil {
		t.Fatal(err)
	}
	added, err := f.db.Member(f.ctx, img.ID, f.memberB.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)

	for _, st := range []cloudimage.MemberStatus{cloudimage.MemberAccepted, cloudimage.MemberRejected,
		cloudimage.MemberPending, cloudimage.MemberAccepted} {
		m, err := f.svc.UpdateMember(f.ctx, f.memberB, img.ID, f.memberB.ProjectID, st)
		if err != nil {
			t.Fatalf("UpdateMember to %s: %v", st, err)
		}
		if m.Status != st || m.ImageID != img.ID || m.ProjectID != f.memberB.ProjectID {
			t.Errorf("UpdateMember returned %+v, want status %s", m, st)
		}
		if !m.CreatedAt.Equal(added.CreatedAt) || !m.UpdatedAt.After(added.UpdatedAt) {
			t.Errorf("CreatedAt %v UpdatedAt %v, want created %v and updated later", m.CreatedAt, m.UpdatedAt,
				added.CreatedAt)
		}
		got, err := f.svc.Member(f.ctx, f.memberA, img.ID, f.memberB.ProjectID)
		if err != nil {
			t.Fatalf("owner's Member: %v", err)
		}
		if *got != *m {
			t.Errorf("owner reads %+v, want %+v", got, m)
		}
	}
	accepted := f.members(t, img.ID)

	tests := []struct {
		name    string
		caller  *cloudimage.Caller
		project string
		status  cloudimage.MemberStatus
		want    string
	}{
		{"status all", f.memberB, f.memberB.ProjectID, cloudimage.MemberAny, cloudimage.EINVALID},
		{"status bogus", f.memberB, f.memberB.ProjectID, "bogus", cloudimage.EINVALID},
		{"status empty", f.memberB, f.memberB.ProjectID, "", cloudimage.EINVALID},
		{"owner", f.memberA, f.memberB.ProjectID, cloudimage.MemberRejected, cloudimage.EFORBIDDEN},
		{"owner's admin", f.adminA, f.memberB.ProjectID, cloudimage.MemberRejected, cloudimage.EFORBIDDEN},
		{"owner for itself", f.adminA, f.adminA.ProjectID, cloudimage.MemberAccepted, cloudimage.ENOTFOUND},
		{"member's reader", f.readerB(), f.memberB.ProjectID, cloudimage.MemberRejected, cloudimage.EFORBIDDEN},
		{"another member's membership", f.memberB, stranger().ProjectID, cloudimage.MemberAccepted,
			cloudimage.ENOTFOUND},
		{"not a member", &cloudimage.Caller{ProjectID: "nobody", Roles: []cloudimage.Role{cloudimage.RoleMember}},
			"nobody", cloudimage.MemberAccepted, cloudimage.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := f.svc.UpdateMember(f.ctx, tt.caller, img.ID, tt.project, tt.status)
			wantCode(t, err, tt.want)
			if m != nil {
				t.Errorf("refused UpdateMember returned %+v", m)
			}
			after := f.members(t, img.ID)
			for i := range after {
				if *after[i] != *accepted[i] {
					t.Errorf("member %+v after a refused UpdateMember, want %+v", after[i], accepted[i])
				}
			}
		})
	}
	_, err = f.svc.UpdateMember(f.ctx, f.memberB, uuid.NewString(), f.memberB.ProjectID, cloudimage.MemberAccepted)
	wantCode(t, err, cloudimage.ENOTFOUND)
}

func TestMembersAndMember(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.share(t, f.memberA, f.memberB.ProjectID, cloudimage.ImageCreate{})
	if _, err := f.svc.AddMember(f.ctx, f.memberA, img.ID, stranger().ProjectID); err != nil {
		t.Fatal(err)
	}
	all := memberIDs(f.members(t, img.ID))
	if len(all) != 2 {
		t.Fatalf("%d members, want 2", len(all))
	}

	for _, c := range []*cloudimage.Caller{f.memberA, f.adminA, f.readerA} {
		ms, err := f.svc.Members(f.ctx, c, img.ID)
		if err != nil {
			t.Fatalf("owner's Members: %v", err)
		}
		if got := memberIDs(ms); !slices.Equal(got, all) {
			t.Errorf("owner's Members %q, want %q", got, all)
		}
	}
	ms, err := f.svc.Members(f.ctx, f.memberB, img.ID)
	if err != nil {
		t.Fatalf("member's Members: %v", err)
	}
	if got := memberIDs(ms); !slices.Equal(got, []string{f.memberB.ProjectID}) {
		t.Errorf("member's Members %q, want only its own", got)
	}
	_, err = f.svc.Members(f.ctx, &cloudimage.Caller{ProjectID: "nobody"}, img.ID)
	wantCode(t, err, cloudimage.ENOTFOUND)

	tests := []struct {
		name    string
		caller  *cloudimage.Caller
		project string
		want    string
	}{
		{"owner reads a member", f.memberA, f.memberB.ProjectID, ""},
		{"owner's reader reads a member", f.readerA, stranger().ProjectID, ""},
		{"member reads itself", f.memberB, f.memberB.ProjectID, ""},
		{"member reads another", f.memberB, stranger().ProjectID, cloudimage.ENOTFOUND},
		{"owner reads a non-member", f.memberA, "nobody", cloudimage.ENOTFOUND},
		{"owner reads its own project", f.memberA, f.memberA.ProjectID, cloudimage.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := f.svc.Member(f.ctx, tt.caller, img.ID, tt.project)
			wantCode(t, err, tt.want)
			if tt.want == "" && (m.ProjectID != tt.project || m.ImageID != img.ID) {
				t.Errorf("Member returned %+v", m)
			}
		})
	}

	private := f.create(t, f.memberA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPrivate})
	_, err = f.svc.Members(f.ctx, f.memberA, private.ID)
	wantCode(t, err, cloudimage.EFORBIDDEN)
	// As Glance: an image that cannot have members has none to show.
	_, err = f.svc.Member(f.ctx, f.memberA, private.ID, f.memberB.ProjectID)
	wantCode(t, err, cloudimage.ENOTFOUND)
	_, err = f.svc.Members(f.ctx, f.memberA, uuid.NewString())
	wantCode(t, err, cloudimage.ENOTFOUND)
}

func TestRemoveMember(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.share(t, f.memberA, f.memberB.ProjectID, cloudimage.ImageCreate{})
	f.setMember(t, img.ID, cloudimage.MemberAccepted)
	tests := []struct {
		name    string
		caller  *cloudimage.Caller
		project string
		want    string
	}{
		{"the member itself", f.memberB, f.memberB.ProjectID, cloudimage.EFORBIDDEN},
		{"the member's admin", f.adminB, f.memberB.ProjectID, cloudimage.EFORBIDDEN},
		{"the owner's reader", f.readerA, f.memberB.ProjectID, cloudimage.EFORBIDDEN},
		{"stranger", stranger(), f.memberB.ProjectID, cloudimage.ENOTFOUND},
		{"owner, not a member", f.memberA, "nobody", cloudimage.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, f.svc.RemoveMember(f.ctx, tt.caller, img.ID, tt.project), tt.want)
			if got := memberIDs(f.members(t, img.ID)); !slices.Equal(got, []string{f.memberB.ProjectID}) {
				t.Errorf("members %q after a refused RemoveMember", got)
			}
		})
	}

	if err := f.svc.RemoveMember(f.ctx, f.memberA, img.ID, f.memberB.ProjectID); err != nil {
		t.Fatalf("owner's RemoveMember: %v", err)
	}
	if got := f.members(t, img.ID); len(got) != 0 {
		t.Errorf("members %q after removal, want none", memberIDs(got))
	}
	_, err := f.svc.Get(f.ctx, f.memberB, img.ID)
	wantCode(t, err, cloudimage.ENOTFOUND)
	if f.listed(t, f.memberB, cloudimage.ListOptions{MemberStatus: cloudimage.MemberAny}, img.ID) {
		t.Errorf("a removed member still lists the image")
	}
	_, err = f.svc.Member(f.ctx, f.memberA, img.ID, f.memberB.ProjectID)
	wantCode(t, err, cloudimage.ENOTFOUND)
	_, err = f.svc.UpdateMember(f.ctx, f.memberB, img.ID, f.memberB.ProjectID, cloudimage.MemberAccepted)
	wantCode(t, err, cloudimage.ENOTFOUND)
	wantCode(t, f.svc.RemoveMember(f.ctx, f.memberA, img.ID, f.memberB.ProjectID), cloudimage.ENOTFOUND)

	// The owner's admin may remove too, and the member may be added again.
	if _, err := f.svc.AddMember(f.ctx, f.memberA, img.ID, f.memberB.ProjectID); err != nil {
		t.Fatalf("AddMember again: %v", err)
	}
	if err := f.svc.RemoveMember(f.ctx, f.adminA, img.ID, f.memberB.ProjectID); err != nil {
		t.Errorf("admin's RemoveMember: %v", err)
	}
}

// TestVisibilityHidesFromMembers checks that an image made private is
// gone for its members, and back when it is shared again.
func TestVisibilityHidesFromMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.share(t, f.memberA, f.memberB.ProjectID, cloudimage.ImageCreate{})
	f.setMember(t, img.ID, cloudimage.MemberAccepted)
	if !f.listed(t, f.memberB, cloudimage.ListOptions{}, img.ID) {
		t.Fatalf("accepted member does not list the shared image")
	}

	private := cloudimage.VisibilityPrivate
	if _, err := f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{Visibility: &private}); err != nil {
		t.Fatalf("Update to private: %v", err)
	}
	_, err := f.svc.Get(f.ctx, f.memberB, img.ID)
	wantCode(t, err, cloudimage.ENOTFOUND)
	for _, st := range []cloudimage.MemberStatus{"", cloudimage.MemberAny} {
		if f.listed(t, f.memberB, cloudimage.ListOptions{MemberStatus: st}, img.ID) {
			t.Errorf("member_status %q: a member lists an image made private", st)
		}
	}
	_, err = f.svc.Members(f.ctx, f.memberB, img.ID)
	wantCode(t, err, cloudimage.ENOTFOUND)
	_, err = f.svc.UpdateMember(f.ctx, f.memberB, img.ID, f.memberB.ProjectID, cloudimage.MemberRejected)
	wantCode(t, err, cloudimage.ENOTFOUND)
	_, err = f.svc.Members(f.ctx, f.memberA, img.ID)
	wantCode(t, err, cloudimage.EFORBIDDEN)

	shared := cloudimage.VisibilityShared
	if _, err := f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{Visibility: &shared}); err != nil {
		t.Fatalf("Update to shared: %v", err)
	}
	if _, err := f.svc.Get(f.ctx, f.memberB, img.ID); err != nil {
		t.Errorf("member's Get once the image is shared again: %v", err)
	}
}
