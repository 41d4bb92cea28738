package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// v2TimeRE is a v2 time: whole seconds and Z.
var v2TimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// glanceKeys are the keys of every v2 image, sorted.
var glanceKeys = []string{
	"checksum", "container_format", "created_at", "disk_format", "file", "id", "min_disk",
	"min_ram", "name", "os_hash_algo", "os_hash_value", "os_hidden", "owner", "protected",
	"schema", "self", "size", "status", "tags", "updated_at", "virtual_size", "visibility",
}

func testData(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	r.Read(b)
	return b
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func sha512Hex(b []byte) string {
	sum := sha512.Sum512(b)
	return hex.EncodeToString(sum[:])
}

func TestImageCreate(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)

	body := `{"name":"cirros","disk_format":"qcow2","container_format":"bare","min_disk":1,` +
		`"min_ram":64,"tags":["x","y"],"os_type":"linux","os_distro":"cirros"}`
	status, hdr, b := e.call(t, "POST", "/v2/images", member, body, "Content-Type", "application/json")
	if status != http.StatusCreated {
		t.Fatalf("create: %d, want 201; body %q", status, b)
	}
	img := decodeObject(t, b)
	id, _ := img["id"].(string)
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("id %q is not a UUID", id)
	}
	if got, want := hdr.Get("Location"), e.url+"/v2/images/"+id; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	wantKeys := slices.Sorted(slices.Values(append(slices.Clone(glanceKeys), "os_distro", "os_type")))
	if got := keys(img); !slices.Equal(got, wantKeys) {
		t.Errorf("keys %v, want %v", got, wantKeys)
	}
	for _, k := range []string{"size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value"} {
		if v, ok := img[k]; !ok || v != nil {
			t.Errorf("%s = %#v before upload, want JSON null", k, v)
		}
	}
	for k, want := range map[string]any{
		"name": "cirros", "status": "queued", "visibility": "shared", "protected": false,
		"os_hidden": false, "disk_format": "qcow2", "container_format": "bare", "owner": e.a.ID,
		"self": "/v2/images/" + id, "file": "/v2/images/" + id + "/file", "schema": "/v2/schemas/image",
		"os_type": "linux", "os_distro": "cirros",
	} {
		if img[k] != want {
			t.Errorf("%s = %#v, want %#v", k, img[k], want)
		}
	}
	if fmt.Sprintf("%v %v %v", img["min_disk"], img["min_ram"], img["tags"]) != "1 64 [x y]" {
		t.Errorf("min_disk %v, min_ram %v, tags %v", img["min_disk"], img["min_ram"], img["tags"])
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if s, _ := img[k].(string); !v2TimeRE.MatchString(s) {
			t.Errorf("%s %q, want the form 2026-12-03T10:35:43Z", k, img[k])
		}
	}
	created, _ := time.Parse(time.RFC3339, img["created_at"].(string))
	if d := time.Since(created); d < -time.Minute || d > time.Minute {
		t.Errorf("created_at %s is %v from now", created, d)
	}
	// What POST answered is what GET answers.
	if got := e.getImage(t, member, id); fmt.Sprint(got) != fmt.Sprint(img) {
		t.Errorf("GET gives\n%v\nPOST gave\n%v", got, img)
	}

	admin := e.token(t, e.a, cloudimage.RoleAdmin)
	if got := e.createImage(t, admin, map[string]any{"name": "pub", "visibility": "public"}); got["visibility"] != "public" {
		t.Errorf("admin's public image has visibility %v", got["visibility"])
	}
	fixed := uuid.NewString()
	if got := e.createImage(t, member, map[string]any{"id": fixed}); got["id"] != fixed {
		t.Errorf("id %v, want the given %s", got["id"], fixed)
	}
	if got := e.createImage(t, member, map[string]any{}); got["name"] != "" || got["disk_format"] != nil {
		t.Errorf("empty create: name %#v disk_format %#v", got["name"], got["disk_format"])
	}

	reader := e.token(t, e.a, cloudimage.RoleReader)
	for _, tc := range []struct {
		name   string
		token  string
		body   string
		status int
	}{
		{"bogus disk_format", member, `{"disk_format":"bogus"}`, 400},
		{"bogus container_format", member, `{"container_format":"bogus"}`, 400},
		{"status given", member, `{"name":"x","status":"active"}`, 403},
		{"size given", member, `{"size":5}`, 403},
		{"owner given", member, `{"owner":"` + e.b.ID + `"}`, 403},
		{"not JSON", member, `name=x`, 400},
		{"truncated JSON", member, `{"name":`, 400},
		{"JSON array", member, `[]`, 400},
		{"JSON null", member, `null`, 400},
		{"empty body", member, ``, 400},
		{"trailing data", member, `{"name":"x"}}`, 400},
		{"existing id", member, `{"id":"` + fixed + `"}`, 409},
		{"malformed id", member, `{"id":"not-a-uuid"}`, 400},
		{"non-string property", member, `{"os_type":5}`, 400},
		{"object property", member, `{"os_type":{"a":"b"}}`, 400},
		{"name of the wrong type", member, `{"name":5}`, 400},
		{"protected of the wrong type", member, `{"protected":"yes"}`, 400},
		{"negative min_disk", member, `{"min_disk":-1}`, 400},
		{"reserved property", member, `{"location":"http://x"}`, 403},
		{"public by a member", member, `{"visibility":"public"}`, 403},
		{"bogus visibility", member, `{"visibility":"everyone"}`, 400},
		{"reader", reader, `{"name":"x"}`, 403},
		{"no token", "", `{"name":"x"}`, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, b := e.call(t, "POST", "/v2/images", tc.token, tc.body, "Content-Type", "application/json")
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %q", status, tc.status, b)
			}
			checkPlainError(t, status, hdr, b)
		})
	}
	// None of the refused requests left an image behind.
	if got := e.listIDs(t, e.a, member, ""); len(got) != 4 {
		t.Errorf("project A has %d images, want the 4 created", len(got))
	}
}

