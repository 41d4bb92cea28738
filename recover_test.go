package cloudimage_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
	"github.com/cloudimage/cloudimage/sqlite"
)

// TestRecoverUploads simulates a process that stopped mid-upload, once
// before and once after its data was committed, and checks that a restart
// returns both images to queued, with no data, ready for a retry.
func TestRecoverUploads(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs, err := fsblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	identity := cloudimage.NewIdentityService(db, time.Hour)
	p, err := identity.CreateProject(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	caller := &cloudimage.Caller{ProjectID: p.ID, Roles: []cloudimage.Role{cloudimage.RoleMember}}
	svc := cloudimage.NewImageService(db, blobs, slog.New(slog.DiscardHandler))

	var ids []string
	for i := range 3 {
		img, err := svc.Create(ctx, caller, cloudimage.ImageCreate{DiskFormat: "raw", ContainerFormat: "bare"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, img.ID)
		if i == 2 {
			break // stays queued
		}
		// What a crashed upload leaves: the image in saving, and for the
		// second one its data already committed.
		if _, err := db.UpdateImage(ctx, img.ID, func(img *cloudimage.Image) error {
			return img.SetStatus(cloudimage.StatusSaving, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, err := blobs.Put(ctx, img.ID, bytes.NewReader([]byte("complete"))); err != nil {
				t.Fatal(err)
			}
		}
	}

	n, err := svc.RecoverUploads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("recovered %d uploads, want 2", n)
	}
	for _, id := range ids {
		img, err := svc.Get(ctx, caller, id)
		if err != nil {
			t.Fatal(err)
		}
		if img.Status != cloudimage.StatusQueued || img.Size != nil {
			t.Fatalf("image %s: got status %s size %v, want queued with no size", id, img.Status, img.Size)
		}
		if _, err := blobs.Open(ctx, id); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
			t.Fatalf("image %s: data left behind (%v)", id, err)
		}
	}
	// The upload can now be retried.
	if _, err := svc.Upload(ctx, caller, ids[1], bytes.NewReader([]byte("again"))); err != nil {
		t.Fatalf("retry after recovery: %v", err)
	}
	if n, err := svc.RecoverUploads(ctx); err != nil || n != 0 {
		t.Fatalf("second recovery: got %d, %v; want 0, nil", n, err)
	}
}
