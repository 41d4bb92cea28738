package cloudimage_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// directImport asks for a glance-direct import of staged data.
var directImport = cloudimage.ImportRequest{Method: cloudimage.ImportGlanceDirect}

// hookPut is a blob store that runs hook before each Put of a key that is
// not staged data (an image's final data, as an upload or an import
// writes it), or after it when after is set. A hook error fails the Put.
// returned is closed when the first such Put returns.
type hookPut struct {
	cloudimage.BlobStore
	mu       sync.Mutex
	after    bool
	hook     func(ctx context.Context, key string) error
	returned chan struct{}
	once     *sync.Once
	staged   func(key string) bool // reports whether key holds staged data
}

func (h *hookPut) set(after bool, hook func(ctx context.Context, key string) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.after, h.hook = after, hook
	h.returned, h.once = make(chan struct{}), new(sync.Once)
}

func (h *hookPut) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	h.mu.Lock()
	after, hook, returned, once := h.after, h.hook, h.returned, h.once
	h.mu.Unlock()
	if hook == nil || h.staged(key) {
		return h.BlobStore.Put(ctx, key, r)
	}
	defer once.Do(func() { close(returned) })
	if !after {
		if err := hook(ctx, key); err != nil {
			return 0, err
		}
	}
	n, err := h.BlobStore.Put(ctx, key, r)
	if after && err == nil {
		err = hook(ctx, key)
	}
	return n, err
}

// waitReturned waits until the Put that the hook is set for has returned.
func (h *hookPut) waitReturned(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	returned := h.returned
	h.mu.Unlock()
	select {
	case <-returned:
	case <-time.After(15 * time.Second):
		t.Fatal("the import never stored its data")
	}
}