// checkPlainError checks a v2 error: text/plain, "<code> <reason>" first.
func checkPlainError(t *testing.T, status int, hdr http.Header, body []byte) {
	t.Helper()
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("error Content-Type %q, want text/plain", ct)
	}
	if want := fmt.Sprintf("%d %s\n\n", status, http.StatusText(status)); !strings.HasPrefix(string(body), want) {
		t.Errorf("error body %q, want it to start %q", body, want)
	}
}

func TestImageUploadDownload(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, member, "disk")
	path := "/v2/images/" + id + "/file"

	status, hdr, b := e.call(t, "PUT", path, member, "{}", "Content-Type", "application/json")
	if status != http.StatusUnsupportedMediaType {
		t.Errorf("upload as application/json: %d, want 415; body %q", status, b)
	}
	checkPlainError(t, status, hdr, b)
	if got := e.getImage(t, member, id)["status"]; got != "queued" {
		t.Errorf("after a refused upload: status %v, want queued", got)
	}

	// Glance sends Content-Length: 0 here; net/http drops it from every
	// 204, as RFC 9110 asks, so only the status and the empty body count.
	status, _, b = e.call(t, "GET", path, member, "")
	if status != http.StatusNoContent || len(b) != 0 {
		t.Errorf("download of a queued image: %d with %d bytes, want 204 and none", status, len(b))
	}

	data := testData(300_000)
	e.upload(t, member, id, data)
	img := e.getImage(t, member, id)
	size := fmt.Sprint(len(data))
	for k, want := range map[string]string{
		"status": "active", "size": size, "virtual_size": size, "checksum": md5Hex(data),
		"os_hash_algo": "sha512", "os_hash_value": sha512Hex(data),
	} {
		if got := fmt.Sprint(img[k]); got != want {
			t.Errorf("after upload %s = %s, want %s", k, got, want)
		}
	}
	if img["updated_at"].(string) < img["created_at"].(string) {
		t.Errorf("updated_at %v before created_at %v", img["updated_at"], img["created_at"])
	}

	status, hdr, b = e.call(t, "GET", path, member, "")
	if status != http.StatusOK || !bytes.Equal(b, data) {
		t.Errorf("download: %d and %d bytes, want 200 and the %d uploaded", status, len(b), len(data))
	}
	if got := hdr.Get("Content-MD5"); got != md5Hex(data) {
		t.Errorf("Content-MD5 %q, want %q", got, md5Hex(data))
	}
	if got := hdr.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type %q, want application/octet-stream", got)
	}

	status, hdr, b = e.call(t, "GET", path, member, "", "Range", "bytes=0-99")
	if status != http.StatusPartialContent || !bytes.Equal(b, data[:100]) {
		t.Errorf("range 0-99: %d and %d bytes, want 206 and the first 100", status, len(b))
	}
	if got, want := hdr.Get("Content-Range"), "bytes 0-99/"+size; got != want {
		t.Errorf("Content-Range %q, want %q", got, want)
	}
	status, _, b = e.call(t, "GET", path, member, "", "Range", "bytes=-10")
	if status != http.StatusPartialContent || !bytes.Equal(b, data[len(data)-10:]) {
		t.Errorf("range -10: %d and %q, want 206 and the last 10 bytes", status, b)
	}
	status, _, _ = e.call(t, "GET", path, member, "", "Range", fmt.Sprintf("bytes=%d-", len(data)+5))
	if status != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: %d, want 416", status)
	}

	// A second upload is refused and changes nothing.
	status, hdr, b = e.call(t, "PUT", path, member, "other data", "Content-Type", "application/octet-stream")
	if status != http.StatusConflict {
		t.Errorf("second upload: %d, want 409; body %q", status, b)
	}
	checkPlainError(t, status, hdr, b)
	if got := e.getImage(t, member, id); fmt.Sprint(got) != fmt.Sprint(img) {
		t.Errorf("after a refused second upload\n%v\nwas\n%v", got, img)
	}
	if _, _, b = e.call(t, "GET", path, member, ""); !bytes.Equal(b, data) {
		t.Errorf("data after a refused second upload: %d bytes, want the first upload's", len(b))
	}

	// Uploads with no Content-Type (Glance: 415, nothing stored), and to
	// images the caller may not write.
	plain := e.newImage(t, member, "no content type")
	if status, _, b := e.call(t, "PUT", "/v2/images/"+plain+"/file", member, "abc"); status != http.StatusUnsupportedMediaType {
		t.Errorf("upload without Content-Type: %d, want 415; body %q", status, b)
	}
	if got := e.getImage(t, member, plain)["status"]; got != "queued" {
		t.Errorf("after an upload without Content-Type: status %v, want queued", got)
	}
	noFormat := e.createImage(t, member, map[string]any{"name": "no formats"})["id"].(string)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)
	bPublic := e.newImage(t, adminB, "b-public", "visibility", "public")
	reader := e.token(t, e.a, cloudimage.RoleReader)
	readerImage := e.newImage(t, member, "for the reader")
	for _, tc := range []struct {
		name, token, id string
		status          int
	}{
		{"no disk_format", member, noFormat, 400},
		{"another project's public image", member, bPublic, 403},
		{"reader", reader, readerImage, 403},
		{"unknown image", member, uuid.NewString(), 404},
	} {
		status, _, b := e.call(t, "PUT", "/v2/images/"+tc.id+"/file", tc.token, "abc",
			"Content-Type", "application/octet-stream")
		if status != tc.status {
			t.Errorf("%s: %d, want %d; body %q", tc.name, status, tc.status, b)
		}
	}
	for _, id := range []string{noFormat, bPublic, readerImage} {
		if got := e.getImage(t, member, id)["status"]; got != "queued" {
			t.Errorf("image %s: status %v after a refused upload, want queued", id, got)
		}
	}
}

