package cloudimage_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// TestDeleteStopsWebDownload checks that deleting an image stops the
// download of its data at once, rather than letting it run to its end.
func TestDeleteStopsWebDownload(t *testing.T) {
	t.Parallel()
	gone := make(chan struct{})
	src := newSource(t, func(s *source, w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("the first bytes of a long image"))
		w.(http.Flusher).Flush()
		select { // the rest never comes: the client must hang up
		case <-r.Context().Done():
			close(gone)
		case <-s.done:
		}
	})
	f := newFixture(t, nil, cloudimage.WithImportHosts(src.host(t)))
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	req := cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: src.URL + "/slow"}
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, req); err != nil {
		t.Fatalf("Import: %v", err)
	}
	for src.hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := f.svc.Delete(f.ctx, f.memberA, img.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the download went on after its image was deleted")
	}
	f.svc.Close()
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusDeleted)
	f.onlyData(t)
	f.stagingEmpty(t)
}

// TestWebDownloadStalls checks that a source that stops sending fails
// the import after the idle timeout, and the image is queued again.
func TestWebDownloadStalls(t *testing.T) {
	t.Parallel()
	src := newSource(t, func(s *source, w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("a start, then nothing"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	})
	f := newFixture(t, nil, cloudimage.WithImportHosts(src.host(t)),
		cloudimage.WithImportIdleTimeout(200*time.Millisecond))
	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	req := cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: src.URL + "/stall"}
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, req); err != nil {
		t.Fatalf("Import: %v", err)
	}
	queued := f.waitStatus(t, img.ID, cloudimage.StatusQueued)
	if queued.Size != nil || queued.Checksum != "" {
		t.Errorf("a stalled import left size %v, checksum %q", queued.Size, queued.Checksum)
	}
	f.svc.Close()
	f.onlyData(t)
	f.stagingEmpty(t)
}

// slowReader gives its data only once release is closed.
type slowReader struct {
	release chan struct{}
	r       io.Reader
}

func (s *slowReader) Read(p []byte) (int, error) {
	<-s.release
	return s.r.Read(p)
}

// TestImportWhileStaging checks that a glance-direct import is refused
// while the image's data is still being staged: the image is uploading
// already, but its data is not all there.
func TestImportWhileStaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Properties: downloadable()})
	data := []byte("staged, slowly")
	body := &slowReader{release: make(chan struct{}), r: bytes.NewReader(data)}
	staged := make(chan error, 1)
	go func() {
		_, err := f.svc.Stage(f.ctx, f.memberA, img.ID, body)
		staged <- err
	}()
	for f.stored(t, img.ID).Status != cloudimage.StatusUploading {
		time.Sleep(time.Millisecond)
	}
	direct := cloudimage.ImportRequest{Method: cloudimage.ImportGlanceDirect}
	wantCode(t, f.svc.Import(f.ctx, f.memberA, img.ID, direct), cloudimage.ECONFLICT)
	close(body.release)
	if err := <-staged; err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, direct); err != nil {
		t.Fatalf("Import once staged: %v", err)
	}
	f.wantData(t, f.memberA, f.waitStatus(t, img.ID, cloudimage.StatusActive), data)
}

// TestTextMustBeClean checks that names, tags, properties and member IDs
// that could not be shown back as they were given (invalid UTF-8, NUL and
// other control characters) are refused, and change nothing.
func TestTextMustBeClean(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityShared})
	for _, bad := range []string{"x\xff", "nul\x00", "bell\a", "esc\x1b[31m"} {
		wantCode(t, f.svc.AddTag(f.ctx, f.memberA, img.ID, bad), cloudimage.EINVALID)
		_, err := f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{Name: bad, Properties: linux()})
		wantCode(t, err, cloudimage.EINVALID)
		_, err = f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{Name: &bad})
		wantCode(t, err, cloudimage.EINVALID)
		_, err = f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{
			SetProperties: map[string]string{bad: "value"}})
		wantCode(t, err, cloudimage.EINVALID)
		_, err = f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{
			SetProperties: map[string]string{"key": bad}})
		wantCode(t, err, cloudimage.EINVALID)
		_, err = f.svc.AddMember(f.ctx, f.memberA, img.ID, bad)
		wantCode(t, err, cloudimage.EINVALID)
	}
	for _, blank := range []string{" ", "a b", "\t"} {
		_, err := f.svc.AddMember(f.ctx, f.memberA, img.ID, blank)
		wantCode(t, err, cloudimage.EINVALID)
	}
	// Text that is merely unusual is kept as it is.
	for _, ok := range []string{"ünïcödé", "tab\tinside", "한글"} {
		if err := f.svc.AddTag(f.ctx, f.memberA, img.ID, ok); err != nil {
			t.Errorf("AddTag(%q): %v", ok, err)
		}
	}
	got := f.stored(t, img.ID)
	if len(got.Tags) != 3 || got.Name != img.Name || len(got.Properties) != len(img.Properties) {
		t.Errorf("refused changes left tags %q, name %q, properties %v", got.Tags, got.Name, got.Properties)
	}
	if ms, err := f.svc.Members(f.ctx, f.memberA, img.ID); err != nil || len(ms) != 0 {
		t.Errorf("members after refused adds: %v, %v", ms, err)
	}
}