// waitNoData polls the file store until it holds nothing, and fails the
// test if it still holds something after a deadline.
func (f *fixture) waitNoData(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(f.blobKeys(t)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("blob store still holds %q", f.blobKeys(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newHookFixture returns a fixture whose blob store runs the hooks set
// on the returned hookPut.
func newHookFixture(t *testing.T, opts ...cloudimage.ServiceOption) (*fixture, *hookPut) {
	t.Helper()
	h := &hookPut{}
	f := newFixture(t, func(b cloudimage.BlobStore) cloudimage.BlobStore {
		h.BlobStore = b
		return h
	}, opts...)
	// Final data is stored under the image's ID; anything else is staged.
	h.staged = func(key string) bool { return uuid.Validate(key) != nil }
	return f, h
}

// gate is a hook that holds a Put until released or until its context
// ends; entered is closed when the first Put arrives.
type gate struct {
	entered, release chan struct{}
	once             sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open) // never leave an import blocked behind a failed test
	return g
}

func (g *gate) open() {
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

func (g *gate) hook(ctx context.Context, key string) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) wait(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the import never began to store its data")
	}
}

// waitStatus polls the stored image until it has status want, and fails
// the test if it does not within a deadline.
func (f *fixture) waitStatus(t *testing.T, id string, want cloudimage.Status) *cloudimage.Image {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		img := f.stored(t, id)
		if img.Status == want {
			return img
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s: still %s, want %s", id, img.Status, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blobKeys returns the keys the file store holds, sorted, without the
// files of unfinished Puts.
func (f *fixture) blobKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	err := filepath.WalkDir(f.blobDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".staging" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			keys = append(keys, d.Name())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk blob store: %v", err)
	}
	slices.Sort(keys)
	return keys
}

// stagedKey returns the one key the file store holds besides the image's
// own, where its staged data is; it fails the test unless there is
// exactly one.
func (f *fixture) stagedKey(t *testing.T, id string) string {
	t.Helper()
	var others []string
	for _, k := range f.blobKeys(t) {
		if k != id && strings.Contains(k, id) {
			others = append(others, k)
		}
	}
	if len(others) != 1 {
		t.Fatalf("image %s: staged keys %q, want one", id, others)
	}
	return others[0]
}

// onlyData fails the test unless the file store holds exactly keys.
func (f *fixture) onlyData(t *testing.T, keys ...string) {
	t.Helper()
	slices.Sort(keys)
	if got := f.blobKeys(t); !slices.Equal(got, keys) {
		t.Fatalf("blob store holds %q, want %q", got, keys)
	}
}

// stage stages data for the image as c and fails the test on error.
func (f *fixture) stage(t *testing.T, c *cloudimage.Caller, id string, data []byte) *cloudimage.Image {
	t.Helper()
	img, err := f.svc.Stage(f.ctx, c, id, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Stage %s: %v", id, err)
	}
	return img
}

// wantData fails the test unless the image is active with data's size,
// hashes and bytes, in the store and through Download.
func (f *fixture) wantData(t *testing.T, c *cloudimage.Caller, img *cloudimage.Image, data []byte) {
	t.Helper()
	wantStatus(t, img, cloudimage.StatusActive)
	md5sum, shasum := md5.Sum(data), sha512.Sum512(data)
	if img.Size == nil || *img.Size != int64(len(data)) {
		t.Errorf("Size = %s, want %d", fmtPtr(img.Size), len(data))
	}
	if img.DiskFormat == "raw" && !equalPtr(img.VirtualSize, img.Size) {
		t.Errorf("VirtualSize = %s, want %d for raw", fmtPtr(img.VirtualSize), len(data))
	}
	if want := hex.EncodeToString(md5sum[:]); img.Checksum != want {
		t.Errorf("Checksum = %q, want %q", img.Checksum, want)
	}
	if want := hex.EncodeToString(shasum[:]); img.HashAlgo != "sha512" || img.HashValue != want {
		t.Errorf("HashAlgo %q HashValue %q, want sha512 %q", img.HashAlgo, img.HashValue, want)
	}
	if b := f.blob(t, img.ID); !bytes.Equal(b, data) {
		t.Errorf("blob holds %d bytes that differ from the %d sent", len(b), len(data))
	}
	if b := f.download(t, c, img.ID); !bytes.Equal(b, data) {
		t.Errorf("Download gave %d bytes that differ from the %d sent", len(b), len(data))
	}
}

func TestImportMethods(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	if got := f.svc.ImportMethods(); !slices.Equal(got, []string{cloudimage.ImportGlanceDirect}) {
		t.Errorf("ImportMethods without import hosts = %q, want only glance-direct", got)
	}
	f = newFixture(t, nil, cloudimage.WithImportHosts("example.com"))
	want := []string{cloudimage.ImportGlanceDirect, cloudimage.ImportWebDownload}
	if got := f.svc.ImportMethods(); !slices.Equal(got, want) {
		t.Errorf("ImportMethods with an import host = %q, want %q", got, want)
	}
}

// TestGlanceDirectImport follows an image through stage and import:
// queued, uploading, importing, active.
func TestGlanceDirectImport(t *testing.T) {
	t.Parallel()
	f, h := newHookFixture(t)
	g := newGate(t)
	h.set(false, g.hook)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Properties: downloadable()})
	wantStatus(t, img, cloudimage.StatusQueued)
	data := bytes.Repeat([]byte("staged!"), 150_000)

	staged := f.stage(t, f.memberA, img.ID, data)
	wantStatus(t, staged, cloudimage.StatusUploading)
	if staged.Size == nil || *staged.Size != int64(len(data)) {
		t.Errorf("staged Size = %s, want %d", fmtPtr(staged.Size), len(data))
	}
	sameImage(t, f.stored(t, img.ID), staged)
	key := f.stagedKey(t, img.ID)
	f.onlyData(t, key)
	if b := f.blob(t, key); !bytes.Equal(b, data) {
		t.Errorf("staged data differs from what was sent")
	}
	// Staged data is not the image's data yet.
	_, rc, err := f.svc.Download(f.ctx, f.memberA, img.ID)
	if err != nil || rc != nil {
		t.Errorf("Download of an uploading image: reader %v, err %v; want neither", rc, err)
	}

	if err := f.svc.Import(f.ctx, f.memberA, img.ID, directImport); err != nil {
		t.Fatalf("Import: %v", err)
	}
	g.wait(t)
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusImporting)
	err = f.svc.Import(f.ctx, f.memberA, img.ID, directImport)
	wantCode(t, err, cloudimage.ECONFLICT)

	g.open()
	active := f.waitStatus(t, img.ID, cloudimage.StatusActive)
	f.wantData(t, f.memberA, active, data)
	f.svc.Close() // the import is done: nothing may change after this
	f.onlyData(t, img.ID)
	f.stagingEmpty(t)
	if got, err := f.svc.Get(f.ctx, f.memberA, img.ID); err != nil {
		t.Fatal(err)
	} else {
		sameImage(t, got, active)
	}
}

func TestStageRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	queued := f.create(t, f.adminA, cloudimage.ImageCreate{})
	public := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic})
	active := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.upload(t, f.memberA, active.ID, []byte("data"))
	uploading := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.stage(t, f.memberA, uploading.ID, []byte("first"))
	stagedKey := f.stagedKey(t, uploading.ID)

	tests := []struct {
		name   string
		caller *cloudimage.Caller
		id     string
		want   string
	}{
		{"reader", f.readerA, queued.ID, cloudimage.EFORBIDDEN},
		{"another project, shared", f.memberB, queued.ID, cloudimage.ENOTFOUND},
		{"another project, public", f.memberB, public.ID, cloudimage.EFORBIDDEN},
		{"active", f.memberA, active.ID, cloudimage.ECONFLICT},
		{"staged already", f.memberA, uploading.ID, cloudimage.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.stored(t, tt.id)
			keys := f.blobKeys(t)
			r := &countingReader{r: strings.NewReader("other data")}
			_, err := f.svc.Stage(f.ctx, tt.caller, tt.id, r)
			wantCode(t, err, tt.want)
			sameImage(t, f.stored(t, tt.id), before)
			f.onlyData(t, keys...)
			if r.n != 0 {
				t.Errorf("a refused Stage read %d bytes", r.n)
			}
		})
	}
	if b := f.blob(t, stagedKey); string(b) != "first" {
		t.Errorf("staged data %q after a refused second Stage, want %q", b, "first")
	}
	_, err := f.svc.Stage(f.ctx, f.memberA, uuid.NewString(), strings.NewReader("x"))
	wantCode(t, err, cloudimage.ENOTFOUND)
}

func TestStageReaderFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	data := bytes.Repeat([]byte{1, 2, 3}, 200_000)
	r := &failingReader{data: data, n: len(data) / 2, err: errors.New("connection reset by peer")}
	_, err := f.svc.Stage(f.ctx, f.memberA, img.ID, r)
	wantCode(t, err, cloudimage.EINVALID)
	after := f.stored(t, img.ID)
	wantStatus(t, after, cloudimage.StatusQueued)
	if after.Size != nil {
		t.Errorf("failed Stage left size %s", fmtPtr(after.Size))
	}
	f.onlyData(t)
	f.stagingEmpty(t)

	// It may be staged again.
	f.stage(t, f.memberA, img.ID, data)
}

func TestImportRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, cloudimage.WithImportHosts("allowed.example", "127.0.0.1:8080"))
	queued := f.create(t, f.memberA, cloudimage.ImageCreate{})
	staged := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.stage(t, f.memberA, staged.ID, []byte("staged"))
	stagedPublic := f.create(t, f.adminA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPublic})
	f.stage(t, f.adminA, stagedPublic.ID, []byte("staged"))
	active := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.upload(t, f.memberA, active.ID, []byte("data"))

	direct := directImport
	web := func(uri string) cloudimage.ImportRequest {
		return cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: uri}
	}
	// A host that is not allowed is a URI that does not pass Glance's
	// filtering: 400, as Glance answers.
	tests := []struct {
		name   string
		caller *cloudimage.Caller
		id     string
		req    cloudimage.ImportRequest
		want   string
	}{
		{"glance-direct without staging", f.memberA, queued.ID, direct, cloudimage.ECONFLICT},
		{"glance-direct on an active image", f.memberA, active.ID, direct, cloudimage.ECONFLICT},
		{"unknown method", f.memberA, staged.ID, cloudimage.ImportRequest{Method: "copy-image"},
			cloudimage.EINVALID},
		{"no method", f.memberA, staged.ID, cloudimage.ImportRequest{}, cloudimage.EINVALID},
		{"reader", f.readerA, staged.ID, direct, cloudimage.EFORBIDDEN},
		{"another project, shared", f.memberB, staged.ID, direct, cloudimage.ENOTFOUND},
		{"another project, public", f.memberB, stagedPublic.ID, direct, cloudimage.EFORBIDDEN},
		{"web-download from a host not allowed", f.memberA, queued.ID, web("http://evil.example/img"),
			cloudimage.EINVALID},
		{"web-download from an allowed host on another port", f.memberA, queued.ID,
			web("http://127.0.0.1:8081/img"), cloudimage.EINVALID},
		{"web-download from a host that only ends like an allowed one", f.memberA, queued.ID,
			web("http://notallowed.example/img"), cloudimage.EINVALID},
		{"web-download, file URI", f.memberA, queued.ID, web("file:///etc/passwd"), cloudimage.EINVALID},
		{"web-download, ftp URI", f.memberA, queued.ID, web("ftp://allowed.example/img"), cloudimage.EINVALID},
		{"web-download, no URI", f.memberA, queued.ID, web(""), cloudimage.EINVALID},
		{"web-download, no host", f.memberA, queued.ID, web("http:///img"), cloudimage.EINVALID},
		{"web-download of a staged image", f.memberA, staged.ID, web("http://allowed.example/img"),
			cloudimage.ECONFLICT},
		{"web-download of an active image", f.memberA, active.ID, web("http://allowed.example/img"),
			cloudimage.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.stored(t, tt.id)
			keys := f.blobKeys(t)
			wantCode(t, f.svc.Import(f.ctx, tt.caller, tt.id, tt.req), tt.want)
			sameImage(t, f.stored(t, tt.id), before)
			f.onlyData(t, keys...)
		})
	}
	wantCode(t, f.svc.Import(f.ctx, f.memberA, uuid.NewString(), direct), cloudimage.ENOTFOUND)

	// Without import hosts there is no web-download at all.
	f = newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	wantCode(t, f.svc.Import(f.ctx, f.memberA, img.ID, web("http://127.0.0.1/img")), cloudimage.EINVALID)
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
}

