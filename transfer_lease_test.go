package cloudimage_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// mortalLeases is a lease store that stops answering once its process
// has "died": what a replica's lease renewals see when it hangs or loses
// its database.
type mortalLeases struct {
	cloudimage.LeaseStore
	dead atomic.Bool
}

var errDead = errors.New("this replica is dead")

func (m *mortalLeases) AcquireLease(ctx context.Context, name, holder string,
	ttl time.Duration) (bool, error) {
	if m.dead.Load() {
		return false, errDead
	}
	return m.LeaseStore.AcquireLease(ctx, name, holder, ttl)
}

func (m *mortalLeases) ReleaseLease(ctx context.Context, name, holder string) error {
	if m.dead.Load() {
		return errDead
	}
	return m.LeaseStore.ReleaseLease(ctx, name, holder)
}

// transferTTL is the short transfer lease of these tests.
const transferTTL = 600 * time.Millisecond

// TestRecoverSparesAnotherReplicasUpload runs two services, replicas A
// and B, over one database and blob store. While A streams an upload,
// B's RecoverUploads and its janitor leave the image saving, and B's own
// upload of it is refused; once A stops renewing its transfer lease, as a
// dead replica would, B's janitor returns the image to queued, and A's
// upload, resumed too late, gives up without touching it.
func TestRecoverSparesAnotherReplicasUpload(t *testing.T) {
	t.Parallel()
	leasesA := &mortalLeases{}
	f := newFixture(t, nil, cloudimage.WithTransferLeases(leasesA, "replica-a", transferTTL))
	leasesA.LeaseStore = f.db
	b := f.restart(t, cloudimage.WithTransferLeases(f.db, "replica-b", transferTTL))
	janitorB := cloudimage.NewJanitor(b, f.db, "replica-b", time.Minute, time.Hour)

	img := f.create(t, f.memberA, cloudimage.ImageCreate{})
	stream := &gateReader{data: []byte("streamed through A"), started: make(chan struct{}),
		release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, stream)
		done <- err
	}()
	released := false
	t.Cleanup(func() {
		if !released {
			close(stream.release)
			<-done
		}
	})
	<-stream.started

	// Longer than the lease: A's renewals keep it.
	time.Sleep(2 * transferTTL)
	if n, err := b.RecoverUploads(f.ctx); err != nil || n != 0 {
		t.Fatalf("B's RecoverUploads during A's upload: %d, %v; want 0, nil", n, err)
	}
	if ran, err := janitorB.RunOnce(f.ctx); err != nil || !ran {
		t.Fatalf("B's janitor round: %v, %v; want true, nil", ran, err)
	}
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusSaving)
	second := &countingReader{r: strings.NewReader("through B")}
	_, err := b.Upload(f.ctx, f.memberA, img.ID, second)
	wantCode(t, err, cloudimage.ECONFLICT)
	if second.n != 0 {
		t.Errorf("B's refused upload read %d bytes, want 0", second.n)
	}

	leasesA.dead.Store(true)
	deadline := time.Now().Add(10 * transferTTL)
	for f.stored(t, img.ID).Status == cloudimage.StatusSaving {
		if time.Now().After(deadline) {
			t.Fatalf("B's janitor left the dead replica's upload saving for %s", 10*transferTTL)
		}
		time.Sleep(transferTTL / 6)
		if _, err := janitorB.RunOnce(f.ctx); err != nil {
			t.Fatalf("B's janitor round: %v", err)
		}
	}
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)

	// A wakes up: its upload must see that it lost the image, and neither
	// activate nor requeue it.
	close(stream.release)
	released = true
	wantCode(t, <-done, cloudimage.ECONFLICT)
	got := f.stored(t, img.ID)
	wantStatus(t, got, cloudimage.StatusQueued)
	if got.Size != nil {
		t.Errorf("requeued image has size %s, want none", fmtPtr(got.Size))
	}

	// The upload can be retried, through B.
	if _, err := b.Upload(f.ctx, f.memberA, img.ID, strings.NewReader("again, through B")); err != nil {
		t.Fatalf("retry through B: %v", err)
	}
	if data := f.blob(t, img.ID); string(data) != "again, through B" {
		t.Errorf("stored %q, want the retry's data", data)
	}
}

// TestRecoverSparesAnotherReplicasImport runs replicas A and B over one
// database: while A imports, B's RecoverUploads does not start a second
// copy of the import. When A dies, a restart of it under the same holder
// resumes the import at once, without waiting for A's lease to run out.
func TestRecoverSparesAnotherReplicasImport(t *testing.T) {
	t.Parallel()
	leasesA := &mortalLeases{}
	f, h := newHookFixture(t, cloudimage.WithTransferLeases(leasesA, "replica-a", transferTTL))
	leasesA.LeaseStore = f.db
	b := f.restart(t, cloudimage.WithTransferLeases(f.db, "replica-b", transferTTL))
	img := f.create(t, f.memberA, cloudimage.ImageCreate{Properties: downloadable()})
	data := []byte("imported, in the end, by A's next run")
	f.stage(t, f.memberA, img.ID, data)
	g := newGate(t)
	h.set(false, g.hook) // A's import waits in its Put
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, directImport); err != nil {
		t.Fatalf("Import through A: %v", err)
	}
	g.wait(t)

	time.Sleep(2 * transferTTL) // A's renewals keep its lease
	if n, err := b.RecoverUploads(f.ctx); err != nil || n != 0 {
		t.Fatalf("B's RecoverUploads during A's import: %d, %v; want 0, nil", n, err)
	}
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusImporting)

	// A dies, its lease still good for most of transferTTL; its next run
	// takes over at once.
	leasesA.dead.Store(true)
	start := time.Now()
	next := f.restart(t, cloudimage.WithTransferLeases(f.db, "replica-a", transferTTL))
	if n, err := next.RecoverUploads(f.ctx); err != nil || n != 1 {
		t.Fatalf("RecoverUploads of A's next run: %d, %v; want 1, nil", n, err)
	}
	if took := time.Since(start); took > transferTTL/2 {
		t.Errorf("A's next run took %s to resume the import, want no wait for the lease", took)
	}
	active := f.waitStatus(t, img.ID, cloudimage.StatusActive)
	next.Close()
	f.svc.Close() // the dead run's import gives up, leaving the image alone
	f.svc = next
	f.wantData(t, f.memberA, active, data)
	f.onlyData(t, img.ID)
}
