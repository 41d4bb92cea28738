package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/google/uuid"
)

func TestInsertImages(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := db.CreateProject(ctx, &cloudimage.Project{ID: "p", Name: "p", AppKey: "k", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	var imgs []*cloudimage.Image
	for range 3 {
		imgs = append(imgs, &cloudimage.Image{
			ID: uuid.NewString(), Name: "n", Status: cloudimage.StatusQueued,
			Visibility: cloudimage.VisibilityPrivate, Owner: "p", Tags: []string{"x", "y"},
			CreatedAt: now, UpdatedAt: now,
		})
	}
	if err := db.InsertImages(ctx, imgs); err != nil {
		t.Fatal(err)
	}
	got, err := db.Image(ctx, imgs[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tags) != 2 || got.Name != "n" {
		t.Errorf("got name %q, tags %v; want n, [x y]", got.Name, got.Tags)
	}
	if err := db.InsertImages(ctx, imgs[:1]); cloudimage.ErrorCode(err) != cloudimage.ECONFLICT {
		t.Errorf("insert again: got %v, want ECONFLICT", err)
	}
}
