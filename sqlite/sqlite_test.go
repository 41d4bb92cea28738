package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

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
