package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// faultyBlobs is a blob store that fails while it takes data, once armed:
// a Put passes what it reads to the real store below until after bytes,
// then the data fails with err, as a write the disk refuses would. The
// store below sees the failure as it would a real one, and must keep
// nothing of it.
type faultyBlobs struct {
	cloudimage.BlobStore
	mu    sync.Mutex
	err   error // of the next Put; nil while Puts work
	after int
}

// arm makes the next Put fail with err once it has read after bytes.
func (f *faultyBlobs) arm(err error, after int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.after = err, after
}

func (f *faultyBlobs) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	f.mu.Lock()
	err, after := f.err, f.after
	f.err = nil
	f.mu.Unlock()
	if err != nil {
		r = &failingReader{r: r, left: after, err: err}
	}
	return f.BlobStore.Put(ctx, key, r)
}

// failingReader reads left bytes of r, then fails with err.
type failingReader struct {
	r    io.Reader
	left int
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, f.err
	}
	n, err := f.r.Read(p[:min(len(p), f.left)])
	f.left -= n
	return n, err
}

// take returns the error records logged so far and forgets them: a test
// that provokes errors checks them, and the env's own check then sees
// only what came after.
func (l *logCapture) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := l.errs
	l.errs = nil
	return errs
}

// newFaultyEnv returns an env whose image service stores through a
// faultyBlobs over the env's real blob store.
func newFaultyEnv(t *testing.T) (*env, *faultyBlobs) {
	t.Helper()
	fb := &faultyBlobs{}
	e := newEnvWith(t, envConfig{blobs: func(b cloudimage.BlobStore) cloudimage.BlobStore {
		fb.BlobStore = b
		return fb
	}})
	return e, fb
}

// storeFaults are the failures of a disk, as the file system reports them
// part way through a write, and what a v2 client is told of each.
var storeFaults = []struct {
	name   string
	errno  syscall.Errno
	status int
	msg    string // the message in the body
	logged string // in the error log
}{
	{"disk full", syscall.ENOSPC, http.StatusRequestEntityTooLarge,
		"Image storage media is full: there is no space left for the image data.", "no space left on device"},
	{"quota exceeded", syscall.EDQUOT, http.StatusRequestEntityTooLarge,
		"Image storage media is full: there is no space left for the image data.", "quota exceeded"},
	{"I/O error", syscall.EIO, http.StatusInternalServerError, "Internal error.", "input/output error"},
}

// checkGlanceError checks a v2 error answer: the status, and Glance's
// plain-text body with the status line and exactly msg, so nothing of the
// store (a path, an errno) shows.
func checkGlanceError(t *testing.T, status int, h http.Header, body []byte, wantStatus int, msg string) {
	t.Helper()
	want := fmt.Sprintf("%d %s\n\n%s\n\n", wantStatus, http.StatusText(wantStatus), msg)
	if status != wantStatus || string(body) != want {
		t.Errorf("answer %d %q, want %d %q", status, body, wantStatus, want)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
}

// checkNothingKept checks that key has no data and that no staging file
// is left.
func checkNothingKept(t *testing.T, e *env, key string) {
	t.Helper()
	if _, err := e.blobs.Open(context.Background(), key); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("data under %s after a failed store: %v, want ENOTFOUND", key, err)
	}
	if staged, err := os.ReadDir(filepath.Join(e.blobDir, ".staging")); err != nil || len(staged) != 0 {
		t.Errorf("staging files left: %v (%v)", staged, err)
	}
}

// checkLogged checks that the failure was logged, with its cause, once.
func checkLogged(t *testing.T, e *env, id, cause string) {
	t.Helper()
	logs := e.logs.take()
	if len(logs) != 1 || !strings.Contains(logs[0], cause) || !strings.Contains(logs[0], id) {
		t.Errorf("error log %q, want one line naming image %s and %q", logs, id, cause)
	}
}

