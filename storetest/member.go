package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

func sameMember(t *testing.T, got, want *cloudimage.Member) {
	t.Helper()
	if got.ImageID != want.ImageID || got.ProjectID != want.ProjectID || got.Status != want.Status ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("member differs:\n got %+v\nwant %+v", got, want)
	}
}

func testMembers(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	img := newImage(p.ID, base)
	img.Visibility = cloudimage.VisibilityShared
	mustCreate(t, s, img)
	bare := newImage(p.ID, base)
	mustCreate(t, s, bare)

	// An image without members has an empty list; an unknown image none.
	got, err := s.Members(ctx, bare.ID)
	if err != nil || len(got) != 0 {
		t.Fatalf("members of an image without any: got %v, %v; want none", got, err)
	}
	_, err = s.Members(ctx, uuid.NewString())
	wantCode(t, err, cloudimage.ENOTFOUND)

	// Added in no particular order, listed by project ID; times keep
	// their microseconds.
	projects := []string{"tenant-c", "tenant-a", "Tenant-b", "tenant-b"}
	var want []*cloudimage.Member
	byProject := map[string]*cloudimage.Member{}
	for i, project := range projects {
		m := &cloudimage.Member{ImageID: img.ID, ProjectID: project, Status: cloudimage.MemberPending,
			CreatedAt: base.Add(time.Duration(i) * time.Microsecond), UpdatedAt: base.Add(time.Duration(i+7) * time.Microsecond)}
		if err := s.AddMember(ctx, m, cloudimage.MaxMembers); err != nil {
			t.Fatalf("add %s: %v", project, err)
		}
		want = append(want, m)
		byProject[project] = m
	}
	slices.SortFunc(want, func(x, y *cloudimage.Member) int { return strings.Compare(x.ProjectID, y.ProjectID) })
	got, err = s.Members(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d members, want %d", len(got), len(want))
	}
	for i := range got {
		sameMember(t, got[i], want[i])
	}
	one, err := s.Member(ctx, img.ID, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	sameMember(t, one, byProject["tenant-a"])
	if _, err := s.Members(ctx, bare.ID); err != nil {
		t.Fatal(err)
	}

	// Duplicates, unknown images and unknown members.
	dup := &cloudimage.Member{ImageID: img.ID, ProjectID: "tenant-a", Status: cloudimage.MemberAccepted, CreatedAt: base, UpdatedAt: base}
	wantCode(t, s.AddMember(ctx, dup, cloudimage.MaxMembers), cloudimage.ECONFLICT)
	if m, _ := s.Member(ctx, img.ID, "tenant-a"); m.Status != cloudimage.MemberPending {
		t.Fatalf("a refused duplicate changed the member: %+v", m)
	}
	orphan := &cloudimage.Member{ImageID: uuid.NewString(), ProjectID: "tenant-a", Status: cloudimage.MemberPending, CreatedAt: base, UpdatedAt: base}
	wantCode(t, s.AddMember(ctx, orphan, cloudimage.MaxMembers), cloudimage.ENOTFOUND)
	_, err = s.Member(ctx, img.ID, "tenant-z")
	wantCode(t, err, cloudimage.ENOTFOUND)
	_, err = s.Member(ctx, bare.ID, "tenant-a")
	wantCode(t, err, cloudimage.ENOTFOUND)
	_, err = s.Member(ctx, uuid.NewString(), "tenant-a")
	wantCode(t, err, cloudimage.ENOTFOUND)
	// The same project may be a member of several images.
	other := &cloudimage.Member{ImageID: bare.ID, ProjectID: "tenant-a", Status: cloudimage.MemberRejected, CreatedAt: base, UpdatedAt: base}
	if err := s.AddMember(ctx, other, cloudimage.MaxMembers); err != nil {
		t.Fatal(err)
	}

	// Update: read, change and write in one go; the key stays.
	later := base.Add(time.Hour + 3*time.Microsecond)
	updated, err := s.UpdateMember(ctx, img.ID, "tenant-b", func(m *cloudimage.Member) error {
		if m.Status != cloudimage.MemberPending || m.ProjectID != "tenant-b" {
			t.Errorf("fn got %+v", m)
		}
		m.Status, m.UpdatedAt = cloudimage.MemberAccepted, later
		m.ImageID, m.ProjectID = bare.ID, "tenant-moved"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantB := &cloudimage.Member{ImageID: img.ID, ProjectID: "tenant-b", Status: cloudimage.MemberAccepted,
		CreatedAt: byProject["tenant-b"].CreatedAt, UpdatedAt: later}
	sameMember(t, updated, wantB)
	stored, err := s.Member(ctx, img.ID, "tenant-b")
	if err != nil {
		t.Fatal(err)
	}
	sameMember(t, stored, wantB)
	_, err = s.Member(ctx, bare.ID, "tenant-moved")
	wantCode(t, err, cloudimage.ENOTFOUND)
	if m, _ := s.Member(ctx, img.ID, "Tenant-b"); m.Status != cloudimage.MemberPending {
		t.Fatalf("update of tenant-b changed Tenant-b: %+v", m)
	}

	boom := errors.New("boom")
	_, err = s.UpdateMember(ctx, img.ID, "tenant-b", func(m *cloudimage.Member) error {
		m.Status = cloudimage.MemberRejected
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got error %v, want %v", err, boom)
	}
	if m, _ := s.Member(ctx, img.ID, "tenant-b"); m.Status != cloudimage.MemberAccepted {
		t.Fatalf("a failed update was stored: %+v", m)
	}
	_, err = s.UpdateMember(ctx, img.ID, "tenant-z", func(*cloudimage.Member) error { return nil })
	wantCode(t, err, cloudimage.ENOTFOUND)

	// Delete: once, then it is gone; the others stay.
	if err := s.DeleteMember(ctx, img.ID, "tenant-a"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteMember(ctx, img.ID, "tenant-a"), cloudimage.ENOTFOUND)
	wantCode(t, s.DeleteMember(ctx, uuid.NewString(), "tenant-a"), cloudimage.ENOTFOUND)
	_, err = s.Member(ctx, img.ID, "tenant-a")
	wantCode(t, err, cloudimage.ENOTFOUND)
	if _, err := s.Member(ctx, bare.ID, "tenant-a"); err != nil {
		t.Fatalf("deleting a membership of one image removed that of another: %v", err)
	}
	got, err = s.Members(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, m := range got {
		left = append(left, m.ProjectID)
	}
	if !slices.Equal(left, []string{"Tenant-b", "tenant-b", "tenant-c"}) {
		t.Fatalf("members after a delete: got %v", left)
	}
	// Deleted images keep their members, as they keep their row.
	if _, err := s.UpdateImage(ctx, img.ID, func(img *cloudimage.Image) error {
		return img.SetStatus(cloudimage.StatusDeleted, later)
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Members(ctx, img.ID); err != nil || len(got) != 3 {
		t.Fatalf("members of a deleted image: got %d, %v; want 3", len(got), err)
	}
}

// testUpdateMemberAtomic checks that concurrent read-modify-writes of one
// membership all take effect, one after the other.
func testUpdateMemberAtomic(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	img := newImage(p.ID, base)
	mustCreate(t, s, img)
	m := &cloudimage.Member{ImageID: img.ID, ProjectID: "tenant", Status: cloudimage.MemberPending, CreatedAt: base, UpdatedAt: base}
	if err := s.AddMember(ctx, m, cloudimage.MaxMembers); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.UpdateMember(ctx, img.ID, "tenant", func(m *cloudimage.Member) error {
				m.UpdatedAt = m.UpdatedAt.Add(time.Microsecond)
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Member(ctx, img.ID, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	if want := base.Add(n * time.Microsecond); !got.UpdatedAt.Equal(want) {
		t.Fatalf("got updated_at %v after %d concurrent increments, want %v", got.UpdatedAt, n, want)
	}
}

// testMembersMax checks that AddMember refuses a member beyond max in the
// same transaction as it counts them: adds racing each other cannot pass
// it together.
func testMembersMax(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	img := newImage(p.ID, base)
	img.Visibility = cloudimage.VisibilityShared
	mustCreate(t, s, img)
	const max = 3
	errs := make(chan error, 12)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.AddMember(ctx, &cloudimage.Member{ImageID: img.ID, ProjectID: fmt.Sprint("tenant-", i),
				Status: cloudimage.MemberPending, CreatedAt: base, UpdatedAt: base}, max)
		}()
	}
	wg.Wait()
	close(errs)
	added := 0
	for err := range errs {
		switch cloudimage.ErrorCode(err) {
		case "":
			added++
		case cloudimage.ETOOLARGE:
		default:
			t.Errorf("AddMember: %v, want nil or %s", err, cloudimage.ETOOLARGE)
		}
	}
	got, err := s.Members(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if added != max || len(got) != max {
		t.Errorf("%d adds succeeded and the image has %d members; want %d of each", added, len(got), max)
	}
	// The limit is the image's: another image still takes members.
	other := newImage(p.ID, base.Add(time.Second))
	other.Visibility = cloudimage.VisibilityShared
	mustCreate(t, s, other)
	if err := s.AddMember(ctx, &cloudimage.Member{ImageID: other.ID, ProjectID: "tenant-0",
		Status: cloudimage.MemberPending, CreatedAt: base, UpdatedAt: base}, max); err != nil {
		t.Errorf("add to another image: %v", err)
	}
}
