package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// wantUsage fails the test unless the project's usage is images, bytes.
func wantUsage(t *testing.T, s MetadataStore, project string, images int, bytes int64) {
	t.Helper()
	gotImages, gotBytes, err := s.ProjectUsage(context.Background(), project)
	if err != nil {
		t.Fatalf("ProjectUsage: %v", err)
	}
	if gotImages != images || gotBytes != bytes {
		t.Fatalf("usage of %s: %d images, %d bytes; want %d, %d", project, gotImages, gotBytes, images, bytes)
	}
}

func sized(img *cloudimage.Image, status cloudimage.Status, size int64) *cloudimage.Image {
	img.Status, img.Size = status, &size
	if status == cloudimage.StatusDeleted || status == cloudimage.StatusPendingDelete {
		img.DeletedAt = &img.UpdatedAt
	}
	return img
}

// testProjectUsage checks what usage counts: every image of the project
// that is not deleted or pending_delete, and the sizes of those that have
// one, staged data included.
func testProjectUsage(t *testing.T, s MetadataStore) {
	a, b := mustProject(t, s, "a"), mustProject(t, s, "b")
	wantUsage(t, s, a.ID, 0, 0)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	mustCreate(t, s, sized(newImage(a.ID, at(0)), cloudimage.StatusActive, 10))
	mustCreate(t, s, sized(newImage(a.ID, at(1)), cloudimage.StatusUploading, 5)) // staged
	mustCreate(t, s, sized(newImage(a.ID, at(2)), cloudimage.StatusDeactivated, 1))
	mustCreate(t, s, newImage(a.ID, at(3))) // queued, no size
	mustCreate(t, s, sized(newImage(a.ID, at(4)), cloudimage.StatusDeleted, 100))
	mustCreate(t, s, sized(newImage(a.ID, at(5)), cloudimage.StatusPendingDelete, 1000))
	mustCreate(t, s, sized(newImage(b.ID, at(6)), cloudimage.StatusActive, 10000))
	wantUsage(t, s, a.ID, 4, 16)
	wantUsage(t, s, b.ID, 1, 10000)
	wantUsage(t, s, "no-such-project", 0, 0)
}

// testCreateImageWithin checks the image-count check of CreateImageWithin:
// an image that would take its owner over is not written, deleted images
// do not count, and other projects are not affected.
func testCreateImageWithin(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	a, b := mustProject(t, s, "a"), mustProject(t, s, "b")
	q := cloudimage.Quotas{Images: 2}
	first := newImage(a.ID, base)
	for i, img := range []*cloudimage.Image{first, newImage(a.ID, base.Add(time.Second))} {
		if err := s.CreateImageWithin(ctx, img, q); err != nil {
			t.Fatalf("create image %d of 2: %v", i+1, err)
		}
	}
	over := newImage(a.ID, base.Add(2*time.Second))
	wantCode(t, s.CreateImageWithin(ctx, over, q), cloudimage.ETOOLARGE)
	_, err := s.Image(ctx, over.ID)
	wantCode(t, err, cloudimage.ENOTFOUND)
	wantUsage(t, s, a.ID, 2, 0)

	if err := s.CreateImageWithin(ctx, newImage(b.ID, base), q); err != nil {
		t.Errorf("another project's image: %v", err)
	}
	if err := s.CreateImageWithin(ctx, over, cloudimage.Quotas{}); err != nil {
		t.Errorf("with no quota: %v", err)
	}
	err = s.CreateImageWithin(ctx, newImage(a.ID, base), cloudimage.Quotas{Images: 3})
	wantCode(t, err, cloudimage.ETOOLARGE)

	if _, err := s.UpdateImage(ctx, first.ID, func(img *cloudimage.Image) error {
		return img.SetStatus(cloudimage.StatusDeleted, base)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateImageWithin(ctx, newImage(a.ID, base), cloudimage.Quotas{Images: 3}); err != nil {
		t.Errorf("create after a delete freed the quota: %v", err)
	}
}

// testUpdateImageWithin checks the byte check of UpdateImageWithin: a
// size that would take the owner over is not written, and nothing else
// of the change either.
func testUpdateImageWithin(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	a, b := mustProject(t, s, "a"), mustProject(t, s, "b")
	mustCreate(t, s, sized(newImage(a.ID, base), cloudimage.StatusActive, 60))
	mustCreate(t, s, sized(newImage(b.ID, base), cloudimage.StatusActive, 1000))
	img := newImage(a.ID, base.Add(time.Second))
	mustCreate(t, s, img)
	q := cloudimage.Quotas{Bytes: 100}
	setSize := func(n int64) func(*cloudimage.Image) error {
		return func(img *cloudimage.Image) error {
			img.Size, img.Name = &n, "changed"
			return nil
		}
	}
	_, err := s.UpdateImageWithin(ctx, img.ID, q, setSize(41))
	wantCode(t, err, cloudimage.ETOOLARGE)
	got, err := s.Image(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != nil || got.Name != img.Name {
		t.Fatalf("a refused update wrote size %v, name %q", got.Size, got.Name)
	}
	wantUsage(t, s, a.ID, 2, 60)
	if _, err := s.UpdateImageWithin(ctx, img.ID, q, setSize(40)); err != nil {
		t.Fatalf("an update to exactly the quota: %v", err)
	}
	wantUsage(t, s, a.ID, 2, 100)
	if _, err := s.UpdateImageWithin(ctx, img.ID, cloudimage.Quotas{}, setSize(1<<40)); err != nil {
		t.Fatalf("with no quota: %v", err)
	}
}

// testQuotaIsAtomic checks that the check and the write are one
// transaction: of many concurrent creates and size updates, exactly as
// many succeed as the quotas allow.
func testQuotaIsAtomic(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	const n, images = 16, 5
	var wg sync.WaitGroup
	errs := make(chan error, n)
	created := make(chan *cloudimage.Image, n)
	for i := range n {
		wg.Go(func() {
			img := newImage(p.ID, base.Add(time.Duration(i)*time.Second))
			err := s.CreateImageWithin(ctx, img, cloudimage.Quotas{Images: images})
			if err == nil {
				created <- img
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	close(created)
	if ok := countOK(t, errs); ok != images {
		t.Fatalf("%d of %d concurrent creates succeeded under a quota of %d images", ok, n, images)
	}
	wantUsage(t, s, p.ID, images, 0)

	// Each of the images takes 10 bytes of a 25-byte quota: two fit.
	errs = make(chan error, images)
	for img := range created {
		wg.Go(func() {
			size := int64(10)
			q := cloudimage.Quotas{Bytes: 25}
			_, err := s.UpdateImageWithin(ctx, img.ID, q, func(img *cloudimage.Image) error {
				img.Size = &size
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	if ok := countOK(t, errs); ok != 2 {
		t.Fatalf("%d concurrent 10-byte updates succeeded under a quota of 25 bytes, want 2", ok)
	}
	wantUsage(t, s, p.ID, images, 20)
}

// countOK returns how many of errs are nil, failing the test on any that
// is not ETOOLARGE.
func countOK(t *testing.T, errs <-chan error) int {
	t.Helper()
	ok := 0
	for err := range errs {
		switch cloudimage.ErrorCode(err) {
		case "":
			ok++
		case cloudimage.ETOOLARGE:
		default:
			t.Errorf("got %v, want nil or %s", err, cloudimage.ETOOLARGE)
		}
	}
	return ok
}