// source is an HTTP server that web-download imports fetch from. Its
// handlers may block on done, which closes before the server does.
type source struct {
	*httptest.Server
	done chan struct{}
	hits atomic.Int64
}

func newSource(t *testing.T, h func(s *source, w http.ResponseWriter, r *http.Request)) *source {
	t.Helper()
	s := &source{done: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(s, w, r)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.done) })
	return s
}

// host returns the server's host:port.
func (s *source) host(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func serve(data []byte) func(*source, http.ResponseWriter, *http.Request) {
	return func(_ *source, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(data)
	}
}

func TestWebDownloadImport(t *testing.T) {
	t.Parallel()
	// The host may be allowed by name alone, or with its port.
	for _, byName := range []bool{false, true} {
		t.Run(fmt.Sprintf("allowed by name alone=%v", byName), func(t *testing.T) {
			testWebDownloadImport(t, byName)
		})
	}
}

func testWebDownloadImport(t *testing.T, byName bool) {
	data := bytes.Repeat([]byte("from the web "), 80_000)
	release := make(chan struct{})
	src := newSource(t, func(s *source, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/images/disk.raw" {
			http.NotFound(w, r)
			return
		}
		select {
		case <-release:
		case <-s.done:
			return
		}
		w.Write(data)
	})
	host := src.host(t)
	if byName {
		host, _, _ = strings.Cut(host, ":")
	}
	f := newFixture(t, nil, cloudimage.WithImportHosts(host))
	if !slices.Contains(f.svc.ImportMethods(), cloudimage.ImportWebDownload) {
		t.Fatalf("web-download is not offered with an import host")
	}
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Properties: downloadable()})

	req := cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: src.URL + "/images/disk.raw"}
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, req); err != nil {
		t.Fatalf("Import: %v", err)
	}
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusImporting)
	close(release)
	active := f.waitStatus(t, img.ID, cloudimage.StatusActive)
	f.wantData(t, f.memberA, active, data)
	f.svc.Close()
	f.onlyData(t, img.ID)
	f.stagingEmpty(t)
	if n := src.hits.Load(); n != 1 {
		t.Errorf("the source was asked %d times, want once", n)
	}
}

