package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// VersionedStore is a metadata store that is also a Versioner.
type VersionedStore interface {
	MetadataStore
	cloudimage.Versioner
}

// TestVersioner runs the Versioner conformance suite. open must return a
// new, empty store and a second, separate handle on the very same data
// (another process's view, as a second replica or a CLI would have it).
func TestVersioner(t *testing.T, open func(t *testing.T) (s, other VersionedStore)) {
	t.Run("StableWithoutChange", func(t *testing.T) { testVersionStable(t, open) })
	t.Run("EveryWriteMovesIt", func(t *testing.T) { testVersionEveryWrite(t, open) })
}

func version(t *testing.T, s cloudimage.Versioner) uint64 {
	t.Helper()
	v, err := s.Version(context.Background())
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	return v
}

// testVersionStable checks that reads do not move the version. A store
// may count changes made beside it (PostgreSQL counts every database of
// its cluster, where other tests may be writing), so the check passes if
// any of several tries sees the version stay put across the reads.
func testVersionStable(t *testing.T, open func(t *testing.T) (s, other VersionedStore)) {
	ctx := context.Background()
	s, other := open(t)
	p := mustProject(t, s, "p")
	mustCreate(t, s, newImage(p.ID, base))
	var moved []string
	for range 20 {
		v := version(t, s)
		for range 3 {
			if _, err := s.ListImages(ctx, cloudimage.ImageQuery{Viewer: p.ID, Limit: 10, Tags: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Projects(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Image(ctx, p.ID); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
				t.Fatalf("an unknown image: %v, want ENOTFOUND", err)
			}
		}
		got := version(t, s)
		if got == v {
			return
		}
		moved = append(moved, fmt.Sprintf("%d to %d", v, got))
	}
	t.Fatalf("with nothing written, the version moved across reads in every try: %v", moved)
}

// testVersionEveryWrite checks that each kind of change, made through
// either handle, gives a new, greater version.
func testVersionEveryWrite(t *testing.T, open func(t *testing.T) (s, other VersionedStore)) {
	ctx := context.Background()
	s, other := open(t)
	p := mustProject(t, s, "p")
	q := mustProject(t, s, "q")
	u := &cloudimage.User{ID: uuidHex(), Name: "u", PasswordHash: "x", CreatedAt: base}
	img := newImage(p.ID, base)
	token := &cloudimage.Token{Hash: "h1", User: u, Project: p, IssuedAt: base, ExpiresAt: base.Add(time.Hour)}
	writes := []struct {
		name string
		do   func(MetadataStore) error
	}{
		{"CreateUser", func(s MetadataStore) error { return s.CreateUser(ctx, u) }},
		{"AssignRole", func(s MetadataStore) error { return s.AssignRole(ctx, u.ID, p.ID, cloudimage.RoleMember) }},
		{"CreateToken", func(s MetadataStore) error { return s.CreateToken(ctx, token) }},
		{"CreateImage", func(s MetadataStore) error { return s.CreateImage(ctx, img) }},
		{"UpdateImage", func(s MetadataStore) error {
			_, err := s.UpdateImage(ctx, img.ID, func(i *cloudimage.Image) error { i.Name = "renamed"; return nil })
			return err
		}},
		{"UpdateTags", func(s MetadataStore) error {
			_, err := s.UpdateImage(ctx, img.ID, func(i *cloudimage.Image) error { i.Tags = []string{"x"}; return nil })
			return err
		}},
		{"AddMember", func(s MetadataStore) error {
			return s.AddMember(ctx, &cloudimage.Member{ImageID: img.ID, ProjectID: q.ID,
				Status: cloudimage.MemberPending, CreatedAt: base, UpdatedAt: base}, cloudimage.MaxMembers)
		}},
		{"UpdateMember", func(s MetadataStore) error {
			_, err := s.UpdateMember(ctx, img.ID, q.ID, func(m *cloudimage.Member) error {
				m.Status = cloudimage.MemberAccepted
				return nil
			})
			return err
		}},
		{"DeleteMember", func(s MetadataStore) error { return s.DeleteMember(ctx, img.ID, q.ID) }},
		{"DeleteToken", func(s MetadataStore) error { return s.DeleteToken(ctx, token.Hash) }},
	}
	for _, via := range []struct {
		name  string
		store MetadataStore
	}{{"same handle", s}, {"other handle", other}} {
		for _, w := range writes {
			before := version(t, s)
			if err := w.do(via.store); err != nil {
				t.Fatalf("%s through the %s: %v", w.name, via.name, err)
			}
			if after := version(t, s); after <= before {
				t.Errorf("%s through the %s: version went from %d to %d, want it greater", w.name, via.name, before, after)
			}
		}
		// The second round writes the same things again.
		img = newImage(p.ID, base)
		u = &cloudimage.User{ID: uuidHex(), Name: "u2", PasswordHash: "x", CreatedAt: base}
		token = &cloudimage.Token{Hash: "h2", User: u, Project: p, IssuedAt: base, ExpiresAt: base.Add(time.Hour)}
	}
}