func TestImageUploadChunked(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, member, "chunked")
	data := testData(1 << 20)

	pr, pw := io.Pipe()
	go func() {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 70_001)
			if _, err := pw.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
		pw.Close()
	}()
	req, err := http.NewRequest("PUT", e.url+"/v2/images/"+id+"/file", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	req.Header.Set("X-Auth-Token", member)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := e.client.Do(req)
	// Should the server answer early, the writer must not block forever.
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("chunked upload: %d, want 204", resp.StatusCode)
	}
	img := e.getImage(t, member, id)
	if img["status"] != "active" || fmt.Sprint(img["size"]) != fmt.Sprint(len(data)) ||
		img["checksum"] != md5Hex(data) || img["os_hash_value"] != sha512Hex(data) {
		t.Errorf("after chunked upload: status %v size %v checksum %v", img["status"], img["size"], img["checksum"])
	}
	if _, _, b := e.call(t, "GET", "/v2/images/"+id+"/file", member, ""); !bytes.Equal(b, data) {
		t.Errorf("downloaded %d bytes, not the %d uploaded", len(b), len(data))
	}
}

func TestImageUploadInterrupted(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	data := testData(200_000)

	// retry checks that an interrupted upload left the image queued with
	// no data, then that uploading again works.
	retry := func(t *testing.T, id string) {
		t.Helper()
		img := e.getImage(t, member, id)
		if img["status"] != "queued" || img["size"] != nil || img["checksum"] != nil {
			t.Errorf("after an interrupted upload: status %v size %v checksum %v, want queued, null, null",
				img["status"], img["size"], img["checksum"])
		}
		if _, err := e.blobs.Open(context.Background(), id); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
			t.Errorf("data of the interrupted upload: %v, want ENOTFOUND", err)
		}
		if staged, _ := os.ReadDir(filepath.Join(e.blobDir, ".staging")); len(staged) != 0 {
			t.Errorf("staging files left: %v", staged)
		}
		if status, _, _ := e.call(t, "GET", "/v2/images/"+id+"/file", member, ""); status != http.StatusNoContent {
			t.Errorf("download after an interrupted upload: %d, want 204", status)
		}
		e.upload(t, member, id, data)
		img = e.getImage(t, member, id)
		if img["status"] != "active" || img["checksum"] != md5Hex(data) {
			t.Errorf("retry: status %v checksum %v, want active %s", img["status"], img["checksum"], md5Hex(data))
		}
	}

	t.Run("short body", func(t *testing.T) {
		id := e.newImage(t, member, "short body")
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /v2/images/%s/file HTTP/1.1\r\nHost: test\r\nX-Auth-Token: %s\r\n"+
			"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", id, member, len(data))
		conn.Write(data[:len(data)/3])
		// Closing the sending side ends the body early; the answer still
		// comes back once the server has given up on the upload.
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("read the answer: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("interrupted upload answered %d, want 400", resp.StatusCode)
		}
		retry(t, id)
	})

	t.Run("client cancels", func(t *testing.T) {
		id := e.newImage(t, member, "cancelled")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pr, pw := io.Pipe()
		// The transport waits for its body writer, which reads the pipe:
		// however the test ends, the pipe must close.
		defer pw.CloseWithError(context.Canceled)
		req, err := http.NewRequestWithContext(ctx, "PUT", e.url+"/v2/images/"+id+"/file", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		req.Header.Set("X-Auth-Token", member)
		req.Header.Set("Content-Type", "application/octet-stream")
		done := make(chan error, 1)
		go func() {
			resp, err := e.client.Do(req)
			if err == nil {
				resp.Body.Close()
				err = fmt.Errorf("upload finished with %d", resp.StatusCode)
			}
			done <- err
		}()
		if _, err := pw.Write(data[:50_000]); err != nil {
			t.Fatal(err)
		}
		// Cancel only once the server is saving: the data is flowing.
		waitStatus(t, e, member, id, "saving")
		cancel()
		pw.CloseWithError(context.Canceled)
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "context canceled") {
				t.Errorf("cancelled upload: %v, want context canceled", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the cancelled upload does not return")
		}
		waitStatus(t, e, member, id, "queued")
		retry(t, id)
	})
}