// TestUploadStoreFaults fails the blob store part way through an upload:
// the client gets 413 for a full disk and a generic 500 for an I/O error,
// in Glance's format; the cause is logged; the image is queued with no
// data kept; and the server goes on serving: the upload retried works.
func TestUploadStoreFaults(t *testing.T) {
	e, fb := newFaultyEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	data := testData(1 << 20)
	for _, f := range storeFaults {
		t.Run(f.name, func(t *testing.T) {
			id := e.newImage(t, member, f.name)
			fb.arm(&fs.PathError{Op: "write", Path: filepath.Join(e.blobDir, ".staging", id), Err: f.errno},
				300_000)
			status, h, body := e.call(t, "PUT", "/v2/images/"+id+"/file", member, string(data),
				"Content-Type", "application/octet-stream")
			checkGlanceError(t, status, h, body, f.status, f.msg)
			checkLogged(t, e, id, f.logged)
			img := e.getImage(t, member, id)
			if img["status"] != "queued" || img["size"] != nil || img["checksum"] != nil {
				t.Errorf("after the failed upload: status %v size %v checksum %v, want queued, null, null",
					img["status"], img["size"], img["checksum"])
			}
			checkNothingKept(t, e, id)

			e.upload(t, member, id, data)
			img = e.getImage(t, member, id)
			if img["status"] != "active" || img["os_hash_value"] != sha512Hex(data) {
				t.Errorf("retried upload: status %v, os_hash_value %v; want active with the data's sha512",
					img["status"], img["os_hash_value"])
			}
			if _, _, b := e.call(t, "GET", "/v2/images/"+id+"/file", member, ""); string(b) != string(data) {
				t.Errorf("download after the retry: %d bytes, not the %d uploaded", len(b), len(data))
			}
		})
	}
}

// TestStageStoreFaults is TestUploadStoreFaults for the staging of a
// glance-direct import: the image is queued again, no staged data is
// kept, and staging again works.
func TestStageStoreFaults(t *testing.T) {
	e, fb := newFaultyEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	data := testData(1 << 20)
	for _, f := range storeFaults {
		t.Run(f.name, func(t *testing.T) {
			id := e.newImage(t, member, f.name)
			fb.arm(&fs.PathError{Op: "write", Path: filepath.Join(e.blobDir, ".staging", id), Err: f.errno},
				300_000)
			status, h, body := e.call(t, "PUT", "/v2/images/"+id+"/stage", member, string(data),
				"Content-Type", "application/octet-stream")
			checkGlanceError(t, status, h, body, f.status, f.msg)
			checkLogged(t, e, id, f.logged)
			img := e.getImage(t, member, id)
			if img["status"] != "queued" || img["size"] != nil {
				t.Errorf("after the failed stage: status %v size %v, want queued, null", img["status"], img["size"])
			}
			checkNothingKept(t, e, id+".staged")

			status, _, body = e.call(t, "PUT", "/v2/images/"+id+"/stage", member, string(data),
				"Content-Type", "application/octet-stream")
			if status != http.StatusNoContent {
				t.Fatalf("stage again: %d %q, want 204", status, body)
			}
			img = e.getImage(t, member, id)
			if img["status"] != "uploading" || fmt.Sprint(img["size"]) != fmt.Sprint(len(data)) {
				t.Errorf("staged again: status %v size %v, want uploading, %d", img["status"], img["size"], len(data))
			}
		})
	}
}

// TestDownloadInterrupted reads part of an image's data and hangs up:
// the image stays as it was, the server logs nothing, and a whole
// download afterwards is byte-identical.
func TestDownloadInterrupted(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	data := testData(8 << 20)
	id := e.newImage(t, member, "read in part")
	e.upload(t, member, id, data)
	before := e.getImage(t, member, id)

	for _, keep := range []int{0, 1, 100_000} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /v2/images/%s/file HTTP/1.1\r\nHost: test\r\nX-Auth-Token: %s\r\n\r\n", id, member)
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("read the answer: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("download: %d, want 200", resp.StatusCode)
		}
		if _, err := io.CopyN(io.Discard, resp.Body, int64(keep)); err != nil {
			t.Fatalf("read %d bytes: %v", keep, err)
		}
		conn.Close()
	}

	after := e.getImage(t, member, id)
	for _, k := range []string{"status", "size", "checksum", "os_hash_value", "updated_at"} {
		if fmt.Sprint(after[k]) != fmt.Sprint(before[k]) {
			t.Errorf("after interrupted downloads: %s %v, want %v", k, after[k], before[k])
		}
	}
	if _, _, b := e.call(t, "GET", "/v2/images/"+id+"/file", member, ""); string(b) != string(data) {
		t.Errorf("whole download after interrupted ones: %d bytes, not the %d uploaded", len(b), len(data))
	}
}
