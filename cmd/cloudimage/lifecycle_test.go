package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/client"
)

// uploadImage creates an image through c and uploads data to it.
func uploadImage(t *testing.T, c *client.Client, data string) string {
	t.Helper()
	img, err := c.CreateImage(t.Context(), map[string]any{"name": "lifecycle", "disk_format": "raw",
		"container_format": "bare", "os_type": "linux", "nhncloud_allow_download": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadImage(t.Context(), img.ID, strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return img.ID
}

// blobFile is where serve keeps the data stored under key.
func blobFile(dataDir, key string) string {
	return filepath.Join(dataDir, "images", key[:2], key)
}

// TestImageRestoreCommand deletes an image on a server with delayed
// delete and brings it back with "image restore", which only an admin of
// its project may use.
func TestImageRestoreCommand(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword},
		"--delayed-delete", "--scrub-interval", "1h")
	env := s.adminEnv()
	f := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(f, []byte("restorable disk"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := fields(cliOK(t, env, "image", "upload", "--os-type", "linux", f))["id"]
	if out := cliOK(t, env, "image", "delete", id); out != "deleted "+id+"\n" {
		t.Errorf("image delete printed %q", out)
	}
	if _, err := cli(t, env, "image", "show", id); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Fatalf("show a pending_delete image: %v, want not found", err)
	}

	out := cliOK(t, nil, "--data-dir", s.DataDir, "user", "create", "--project", "admin",
		"--role", "member", "--password", "member-password", "mia")
	if !strings.Contains(out, "mia") {
		t.Fatalf("user create printed %q", out)
	}
	member := with(env, "CLOUDIMAGE_USERNAME", "mia", "CLOUDIMAGE_PASSWORD", "member-password")
	if _, err := cli(t, member, "image", "restore", id); cloudimage.ErrorCode(err) != cloudimage.EFORBIDDEN {
		t.Errorf("restore by a member: %v, want forbidden", err)
	}

	unknown := "00000000-0000-4000-8000-000000000000"
	out, err := cli(t, env, "image", "restore", unknown, id)
	if out != "restored "+id+"\n" {
		t.Errorf("image restore printed %q, want the one it restored", out)
	}
	if err == nil || !strings.Contains(err.Error(), unknown) || cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("restore of an unknown image among others: %v, want not found naming it", err)
	}
	if got := fields(cliOK(t, env, "image", "show", id))["status"]; got != "active" {
		t.Errorf("after restore the image is %q, want active", got)
	}
	if _, err := cli(t, env, "image", "restore", id); cloudimage.ErrorCode(err) != cloudimage.ECONFLICT {
		t.Errorf("restore of an active image: %v, want conflict", err)
	}
}

// TestLifecycleFlags checks where the delayed delete and cleanup settings
// come from: a flag over its variable over the default, all logged in the
// config line, and refusals of values that make no sense.
func TestLifecycleFlags(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), map[string]string{
		"CLOUDIMAGE_DELAYED_DELETE": "true",
		"CLOUDIMAGE_SCRUB_DELAY":    "5m",
		"CLOUDIMAGE_SCRUB_INTERVAL": "bogus", // its flag is given, so it does not matter
		"CLOUDIMAGE_ORPHAN_GRACE":   "3h",
		"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword,
	}, "--scrub-interval", "7s", "--orphan-grace", "0s")
	s.Stop(t)
	checkConfigLog(t, s, "delayed_delete=true", "scrub_delay=5m0s", "scrub_interval=7s", "orphan_grace=0s")

	d := startServer(t, t.TempDir(), nil)
	d.Stop(t)
	checkConfigLog(t, d, "delayed_delete=false", "scrub_delay=1h0m0s", "scrub_interval=1m0s",
		"orphan_grace=1h0m0s")

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad interval in env", map[string]string{"CLOUDIMAGE_SCRUB_INTERVAL": "bogus"}, nil, "CLOUDIMAGE_SCRUB_INTERVAL"},
		{"bad delay in env", map[string]string{"CLOUDIMAGE_SCRUB_DELAY": "soon"}, nil, "CLOUDIMAGE_SCRUB_DELAY"},
		{"bad grace in env", map[string]string{"CLOUDIMAGE_ORPHAN_GRACE": "1"}, nil, "CLOUDIMAGE_ORPHAN_GRACE"},
		{"bad boolean in env", map[string]string{"CLOUDIMAGE_DELAYED_DELETE": "maybe"}, nil, "CLOUDIMAGE_DELAYED_DELETE"},
		{"zero interval", nil, []string{"--scrub-interval", "0s"}, "scrub interval must be positive"},
		{"negative delay", nil, []string{"--scrub-delay", "-1s"}, "scrub delay must not be negative"},
		{"negative grace", nil, []string{"--orphan-grace", "-1m"}, "orphan grace must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, tc.args...)
			err := run(ctx, args, getenvFrom(tc.env), nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("serve %v: %v, want an error with %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestServeSweepsAtStart checks that serve removes data no image
// references before it listens: with --orphan-grace 0s any such file,
// however new, and with the default grace only old ones. Data of an
// active image stays.
func TestServeSweepsAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword}
	s := startServer(t, dir, env)
	id := uploadImage(t, s.adminClient(t), "referenced data")
	s.Stop(t)

	orphan := "00000000-0000-4000-8000-00000000000a"
	for _, path := range []string{blobFile(dir, orphan), blobFile(dir, id+".staged")} {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("left by a crash"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	young := startServer(t, dir, env) // the default grace spares new files
	young.Stop(t)
	if _, err := os.Stat(blobFile(dir, orphan)); err != nil {
		t.Fatalf("a young orphan was removed despite the grace: %v", err)
	}

	swept := startServer(t, dir, env, "--orphan-grace", "0s")
	swept.AppKey, swept.Password = s.AppKey, testAdminPassword // printed at the first start only
	for _, key := range []string{orphan, id + ".staged"} {
		if _, err := os.Stat(blobFile(dir, key)); !os.IsNotExist(err) {
			t.Errorf("orphan %s still there once the server listens: %v", key, err)
		}
		removed := regexp.MustCompile(`msg="removed orphaned data" .*key=` + regexp.QuoteMeta(key) + ` `)
		if !removed.MatchString(swept.Stderr.String()) {
			t.Errorf("no warning names the removed orphan %s:\n%s", key, swept.Stderr)
		}
	}
	rc, err := swept.adminClient(t).DownloadImage(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "referenced data" {
		t.Errorf("the active image's data after the sweep: %q", got)
	}
}

// TestServeScrubs checks that serve's janitor scrubs a deleted image once
// its delay is over, and logs it.
func TestServeScrubs(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword},
		"--delayed-delete", "--scrub-delay", "0s", "--scrub-interval", "50ms")
	c := s.adminClient(t)
	id := uploadImage(t, c, "to be scrubbed")
	if _, err := os.Stat(blobFile(s.DataDir, id)); err != nil {
		t.Fatalf("uploaded data is not where the test expects it: %v", err)
	}
	if err := c.DeleteImage(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	s.Stderr.waitFor(t, regexp.MustCompile(`msg="scrubbed image" .*image=`+id), exited)
	if _, err := os.Stat(blobFile(s.DataDir, id)); !os.IsNotExist(err) {
		t.Errorf("scrubbed image's data is still there: %v", err)
	}
	if !bytes.Contains([]byte(s.Stderr.String()), []byte(`msg="janitor lease changed hands"`)) {
		t.Errorf("the janitor did not log taking its lease:\n%s", s.Stderr)
	}
}
