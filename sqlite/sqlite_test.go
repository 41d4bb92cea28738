package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/cloudimage/cloudimage/storetest"
)

func open(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cloudimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.TestMetadataStore(t, func(t *testing.T) storetest.MetadataStore { return open(t) })
}

func TestAuthFailureConformance(t *testing.T) {
	storetest.TestAuthFailureStore(t, func(t *testing.T) cloudimage.AuthFailureStore { return open(t) })
}

// TestReopen checks that migrations are applied once and data persists.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cloudimage.db")
	for i := range 3 {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		projects, err := db.Projects(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(projects) != i {
			t.Fatalf("open #%d: got %d projects, want %d", i+1, len(projects), i)
		}
		p := &cloudimage.Project{ID: fmt.Sprintf("%032d", i), Name: fmt.Sprint("p", i), AppKey: fmt.Sprint("k", i)}
		if err := db.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

// TestMembersCascade checks the schema's promise that an image's members
// and tags go with its row. The service never deletes image rows (a
// deleted image keeps its row), so the row is deleted here by hand,
// through a connection of its own, as an operator's cleanup would.
func TestMembersCascade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cloudimage.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := &cloudimage.Project{ID: "p", Name: "p", AppKey: "k"}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"gone", "kept"} {
		img := &cloudimage.Image{ID: id, Name: id, Status: cloudimage.StatusQueued, Visibility: cloudimage.VisibilityShared,
			Owner: p.ID, Tags: []string{"t"}, Properties: map[string]string{}, CreatedAt: at, UpdatedAt: at}
		if err := db.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		for _, member := range []string{"m1", "m2"} {
			m := &cloudimage.Member{ImageID: id, ProjectID: member, Status: cloudimage.MemberAccepted, CreatedAt: at, UpdatedAt: at}
			if err := db.AddMember(ctx, m, cloudimage.MaxMembers); err != nil {
				t.Fatal(err)
			}
		}
	}

	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `DELETE FROM images WHERE id = 'gone'`); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"image_members", "image_tags"} {
		var n int
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE image_id = 'gone'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s keeps %d rows of a deleted image", table, n)
		}
	}
	if _, err := db.Members(ctx, "gone"); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("members of a deleted row: got %v, want ENOTFOUND", err)
	}
	if _, err := db.Member(ctx, "gone", "m1"); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("member of a deleted row: got %v, want ENOTFOUND", err)
	}
	if ms, err := db.Members(ctx, "kept"); err != nil || len(ms) != 2 {
		t.Errorf("members of the other image: got %d, %v; want 2", len(ms), err)
	}
}

// BenchmarkListImages measures one page of 100 of the default view and
// of a name-sorted one over 100,000 images, most of them the viewer's,
// some public, a few shared with it, as the v1.0 benchmark's catalog is.
func BenchmarkListImages(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, p := range []string{"a", "b"} {
		if err := db.CreateProject(ctx, &cloudimage.Project{ID: p, Name: p, AppKey: p}); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	const n = 100_000
	imgs := make([]*cloudimage.Image, n)
	for i := range imgs {
		owner, vis := "a", cloudimage.VisibilityPrivate
		switch {
		case i%20 == 0:
			owner, vis = "b", cloudimage.VisibilityPublic
		case i%1000 == 1:
			owner, vis = "b", cloudimage.VisibilityShared
		case i%2 == 0:
			vis = cloudimage.VisibilityShared
		}
		size := int64(1<<30 + i)
		imgs[i] = &cloudimage.Image{
			ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), Name: fmt.Sprintf("image-%06d", i%5000),
			Status: cloudimage.StatusActive, Visibility: vis, DiskFormat: "qcow2", ContainerFormat: "bare",
			Size: &size, Owner: owner, Properties: map[string]string{"os_type": "linux"},
			CreatedAt: base.Add(time.Duration(i) * time.Microsecond), UpdatedAt: base,
		}
	}
	if err := db.InsertImages(ctx, imgs); err != nil {
		b.Fatal(err)
	}
	for i, img := range imgs {
		if i%1000 == 1 {
			m := &cloudimage.Member{ImageID: img.ID, ProjectID: "a", Status: cloudimage.MemberAccepted, CreatedAt: base, UpdatedAt: base}
			if err := db.AddMember(ctx, m, cloudimage.MaxMembers); err != nil {
				b.Fatal(err)
			}
		}
	}
	byName := cloudimage.CompleteSort([]cloudimage.Sort{{Key: cloudimage.SortName}}, false)
	for _, c := range []struct {
		name string
		q    cloudimage.ImageQuery
	}{
		{"FirstPage", cloudimage.ImageQuery{Viewer: "a", Limit: 100, Tags: true}},
		{"DeepPage", cloudimage.ImageQuery{Viewer: "a", Limit: 100, Tags: true, After: imgs[10_000]}},
		{"ByNameDeepPage", cloudimage.ImageQuery{Viewer: "a", Limit: 100, Tags: true, Sort: byName, After: imgs[10_000]}},
	} {
		b.Run(c.name, func(b *testing.B) {
			// CPU time as well as wall time: on a shared machine the wall
			// time says as much about the neighbours as about the query.
			start := cpuTime()
			for b.Loop() {
				page, err := db.ListImages(ctx, c.q)
				if err != nil || len(page) != 100 {
					b.Fatalf("got %d images, %v", len(page), err)
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestPing checks that Ping answers for an open database and fails for a
// closed one.
func TestPing(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cloudimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	db.Close()
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("Ping of a closed database: no error")
	}
}
