package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/google/uuid"
)

// lockDatabase takes the write lock of the database file at path on a
// connection of its own, as another process writing the file would, and
// returns the function that releases it.
func lockDatabase(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("take the lock: %v", err)
	}
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Errorf("release the lock: %v", err)
		}
		conn.Close()
		raw.Close()
	}
	t.Cleanup(release)
	return release
}

// TestBusyDatabase holds the database's write lock from another
// connection: each write waits the configured busy timeout, retrying,
// then fails with EUNAVAILABLE and writes nothing; reads go on beside the
// lock, and once it is released the same writes succeed.
func TestBusyDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cloudimage.db")
	const busy = 300 * time.Millisecond
	db, err := sqlite.OpenWith(ctx, path, sqlite.Options{BusyTimeout: busy})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := &cloudimage.Project{ID: "0123456789abcdef0123456789abcdef", Name: "p", AppKey: "key", CreatedAt: time.Now()}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	img := &cloudimage.Image{ID: uuid.NewString(), Status: cloudimage.StatusQueued,
		Visibility: cloudimage.VisibilityPrivate, Owner: p.ID, CreatedAt: now, UpdatedAt: now}
	project := &cloudimage.Project{ID: "fedcba9876543210fedcba9876543210", Name: "q", AppKey: "key-q", CreatedAt: now}

	writes := []struct {
		name string
		do   func() error
	}{
		{"create image", func() error { return db.CreateImage(ctx, img) }},
		{"create project", func() error { return db.CreateProject(ctx, project) }},
		{"delete expired tokens", func() error { _, err := db.DeleteExpiredTokens(ctx, now); return err }},
	}
	release := lockDatabase(t, path)
	for _, w := range writes {
		start := time.Now()
		err := w.do()
		took := time.Since(start)
		if got := cloudimage.ErrorCode(err); got != cloudimage.EUNAVAILABLE {
			t.Fatalf("%s while locked: %v (code %s), want %s", w.name, err, got, cloudimage.EUNAVAILABLE)
		}
		if msg := cloudimage.ErrorMessage(err); msg != "The database is busy; try again later." {
			t.Errorf("%s while locked: message %q", w.name, msg)
		}
		if !strings.Contains(err.Error(), "SQLITE_BUSY") {
			t.Errorf("%s while locked: %v keeps no cause for the log", w.name, err)
		}
		// It waited, retrying, for about the busy timeout and no longer.
		if took < busy*2/3 || took > busy+5*time.Second {
			t.Errorf("%s while locked failed after %v, want about %v", w.name, took, busy)
		}
	}
	if _, err := db.Image(ctx, img.ID); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("read beside the lock: %v, want ENOTFOUND (nothing written, reads still work)", err)
	}
	release()
	for _, w := range writes {
		if err := w.do(); err != nil {
			t.Errorf("%s after the lock is released: %v", w.name, err)
		}
	}
	if _, err := db.Image(ctx, img.ID); err != nil {
		t.Errorf("image created after the lock is released: %v", err)
	}
}