// TestWebDownloadFails checks that an import whose source fails leaves
// the image queued with no data, ready for another try.
func TestWebDownloadFails(t *testing.T) {
	t.Parallel()
	forbidden := newSource(t, serve([]byte("must not be fetched")))
	allowedTarget := newSource(t, serve([]byte("redirected data")))
	redirect := func(to *source) func(*source, http.ResponseWriter, *http.Request) {
		return func(_ *source, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, to.URL+"/data", http.StatusFound)
		}
	}
	toForbidden := newSource(t, redirect(forbidden))
	toAllowed := newSource(t, redirect(allowedTarget))
	missing := newSource(t, func(_ *source, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	broken := newSource(t, func(_ *source, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	short := newSource(t, func(_ *source, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("only a little"))
	})
	hosts := []string{toForbidden.host(t), toAllowed.host(t), allowedTarget.host(t), missing.host(t),
		broken.host(t), short.host(t)}
	f := newFixture(t, nil)
	log := newLogRecorder(t)
	f.svc = cloudimage.NewImageService(f.db, f.blobs, slog.New(log), cloudimage.WithImportHosts(hosts...))
	t.Cleanup(f.svc.Close)

	tests := []struct {
		name string
		src  *source
		want cloudimage.Status
	}{
		{"redirect to a host not allowed", toForbidden, cloudimage.StatusQueued},
		{"404", missing, cloudimage.StatusQueued},
		{"500", broken, cloudimage.StatusQueued},
		{"body shorter than promised", short, cloudimage.StatusQueued},
		{"redirect to an allowed host", toAllowed, cloudimage.StatusActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := f.create(t, f.memberA, cloudimage.ImageCreate{})
			req := cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: tt.src.URL + "/img"}
			if err := f.svc.Import(f.ctx, f.memberA, img.ID, req); err != nil {
				t.Fatalf("Import: %v", err)
			}
			after := f.waitStatus(t, img.ID, tt.want)
			if tt.want == cloudimage.StatusActive {
				if b := f.blob(t, img.ID); string(b) != "redirected data" {
					t.Errorf("imported %q, want the redirect target's data", b)
				}
				return
			}
			if after.Size != nil || after.Checksum != "" {
				t.Errorf("failed import left size %s checksum %q", fmtPtr(after.Size), after.Checksum)
			}
			f.noBlob(t, img.ID)
			// The operator learns why, and that it was not a delete.
			if got := log.values(t, "import failed; image returned to queued", slog.LevelWarn, "image"); !slices.Contains(got, img.ID) {
				t.Errorf("no warning that the import of %s failed; warned of %v", img.ID, got)
			}
			if got := log.values(t, "import stopped: the image was deleted", slog.LevelInfo, "image"); slices.Contains(got, img.ID) {
				t.Errorf("a failed import of %s was logged as stopped by a delete", img.ID)
			}
		})
	}
	f.svc.Close()
	if n := forbidden.hits.Load(); n != 0 {
		t.Errorf("the host that was not allowed was asked %d times, want never", n)
	}
	f.stagingEmpty(t)

	// A failed import may be retried.
	f = newFixture(t, nil, cloudimage.WithImportHosts(allowedTarget.host(t)))
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	bad := cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: "http://" + missing.host(t) + "/img"}
	wantCode(t, f.svc.Import(f.ctx, f.memberA, img.ID, bad), cloudimage.EINVALID)
	good := cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: allowedTarget.URL + "/data"}
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, good); err != nil {
		t.Fatalf("Import: %v", err)
	}
	f.waitStatus(t, img.ID, cloudimage.StatusActive)
}

// TestGlanceDirectImportFails checks that an import whose store fails
// returns the image to queued without its staged data.
func TestGlanceDirectImportFails(t *testing.T) {
	t.Parallel()
	f, h := newHookFixture(t)
	h.set(false, func(context.Context, string) error { return errors.New("disk on fire") })
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.stage(t, f.memberA, img.ID, []byte("staged"))
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, directImport); err != nil {
		t.Fatalf("Import: %v", err)
	}
	after := f.waitStatus(t, img.ID, cloudimage.StatusQueued)
	f.svc.Close()
	if after.Size != nil {
		t.Errorf("failed import left size %s", fmtPtr(after.Size))
	}
	f.onlyData(t)
}

// TestDeleteWhileImporting deletes an image while its import stores the
// data, just before and just after the data lands: no data may outlive
// the image.
func TestDeleteWhileImporting(t *testing.T) {
	t.Parallel()
	for _, method := range []string{cloudimage.ImportGlanceDirect, cloudimage.ImportWebDownload} {
		for _, after := range []bool{false, true} {
			name := method + map[bool]string{false: ", before data lands", true: ", after data lands"}[after]
			t.Run(name, func(t *testing.T) {
				src := newSource(t, serve([]byte("web data")))
				f, h := newHookFixture(t, cloudimage.WithImportHosts(src.host(t)))
				img := f.create(t, f.memberA, cloudimage.ImageCreate{})
				var delErr error
				h.set(after, func(context.Context, string) error {
					delErr = f.svc.Delete(f.ctx, f.memberA, img.ID)
					return nil
				})
				req := cloudimage.ImportRequest{Method: method, URI: src.URL + "/img"}
				if method == cloudimage.ImportGlanceDirect {
					f.stage(t, f.memberA, img.ID, []byte("staged data"))
				}
				if err := f.svc.Import(f.ctx, f.memberA, img.ID, req); err != nil {
					t.Fatalf("Import: %v", err)
				}
				// Once the data has landed, the import must remove it.
				h.waitReturned(t)
				f.waitNoData(t)
				f.svc.Close() // waits for the import to end
				if delErr != nil {
					t.Fatalf("Delete while importing: %v", delErr)
				}
				got := f.stored(t, img.ID)
				wantStatus(t, got, cloudimage.StatusDeleted)
				if got.Checksum != "" {
					t.Errorf("deleted image got checksum %q", got.Checksum)
				}
				f.onlyData(t)
				f.stagingEmpty(t)
			})
		}
	}
}

// TestDeleteStaged checks that deleting an image with staged data removes
// the data.
func TestDeleteStaged(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.stage(t, f.memberA, img.ID, []byte("staged"))
	if err := f.svc.Delete(f.ctx, f.memberA, img.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusDeleted)
	f.onlyData(t)
}
