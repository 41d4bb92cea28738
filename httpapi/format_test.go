package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// qcow2Head is the start of a qcow2 image of 1 MiB without a backing
// file: magic, version 3, and the size at byte 24.
var qcow2Head = "QFI\xfb\x00\x00\x00\x03" + strings.Repeat("\x00", 16) +
	"\x00\x00\x00\x00\x00\x10\x00\x00" + strings.Repeat("\x00", 480)

// TestUploadFormatMismatch checks the HTTP face of the format check: data
// that is not in its image's disk_format is refused with 400 in Glance's
// format, naming both formats, on upload and on stage, and the image
// stays queued; with the check off the same data is taken.
func TestUploadFormatMismatch(t *testing.T) {
	e := newEnv(t)
	token := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, token, "mismatch", "disk_format", "raw")
	for _, path := range []string{"/file", "/stage"} {
		status, hdr, body := e.call(t, "PUT", "/v2/images/"+id+path, token, qcow2Head,
			"Content-Type", "application/octet-stream")
		if want := "Image data is qcow2 but disk_format is raw."; status != http.StatusBadRequest ||
			!strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || !strings.Contains(string(body), want) {
			t.Errorf("PUT %s of qcow2 data to a raw image: %d %s %q, want 400 saying %q",
				path, status, hdr.Get("Content-Type"), body, want)
		}
		if got := e.getImage(t, token, id)["status"]; got != "queued" {
			t.Errorf("after the refused PUT %s the image is %v, want queued", path, got)
		}
	}
	qcow2 := e.newImage(t, token, "qcow2", "disk_format", "qcow2")
	e.upload(t, token, qcow2, []byte(qcow2Head))
	if got := fmt.Sprint(e.getImage(t, token, qcow2)["virtual_size"]); got != "1048576" {
		t.Errorf("virtual_size %v, want the header's %d", got, 1<<20)
	}

	e = newEnv(t, cloudimage.WithRequireFormatMatch(false))
	token = e.token(t, e.a, cloudimage.RoleMember)
	e.upload(t, token, e.newImage(t, token, "unchecked", "disk_format", "raw"), []byte(qcow2Head))
}
