package cloudimage_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// TestQuotaImages checks the image-count quota: a create beyond it is
// ETOOLARGE and writes nothing, deleted and pending_delete images do not
// count, and another project has a quota of its own.
func TestQuotaImages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, cloudimage.WithQuotas(cloudimage.Quotas{Images: 2}),
		cloudimage.WithDelayedDelete(time.Hour))
	first := f.create(t, f.memberA, cloudimage.ImageCreate{})
	second := f.create(t, f.adminA, cloudimage.ImageCreate{})
	_, err := f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{Name: "third", Properties: linux()})
	wantCode(t, err, cloudimage.ETOOLARGE)
	if msg := cloudimage.ErrorMessage(err); !strings.Contains(msg, "image_count_total") {
		t.Errorf("refusal %q does not name image_count_total", msg)
	}
	if n, _, err := f.db.ProjectUsage(f.ctx, f.memberA.ProjectID); err != nil || n != 2 {
		t.Fatalf("after the refusal the project has %d images (%v), want 2", n, err)
	}
	f.create(t, f.memberB, cloudimage.ImageCreate{})
	f.create(t, f.memberB, cloudimage.ImageCreate{})

	if err := f.svc.Delete(f.ctx, f.memberA, first.ID); err != nil {
		t.Fatal(err)
	}
	f.create(t, f.memberA, cloudimage.ImageCreate{})

	// pending_delete frees the quota as deleted does.
	f.upload(t, f.memberA, second.ID, []byte("data"))
	if err := f.svc.Delete(f.ctx, f.memberA, second.ID); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.stored(t, second.ID), cloudimage.StatusPendingDelete)
	f.create(t, f.memberA, cloudimage.ImageCreate{})
	_, err = f.svc.Create(f.ctx, f.memberA, cloudimage.ImageCreate{Properties: linux()})
	wantCode(t, err, cloudimage.ETOOLARGE)
}

// TestQuotaRestore checks that restoring a pending_delete image counts it
// toward its project's quotas again: a restore that would take the
// project over is ETOOLARGE and leaves the image pending_delete.
func TestQuotaRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, cloudimage.WithQuotas(cloudimage.Quotas{Images: 1, Bytes: 100}),
		cloudimage.WithDelayedDelete(time.Hour))
	big := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.upload(t, f.memberA, big.ID, make([]byte, 70))
	if err := f.svc.Delete(f.ctx, f.memberA, big.ID); err != nil {
		t.Fatal(err)
	}
	other := f.create(t, f.memberA, cloudimage.ImageCreate{})
	wantCode(t, f.svc.Restore(f.ctx, f.adminA, big.ID), cloudimage.ETOOLARGE)
	wantStatus(t, f.stored(t, big.ID), cloudimage.StatusPendingDelete)

	// Within the count but not the bytes.
	if err := f.svc.Delete(f.ctx, f.memberA, other.ID); err != nil {
		t.Fatal(err)
	}
	f.svc = cloudimage.NewImageService(f.db, f.blobs, f.logger,
		cloudimage.WithQuotas(cloudimage.Quotas{Images: 2, Bytes: 100}), cloudimage.WithDelayedDelete(time.Hour))
	second := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.upload(t, f.memberA, second.ID, make([]byte, 40))
	wantCode(t, f.svc.Restore(f.ctx, f.adminA, big.ID), cloudimage.ETOOLARGE)
	wantStatus(t, f.stored(t, big.ID), cloudimage.StatusPendingDelete)

	if err := f.svc.Delete(f.ctx, f.memberA, second.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Restore(f.ctx, f.adminA, big.ID); err != nil {
		t.Fatalf("restore within the quotas: %v", err)
	}
	wantStatus(t, f.stored(t, big.ID), cloudimage.StatusActive)
}

// TestQuotaBytes checks the byte quota on upload: data that would take
// the project over is ETOOLARGE, keeps nothing and leaves the image
// queued; data up to exactly the quota is taken; a delete frees what
// the image held; another project is not affected.
func TestQuotaBytes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, cloudimage.WithQuotas(cloudimage.Quotas{Bytes: 100}))
	held := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.upload(t, f.memberA, held.ID, bytes.Repeat([]byte("h"), 60))

	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	over := &countingReader{r: bytes.NewReader(bytes.Repeat([]byte("o"), 1<<20))}
	_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, over)
	wantCode(t, err, cloudimage.ETOOLARGE)
	if msg := cloudimage.ErrorMessage(err); !strings.Contains(msg, "image_size_total") {
		t.Errorf("refusal %q does not name image_size_total", msg)
	}
	if over.n > 64<<10 {
		t.Errorf("the refused upload read %d bytes: the quota did not stop it early", over.n)
	}
	got := f.stored(t, img.ID)
	wantStatus(t, got, cloudimage.StatusQueued)
	if got.Size != nil || got.Checksum != "" {
		t.Errorf("the refused upload left size %v, checksum %q", got.Size, got.Checksum)
	}
	f.noBlob(t, img.ID)
	f.stagingEmpty(t)

	_, err = f.svc.Upload(f.ctx, f.memberA, img.ID, bytes.NewReader(make([]byte, 41)))
	wantCode(t, err, cloudimage.ETOOLARGE)
	f.upload(t, f.memberA, img.ID, make([]byte, 40)) // exactly the quota
	full := f.create(t, f.memberA, cloudimage.ImageCreate{})
	_, err = f.svc.Upload(f.ctx, f.memberA, full.ID, strings.NewReader("x"))
	wantCode(t, err, cloudimage.ETOOLARGE)
	f.upload(t, f.memberA, full.ID, nil) // nothing more is still within

	other := f.create(t, f.memberB, cloudimage.ImageCreate{})
	f.upload(t, f.memberB, other.ID, make([]byte, 100))

	if err := f.svc.Delete(f.ctx, f.memberA, held.ID); err != nil {
		t.Fatal(err)
	}
	again := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.upload(t, f.memberA, again.ID, make([]byte, 60))
	f.onlyData(t, img.ID, full.ID, other.ID, again.ID)
}

