package main

import (
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// TestQuotaConfig checks that serve's quota settings reach the service:
// CLOUDIMAGE_QUOTA_IMAGES is obeyed, --quota-bytes wins over
// CLOUDIMAGE_QUOTA_BYTES, the effective quotas are logged, and a request
// beyond either is 413 to the client.
func TestQuotaConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword,
		"CLOUDIMAGE_QUOTA_IMAGES":   "1",
		"CLOUDIMAGE_QUOTA_BYTES":    "1000",
	}
	s := startServer(t, t.TempDir(), env, "--quota-bytes", "5")
	c := s.adminClient(t)
	attrs := map[string]any{"name": "q", "disk_format": "raw", "container_format": "bare", "os_type": "linux"}
	img, err := c.CreateImage(t.Context(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateImage(t.Context(), attrs); cloudimage.ErrorCode(err) != cloudimage.ETOOLARGE {
		t.Errorf("a second image under a quota of 1: %v, want %s", err, cloudimage.ETOOLARGE)
	}
	err = c.UploadImage(t.Context(), img.ID, strings.NewReader("six b!"), 6)
	if cloudimage.ErrorCode(err) != cloudimage.ETOOLARGE {
		t.Errorf("6 bytes under a quota of 5: %v, want %s", err, cloudimage.ETOOLARGE)
	}
	if err := c.UploadImage(t.Context(), img.ID, strings.NewReader("five!"), 5); err != nil {
		t.Errorf("5 bytes under a quota of 5: %v", err)
	}
	s.Stop(t)
	if log := s.Stderr.String(); !strings.Contains(log, "quota_images=1 quota_bytes=5") {
		t.Errorf("config log lacks quota_images=1 quota_bytes=5:\n%s", log)
	}

	// A negative quota is a configuration error.
	_, err = cli(t, env, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--quota-images", "-1")
	if err == nil || !strings.Contains(err.Error(), "quotas must not be negative") {
		t.Errorf("serve with --quota-images -1: %v, want a refusal", err)
	}
}
