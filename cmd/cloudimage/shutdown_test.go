package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/client"
	"github.com/cloudimage/cloudimage/sqlite"
)

// TestShutdownDuringUpload stops the server while an upload is stalled
// half way: the shutdown must cut it within its timeout, return the image
// to queued before the database closes, and a new start must take a
// retried upload.
func TestShutdownDuringUpload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword}
	s := startServer(t, dir, env, "--shutdown-timeout", "500ms")
	c := s.adminClient(t)
	img, err := c.CreateImage(t.Context(), map[string]any{
		"name": "stalled", "disk_format": "raw", "container_format": "bare", "os_type": "linux",
	})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	uploaded := make(chan error, 1)
	go func() { uploaded <- c.UploadImage(context.Background(), img.ID, pr, 1<<20) }()
	if _, err := pw.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, img.ID, "saving")

	stopped := time.Now()
	s.Stop(t)
	if d := time.Since(stopped); d > 15*time.Second {
		t.Errorf("shutdown took %v with a 500ms timeout", d)
	}
	pw.CloseWithError(io.ErrClosedPipe)
	if err := <-uploaded; err == nil {
		t.Error("the cut upload reported success")
	}
	if got := statusInDB(t, dir, img.ID); got != cloudimage.StatusQueued {
		t.Errorf("after shutdown the image is %s in the database, want queued", got)
	}

	first := s
	s = startServer(t, dir, env)
	s.AppKey, s.Password = first.AppKey, first.Password
	c = s.adminClient(t)
	if err := c.UploadImage(t.Context(), img.ID, io.LimitReader(zeros{}, 1000), 1000); err != nil {
		t.Fatalf("retried upload after restart: %v", err)
	}
	waitStatus(t, c, img.ID, "active")
}

// TestRestartRecoversSavingImages plays a process killed mid-upload: the
// database says saving when the server starts, and the start must return
// the image to queued so that the upload can be retried.
func TestRestartRecoversSavingImages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword}
	s := startServer(t, dir, env)
	img, err := s.adminClient(t).CreateImage(t.Context(), map[string]any{
		"name": "killed", "disk_format": "raw", "container_format": "bare", "os_type": "linux",
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Stop(t)

	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "cloudimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateImage(t.Context(), img.ID, func(img *cloudimage.Image) error {
		return img.SetStatus(cloudimage.StatusSaving, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	first := s
	s = startServer(t, dir, env)
	s.AppKey, s.Password = first.AppKey, first.Password
	c := s.adminClient(t)
	waitStatus(t, c, img.ID, "queued")
	if err := c.UploadImage(t.Context(), img.ID, io.LimitReader(zeros{}, 10), 10); err != nil {
		t.Fatalf("upload after recovery: %v", err)
	}
	waitStatus(t, c, img.ID, "active")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// waitStatus waits up to a few seconds for the image to reach status.
func waitStatus(t *testing.T, c *client.Client, id, status string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		img, err := c.GetImage(t.Context(), id)
		if err != nil {
			t.Fatalf("get image %s: %v", id, err)
		}
		if img.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s is %s after %s, want %s", id, img.Status, waitTimeout, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusInDB reads an image's status from the database under dataDir
// while no server runs.
func statusInDB(t *testing.T, dataDir, id string) cloudimage.Status {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(dataDir, "cloudimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	img, err := db.Image(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return img.Status
}