// waitStatus waits until the image has the status.
func waitStatus(t *testing.T, e *env, token, id, status string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := e.getImage(t, token, id)["status"]
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s is still %v, want %s", id, got, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestImageDelete(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)

	id := e.newImage(t, member, "doomed")
	e.upload(t, member, id, []byte("data"))
	if status, _, b := e.call(t, "DELETE", "/v2/images/"+id, member, ""); status != http.StatusNoContent || len(b) != 0 {
		t.Errorf("delete: %d with body %q, want 204 and none", status, b)
	}
	if _, err := e.blobs.Open(context.Background(), id); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("data of a deleted image: %v, want ENOTFOUND", err)
	}
	for _, method := range []string{"DELETE", "GET"} {
		status, hdr, b := e.call(t, method, "/v2/images/"+id, member, "")
		if status != http.StatusNotFound {
			t.Errorf("%s of a deleted image: %d, want 404", method, status)
		}
		checkPlainError(t, status, hdr, b)
	}
	if status, _, _ := e.call(t, "GET", "/v2/images/"+id+"/file", member, ""); status != http.StatusNotFound {
		t.Errorf("download of a deleted image: %d, want 404", status)
	}

	protected := e.newImage(t, member, "protected", "protected", true)
	status, hdr, b := e.call(t, "DELETE", "/v2/images/"+protected, member, "")
	if status != http.StatusForbidden {
		t.Errorf("delete of a protected image: %d, want 403", status)
	}
	checkPlainError(t, status, hdr, b)
	e.getImage(t, member, protected)

	bPrivate := e.newImage(t, adminB, "b-private", "visibility", "private")
	e.upload(t, adminB, bPrivate, []byte("secret"))
	bPublic := e.newImage(t, adminB, "b-public", "visibility", "public")
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v2/images/" + bPrivate},
		{"GET", "/v2/images/" + bPrivate + "/file"},
		{"DELETE", "/v2/images/" + bPrivate},
		{"PUT", "/v2/images/" + bPrivate + "/file"},
		{"GET", "/v2/images/" + uuid.NewString()},
		{"GET", "/v2/images/not-a-uuid"},
		{"DELETE", "/v2/images/not-a-uuid"},
	} {
		if status, _, _ := e.call(t, tc.method, tc.path, member, "", "Content-Type", "application/octet-stream"); status != http.StatusNotFound {
			t.Errorf("%s %s as A: %d, want 404", tc.method, tc.path, status)
		}
	}
	if status, _, _ := e.call(t, "DELETE", "/v2/images/"+bPublic, member, ""); status != http.StatusForbidden {
		t.Errorf("delete of another project's public image: %d, want 403", status)
	}
	e.getImage(t, adminB, bPrivate)
	e.getImage(t, member, bPublic)
}

