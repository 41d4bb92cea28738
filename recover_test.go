package cloudimage_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
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
		img, err := svc.Create(ctx, caller, cloudimage.ImageCreate{DiskFormat: "raw", ContainerFormat: "bare",
			Properties: linux()})
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

// restart returns a new service over f's database and a freshly opened
// file store, as a process started after f's stopped would have.
func (f *fixture) restart(t *testing.T, opts ...cloudimage.ServiceOption) *cloudimage.ImageService {
	t.Helper()
	blobs, err := fsblob.Open(f.blobDir)
	if err != nil {
		t.Fatalf("reopen blob store: %v", err)
	}
	svc := cloudimage.NewImageService(f.db, blobs, f.logger, opts...)
	t.Cleanup(svc.Close) // before the database closes
	return svc
}

// TestCloseInterruptsImport stops a service while an import stores its
// data; the image stays importing with its staged data, and the next
// start resumes the import to active.
func TestCloseInterruptsImport(t *testing.T) {
	t.Parallel()
	f, h := newHookFixture(t)
	g := newGate(t)
	h.set(false, g.hook) // holds the import until Close cancels it
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Properties: downloadable()})
	data := bytes.Repeat([]byte("resume me "), 100_000)
	f.stage(t, f.memberA, img.ID, data)
	key := f.stagedKey(t, img.ID)
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, directImport); err != nil {
		t.Fatalf("Import: %v", err)
	}
	g.wait(t)

	f.svc.Close()
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusImporting)
	f.onlyData(t, key)
	err := f.svc.Import(f.ctx, f.memberA, img.ID, directImport)
	wantCode(t, err, cloudimage.ECONFLICT)

	svc := f.restart(t)
	n, err := svc.RecoverUploads(f.ctx)
	if err != nil {
		t.Fatalf("RecoverUploads: %v", err)
	}
	if n != 1 {
		t.Errorf("RecoverUploads repaired %d images, want 1", n)
	}
	active := f.waitStatus(t, img.ID, cloudimage.StatusActive)
	svc.Close()
	f.svc = svc
	f.wantData(t, f.memberA, active, data)
	f.onlyData(t, img.ID)
}

// TestRecoverTransfers checks what RecoverUploads does with images that a
// stopped process left staging or importing.
func TestRecoverTransfers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	setStatus := func(id string, st cloudimage.Status) {
		t.Helper()
		if _, err := f.db.UpdateImage(f.ctx, id, func(img *cloudimage.Image) error {
			return img.SetStatus(st, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Stage was cut off before its data was complete.
	uploadingBare := f.create(t, f.memberA, cloudimage.ImageCreate{})
	setStatus(uploadingBare.ID, cloudimage.StatusUploading)
	// Staged, waiting for its import call.
	uploadingStaged := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.stage(t, f.memberA, uploadingStaged.ID, []byte("waiting"))
	// Staged, but the stage was cut off before it recorded the data's
	// size: the data is whole, yet no import would take it.
	unrecorded := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.stage(t, f.memberA, unrecorded.ID, []byte("unrecorded"))
	if _, err := f.db.UpdateImage(f.ctx, unrecorded.ID, func(img *cloudimage.Image) error {
		img.Size = nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A web-download that was cut off: nothing to resume from.
	importingBare := f.create(t, f.memberA, cloudimage.ImageCreate{})
	setStatus(importingBare.ID, cloudimage.StatusImporting)
	// ... which may have stored its data before it could say so.
	if _, err := f.blobs.Put(f.ctx, importingBare.ID, strings.NewReader("downloaded, never recorded")); err != nil {
		t.Fatal(err)
	}
	// A glance-direct import that was cut off.
	importingStaged := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.stage(t, f.memberA, importingStaged.ID, []byte("resumed"))
	setStatus(importingStaged.ID, cloudimage.StatusImporting)
	queued := f.create(t, f.memberA, cloudimage.ImageCreate{})
	active := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.upload(t, f.memberA, active.ID, []byte("active"))
	waitingKey := f.stagedKey(t, uploadingStaged.ID)
	f.svc.Close()

	svc := f.restart(t)
	n, err := svc.RecoverUploads(f.ctx)
	if err != nil {
		t.Fatalf("RecoverUploads: %v", err)
	}
	if n != 4 {
		t.Errorf("RecoverUploads repaired %d images, want 4", n)
	}
	for _, img := range []*cloudimage.Image{uploadingBare, importingBare, unrecorded} {
		got := f.stored(t, img.ID)
		wantStatus(t, got, cloudimage.StatusQueued)
		if got.Size != nil {
			t.Errorf("image %s: queued with size %s", img.ID, fmtPtr(got.Size))
		}
	}
	wantStatus(t, f.stored(t, uploadingStaged.ID), cloudimage.StatusUploading)
	f.waitStatus(t, importingStaged.ID, cloudimage.StatusActive)
	wantStatus(t, f.stored(t, queued.ID), cloudimage.StatusQueued)
	wantStatus(t, f.stored(t, active.ID), cloudimage.StatusActive)
	svc.Close() // the resumed import is done
	f.onlyData(t, active.ID, importingStaged.ID, waitingKey)
	if b := f.blob(t, importingStaged.ID); string(b) != "resumed" {
		t.Errorf("resumed import stored %q, want %q", b, "resumed")
	}

	// The staged image imports once asked; the queued ones start over.
	svc = f.restart(t)
	if n, err := svc.RecoverUploads(f.ctx); err != nil || n != 0 {
		t.Errorf("second RecoverUploads: %d, %v; want 0, nil", n, err)
	}
	f.svc = svc
	if err := svc.Import(f.ctx, f.memberA, uploadingStaged.ID, directImport); err != nil {
		t.Fatalf("Import of the staged image: %v", err)
	}
	f.waitStatus(t, uploadingStaged.ID, cloudimage.StatusActive)
	f.stage(t, f.memberA, uploadingBare.ID, []byte("again"))
	f.upload(t, f.memberA, importingBare.ID, []byte("again"))
}
