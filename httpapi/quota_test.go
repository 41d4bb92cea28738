package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// wantQuotaRefusal checks a refusal in Glance's format: 413, plain text,
// the status line, and the quota's name.
func wantQuotaRefusal(t *testing.T, what string, status int, hdr http.Header, body []byte, quota string) {
	t.Helper()
	if status != http.StatusRequestEntityTooLarge || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") ||
		!strings.HasPrefix(string(body), "413 Request Entity Too Large\n\n") ||
		!strings.Contains(string(body), quota) {
		t.Errorf("%s: %d %s %q, want 413 in Glance's format naming %s",
			what, status, hdr.Get("Content-Type"), body, quota)
	}
}

// nhnStatus returns the status and size the v1.0 list shows for the image.
func (e *env) nhnStatus(t *testing.T, p *cloudimage.Project, token, id string) (string, int64) {
	t.Helper()
	for _, img := range e.list(t, p, token, "") {
		if str(t, img["id"]) == id {
			var size int64
			if err := json.Unmarshal(img["size"], &size); err != nil {
				t.Fatalf("size %s: %v", img["size"], err)
			}
			return str(t, img["status"]), size
		}
	}
	t.Fatalf("image %s is not in the v1.0 list", id)
	return "", 0
}

// TestQuotaImagesHTTP checks the image-count quota on v2: a create beyond
// it is 413 in Glance's format and creates nothing; another project is
// not affected; a delete through v1.0 frees the quota.
func TestQuotaImagesHTTP(t *testing.T) {
	e := newEnv(t, cloudimage.WithQuotas(cloudimage.Quotas{Images: 2}))
	token := e.token(t, e.a, cloudimage.RoleMember)
	first := e.newImage(t, token, "one")
	e.newImage(t, token, "two")
	status, hdr, body := e.call(t, "POST", "/v2/images", token,
		`{"name": "three", "disk_format": "raw", "container_format": "bare", "os_type": "linux"}`,
		"Content-Type", "application/json")
	wantQuotaRefusal(t, "POST a third image over a quota of 2", status, hdr, body, "image_count_total")
	if ids := e.listIDs(t, e.a, token, ""); len(ids) != 2 {
		t.Errorf("after the refusal the project lists %d images, want 2", len(ids))
	}

	tokenB := e.token(t, e.b, cloudimage.RoleMember)
	for _, name := range []string{"b1", "b2"} {
		e.newImage(t, tokenB, name)
	}

	if h, _ := e.nhn(t, "DELETE", imagesPath(e.a)+"?id="+first, token, ""); !h.IsSuccessful {
		t.Fatalf("v1.0 delete: %d %q", h.ResultCode, h.ResultMessage)
	}
	e.newImage(t, token, "three")
}

// TestQuotaBytesHTTP checks the byte quota on v2 upload and stage: data
// beyond it is 413 in Glance's format, and the image stays queued with no
// size, as both faces show; data up to exactly the quota is taken; a
// delete frees the room; another project is not affected.
func TestQuotaBytesHTTP(t *testing.T) {
	e := newEnv(t, cloudimage.WithQuotas(cloudimage.Quotas{Bytes: 10}))
	token := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, token, "big")
	status, hdr, body := e.call(t, "PUT", "/v2/images/"+id+"/file", token, "eleven bytes",
		"Content-Type", "application/octet-stream")
	wantQuotaRefusal(t, "PUT 12 bytes over a 10-byte quota", status, hdr, body, "image_size_total")
	status, hdr, body = e.call(t, "PUT", "/v2/images/"+id+"/stage", token, "eleven bytes",
		"Content-Type", "application/octet-stream")
	wantQuotaRefusal(t, "stage 12 bytes over a 10-byte quota", status, hdr, body, "image_size_total")
	img := e.getImage(t, token, id)
	if img["status"] != "queued" || img["size"] != nil {
		t.Errorf("after the refusals the image is %v with size %v, want queued with none",
			img["status"], img["size"])
	}
	if st, size := e.nhnStatus(t, e.a, token, id); st != "queued" || size != 0 {
		t.Errorf("v1.0 lists the image %s with size %d, want queued with 0", st, size)
	}

	e.upload(t, token, id, []byte("ten bytes!"))
	full := e.newImage(t, token, "full")
	status, hdr, body = e.call(t, "PUT", "/v2/images/"+full+"/file", token, "x",
		"Content-Type", "application/octet-stream")
	wantQuotaRefusal(t, "PUT a byte over a full quota", status, hdr, body, "image_size_total")

	tokenB := e.token(t, e.b, cloudimage.RoleMember)
	e.upload(t, tokenB, e.newImage(t, tokenB, "b"), []byte("ten bytes!"))

	if status, _, body := e.call(t, "DELETE", "/v2/images/"+id, token, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %q", status, body)
	}
	e.upload(t, token, full, []byte("ten bytes!"))
	if st, size := e.nhnStatus(t, e.a, token, full); st != "active" || size != 10 {
		t.Errorf("v1.0 lists the image %s with size %d, want active with 10", st, size)
	}
}