// TestOwnerUpdatesUnknownMember checks that the owner setting the status
// of a project that is no member learns that it is none (404), not that
// it may not (403).
func TestOwnerUpdatesUnknownMember(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityShared})
	_, err := f.svc.UpdateMember(f.ctx, f.memberA, img.ID, f.memberB.ProjectID, cloudimage.MemberAccepted)
	wantCode(t, err, cloudimage.ENOTFOUND)
	if _, err := f.svc.AddMember(f.ctx, f.memberA, img.ID, f.memberB.ProjectID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.UpdateMember(f.ctx, f.memberA, img.ID, f.memberB.ProjectID, cloudimage.MemberAccepted)
	wantCode(t, err, cloudimage.EFORBIDDEN)
}

// TestLengthsInCharacters checks that the limits on names, tags and
// property names count characters, as Glance does, not bytes: 255 Hangul
// characters (765 bytes) fit, 256 do not.
func TestLengthsInCharacters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	fits, over := strings.Repeat("한", 255), strings.Repeat("한", 256)
	img, err := f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{Name: fits,
		Properties: map[string]string{"os_type": "linux", fits: "x"}})
	if err != nil {
		t.Fatalf("Create with 255-character name and property: %v", err)
	}
	if err := f.svc.AddTag(f.ctx, f.memberA, img.ID, fits); err != nil {
		t.Errorf("AddTag with a 255-character tag: %v", err)
	}
	_, err = f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{Name: over, Properties: linux()})
	wantCode(t, err, cloudimage.EINVALID)
	wantCode(t, f.svc.AddTag(f.ctx, f.memberA, img.ID, over), cloudimage.EINVALID)
	_, err = f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{Name: &over})
	wantCode(t, err, cloudimage.EINVALID)
	_, err = f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{SetProperties: map[string]string{over: "x"}})
	wantCode(t, err, cloudimage.EINVALID)
}

// TestMaxImageSize checks that data beyond the configured maximum is
// refused with ETOOLARGE on upload, stage and web-download, keeping
// nothing, while data of exactly the maximum is taken.
func TestMaxImageSize(t *testing.T) {
	t.Parallel()
	const max = 1000
	src := newSource(t, serve(make([]byte, max+1)))
	f := newFixture(t, nil, cloudimage.WithMaxImageSize(max), cloudimage.WithImportHosts(src.host(t)))
	over := bytes.Repeat([]byte("x"), max+1)

	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, bytes.NewReader(over))
	wantCode(t, err, cloudimage.ETOOLARGE)
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
	_, err = f.svc.Stage(f.ctx, f.memberA, img.ID, bytes.NewReader(over))
	wantCode(t, err, cloudimage.ETOOLARGE)
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
	web := cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: src.URL + "/big"}
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, web); err != nil {
		t.Fatalf("Import: %v", err)
	}
	f.waitStatus(t, img.ID, cloudimage.StatusQueued)
	f.svc.Close()
	f.onlyData(t)
	f.stagingEmpty(t)

	f = newFixture(t, nil, cloudimage.WithMaxImageSize(max))
	img = f.create(t, f.memberA, cloudimage.ImageCreate{})
	if got := f.upload(t, f.memberA, img.ID, over[:max]); *got.Size != max {
		t.Errorf("an image of exactly the maximum: size %d", *got.Size)
	}
}