// TestQuotaBytesStaged checks that staged data counts toward the byte
// quota, that a stage beyond it is refused like an upload, and that
// importing staged data does not count it twice.
func TestQuotaBytesStaged(t *testing.T) {
	t.Parallel()
	src := newSource(t, serve(make([]byte, 31)))
	f := newFixture(t, nil, cloudimage.WithQuotas(cloudimage.Quotas{Bytes: 100}),
		cloudimage.WithImportHosts(src.host(t)))
	staged := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.stage(t, f.memberA, staged.ID, make([]byte, 70))

	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, bytes.NewReader(make([]byte, 31)))
	wantCode(t, err, cloudimage.ETOOLARGE)
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
	_, err = f.svc.Stage(f.ctx, f.memberA, img.ID, bytes.NewReader(make([]byte, 31)))
	wantCode(t, err, cloudimage.ETOOLARGE)
	got := f.stored(t, img.ID)
	wantStatus(t, got, cloudimage.StatusQueued)
	if got.Size != nil {
		t.Errorf("the refused stage left size %d", *got.Size)
	}

	// A web-download over the quota returns the image to queued.
	web := cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: src.URL + "/31"}
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, web); err != nil {
		t.Fatalf("Import: %v", err)
	}
	f.waitStatus(t, img.ID, cloudimage.StatusQueued)

	// The staged 70 bytes are the image's own: its import fits.
	direct := cloudimage.ImportRequest{Method: cloudimage.ImportGlanceDirect}
	if err := f.svc.Import(f.ctx, f.memberA, staged.ID, direct); err != nil {
		t.Fatalf("Import: %v", err)
	}
	f.waitStatus(t, staged.ID, cloudimage.StatusActive)
	f.upload(t, f.memberA, img.ID, make([]byte, 30))
	f.svc.Close()
	f.onlyData(t, staged.ID, img.ID)
	f.stagingEmpty(t)
}

// TestQuotaBytesConcurrent checks the check at the commit: two uploads
// (or two stages) that each fit the room left when they began, but not
// both, stream side by side; one is taken and the other is refused, its
// image queued and its data gone. Without the check the project would
// hold 120 of 100 bytes.
func TestQuotaBytesConcurrent(t *testing.T) {
	t.Parallel()
	for _, stage := range []bool{false, true} {
		t.Run(fmt.Sprintf("stage=%v", stage), func(t *testing.T) {
			t.Parallel()
			testQuotaBytesConcurrent(t, stage)
		})
	}
}

func testQuotaBytesConcurrent(t *testing.T, stage bool) {
	f := newFixture(t, nil, cloudimage.WithQuotas(cloudimage.Quotas{Bytes: 100}))
	put := f.svc.Upload
	if stage {
		put = f.svc.Stage
	}
	release := make(chan struct{})
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 2)
	var readers []*gateReader
	for range 2 {
		img := f.create(t, f.memberA, cloudimage.ImageCreate{})
		r := &gateReader{data: make([]byte, 60), started: make(chan struct{}), release: release}
		readers = append(readers, r)
		go func() {
			_, err := put(f.ctx, f.memberA, img.ID, r)
			done <- result{img.ID, err}
		}()
	}
	for _, r := range readers {
		<-r.started
	}
	close(release)
	var active, refused []string
	for range 2 {
		r := <-done
		switch cloudimage.ErrorCode(r.err) {
		case "":
			active = append(active, r.id)
		case cloudimage.ETOOLARGE:
			refused = append(refused, r.id)
			wantStatus(t, f.stored(t, r.id), cloudimage.StatusQueued)
		default:
			t.Fatalf("upload: %v", r.err)
		}
	}
	if len(active) != 1 || len(refused) != 1 {
		t.Fatalf("%d were taken and %d refused, want one of each", len(active), len(refused))
	}
	kept := active[0]
	if stage {
		kept = f.stagedKey(t, kept)
	}
	f.onlyData(t, kept)
	if _, bytes, err := f.db.ProjectUsage(f.ctx, f.memberA.ProjectID); err != nil || bytes != 60 {
		t.Errorf("the project holds %d bytes (%v), want 60", bytes, err)
	}
}