func TestImageUnauthorized(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, member, "x")
	want := fmt.Sprintf("Keystone uri=%q", e.url+"/identity/v2.0")
	for _, token := range []string{"", "bogus"} {
		for _, tc := range []struct{ method, path string }{
			{"POST", "/v2/images"},
			{"GET", "/v2/images/" + id},
			{"DELETE", "/v2/images/" + id},
			{"PUT", "/v2/images/" + id + "/file"},
			{"GET", "/v2/images/" + id + "/file"},
		} {
			status, hdr, b := e.call(t, tc.method, tc.path, token, "")
			if status != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d, want 401", tc.method, tc.path, token, status)
				continue
			}
			if got := hdr.Get("WWW-Authenticate"); got != want {
				t.Errorf("%s %s: WWW-Authenticate %q, want %q", tc.method, tc.path, got, want)
			}
			checkPlainError(t, status, hdr, b)
		}
	}
	if got := e.getImage(t, member, id)["status"]; got != "queued" {
		t.Errorf("after unauthorized requests: status %v, want queued", got)
	}
}

// TestImageCreateRefusals covers the create rules NHN adds to Glance's
// (digest §7 #29, #31) and bodies that JSON decoding alone would let
// through changed. Each refusal must leave no image behind.
func TestImageCreateRefusals(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	admin := e.token(t, e.a, cloudimage.RoleAdmin)
	before := len(e.listIDs(t, e.a, admin, ""))
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"community by a member", `{"name":"c","visibility":"community"}`, http.StatusForbidden},
		{"operator tag by a member", `{"name":"t","tags":["ok","_AVAILABLE_"]}`, http.StatusBadRequest},
		{"invalid UTF-8", "{\"name\":\"bad\xff\xfe\"}", http.StatusBadRequest},
		{"null property", `{"name":"n","os_type":null}`, http.StatusBadRequest},
		{"trailing bracket", `{"name":"x"}}`, http.StatusBadRequest},
	} {
		status, _, b := e.call(t, "POST", "/v2/images", member, tc.body, "Content-Type", "application/json")
		if status != tc.status {
			t.Errorf("%s: %d, want %d; body %q", tc.name, status, tc.status, b)
		}
	}
	if after := len(e.listIDs(t, e.a, admin, "")); after != before {
		t.Errorf("refused creates left %d images behind", after-before)
	}
	// An admin of the project may do both.
	img := e.createImage(t, admin, map[string]any{"name": "ok", "visibility": "community", "tags": []string{"_AVAILABLE_"}})
	if img["visibility"] != "community" {
		t.Errorf("admin's community image: visibility %v", img["visibility"])
	}
}
