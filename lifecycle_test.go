package cloudimage_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// testClock is a service clock that moves only when told to.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now().UTC()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logRecord is one line a service logged.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// logRecorder is a slog handler that keeps every record, and writes it to
// the test's output too.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
	out     slog.Handler
}

func newLogRecorder(t *testing.T) *logRecorder {
	return &logRecorder{out: slog.NewTextHandler(t.Output(), nil)}
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(ctx context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, rec)
	l.mu.Unlock()
	return l.out.Handle(ctx, r)
}

// values returns attribute key of the records with message msg, in order,
// failing the test if one of them is not at level.
func (l *logRecorder) values(t *testing.T, msg string, level slog.Level, key string) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		if r.msg != msg {
			continue
		}
		if r.level != level {
			t.Errorf("%q logged at %s, want %s", msg, r.level, level)
		}
		out = append(out, r.attrs[key])
	}
	return out
}

// delayedFixture is a fixture whose service deletes with the given delay,
// reads time from clock and logs into the returned recorder.
func delayedFixture(t *testing.T, delay time.Duration) (*fixture, *testClock, *logRecorder) {
	t.Helper()
	clock := newTestClock()
	f := newFixture(t, nil)
	log := newLogRecorder(t)
	f.svc = cloudimage.NewImageService(f.db, f.blobs, slog.New(log),
		cloudimage.WithDelayedDelete(delay), cloudimage.WithClock(clock.Now))
	t.Cleanup(f.svc.Close)
	return f, clock, log
}

// scrub runs svc's Scrub and fails the test unless it scrubbed want images.
func scrub(t *testing.T, svc *cloudimage.ImageService, want int) {
	t.Helper()
	n, err := svc.Scrub(context.Background())
	if err != nil {
		t.Fatalf("Scrub: %v", err)
	}
	if n != want {
		t.Fatalf("Scrub scrubbed %d images, want %d", n, want)
	}
}

// activeImage creates an image as c, uploads data to it and returns it.
func (f *fixture) activeImage(t *testing.T, c *cloudimage.Caller, in cloudimage.ImageCreate, data string) *cloudimage.Image {
	t.Helper()
	if in.Properties == nil {
		in.Properties = downloadable()
	}
	img := f.create(t, c, in)
	return f.upload(t, c, img.ID, []byte(data))
}

// TestDelayedDeleteHides checks that with delayed delete an active image
// that is deleted becomes pending_delete with its data kept, and is gone
// for every caller, its owner and its members alike, from every lookup
// and list; and that images without data, or deactivated, are deleted at
// once.
func TestDelayedDeleteHides(t *testing.T) {
	t.Parallel()
	f, _, _ := delayedFixture(t, time.Hour)
	img := f.activeImage(t, f.memberA, cloudimage.ImageCreate{Name: "doomed"}, "kept data")
	kept := f.activeImage(t, f.memberA, cloudimage.ImageCreate{Name: "kept"}, "other data")
	for _, id := range []string{img.ID, kept.ID} {
		if _, err := f.svc.AddMember(f.ctx, f.memberA, id, f.memberB.ProjectID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateMember(f.ctx, f.memberB, id, f.memberB.ProjectID, cloudimage.MemberAccepted); err != nil {
			t.Fatal(err)
		}
	}

	if err := f.svc.Delete(f.ctx, f.memberA, img.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	after := f.stored(t, img.ID)
	wantStatus(t, after, cloudimage.StatusPendingDelete)
	if !after.Deleted() || after.DeletedAt == nil {
		t.Errorf("pending_delete image has DeletedAt %v, want it set", after.DeletedAt)
	}
	if got := f.blob(t, img.ID); string(got) != "kept data" {
		t.Errorf("pending_delete image's data = %q, want it kept", got)
	}

	for _, c := range []*cloudimage.Caller{f.memberA, f.adminA, f.readerA, f.memberB, f.adminB} {
		_, err := f.svc.Get(f.ctx, c, img.ID)
		wantCode(t, err, cloudimage.ENOTFOUND)
		_, _, err = f.svc.Download(f.ctx, c, img.ID)
		wantCode(t, err, cloudimage.ENOTFOUND)
		_, err = f.svc.Members(f.ctx, c, img.ID)
		wantCode(t, err, cloudimage.ENOTFOUND)
		seq, err := f.svc.List(f.ctx, c, cloudimage.ListOptions{Limit: -1, Visibility: cloudimage.ListAll})
		listed := ids(collect(t, seq, err))
		if slices.Contains(listed, img.ID) {
			t.Errorf("project %s lists the pending_delete image", c.ProjectID)
		}
		if !slices.Contains(listed, kept.ID) {
			t.Errorf("project %s does not list the image that was not deleted: %v", c.ProjectID, listed)
		}
	}
	wantCode(t, f.svc.Delete(f.ctx, f.memberA, img.ID), cloudimage.ENOTFOUND)
	_, err := f.svc.Update(f.ctx, f.memberA, img.ID, cloudimage.ImageUpdate{Name: strp("back")})
	wantCode(t, err, cloudimage.ENOTFOUND)
	wantCode(t, f.svc.AddTag(f.ctx, f.memberA, img.ID, "t"), cloudimage.ENOTFOUND)
	wantCode(t, f.svc.Reactivate(f.ctx, f.adminA, img.ID), cloudimage.ENOTFOUND)

	// Without data there is nothing to wait for; a deactivated image may
	// go only to deleted (Glance's table): both are deleted at once.
	queued := f.create(t, f.memberA, cloudimage.ImageCreate{})
	deact := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "deactivated data")
	if err := f.svc.Deactivate(f.ctx, f.adminA, deact.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{queued.ID, deact.ID} {
		if err := f.svc.Delete(f.ctx, f.adminA, id); err != nil {
			t.Fatalf("Delete %s: %v", id, err)
		}
		wantStatus(t, f.stored(t, id), cloudimage.StatusDeleted)
		f.noBlob(t, id)
	}
}

// TestDeleteWithoutDelay checks the default: a deleted image is deleted at
// once, data and all, with nothing left to scrub.
func TestDeleteWithoutDelay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	img := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "data")
	if err := f.svc.Delete(f.ctx, f.memberA, img.ID); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusDeleted)
	f.noBlob(t, img.ID)
	scrub(t, f.svc, 0)
}

// TestScrubAfterDelay checks that Scrub removes a pending_delete image's
// data, and marks it deleted, once the delay has passed and not before,
// logging each image it scrubs, and scrubs each once.
func TestScrubAfterDelay(t *testing.T) {
	t.Parallel()
	f, clock, log := delayedFixture(t, time.Hour)
	first := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "first")
	second := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "second")
	// A staged leftover goes with the image too.
	if _, err := f.blobs.Put(f.ctx, first.ID+".staged", strings.NewReader("leftover")); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(f.ctx, f.memberA, first.ID); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	if err := f.svc.Delete(f.ctx, f.memberA, second.ID); err != nil {
		t.Fatal(err)
	}

	scrub(t, f.svc, 0)
	clock.Advance(30*time.Minute - time.Microsecond) // first: a microsecond short of an hour
	scrub(t, f.svc, 0)
	wantStatus(t, f.stored(t, first.ID), cloudimage.StatusPendingDelete)
	if got := f.blob(t, first.ID); string(got) != "first" {
		t.Fatalf("data scrubbed before its delay: %q", got)
	}

	clock.Advance(time.Microsecond)
	scrub(t, f.svc, 1)
	wantStatus(t, f.stored(t, first.ID), cloudimage.StatusDeleted)
	f.noBlob(t, first.ID)
	f.noBlob(t, first.ID+".staged")
	wantStatus(t, f.stored(t, second.ID), cloudimage.StatusPendingDelete)
	if got := f.blob(t, second.ID); string(got) != "second" {
		t.Fatalf("the image deleted later was scrubbed with the first: %q", got)
	}
	scrub(t, f.svc, 0)

	clock.Advance(30 * time.Minute)
	scrub(t, f.svc, 1)
	f.noBlob(t, second.ID)
	if got := log.values(t, "scrubbed image", slog.LevelInfo, "image"); !slices.Equal(got, []string{first.ID, second.ID}) {
		t.Errorf("scrub log names %v, want [%s %s]", got, first.ID, second.ID)
	}
}

// TestScrubSurvivesRestart checks that the scrubber's work is in the
// database: a service started after the one that deleted the image scrubs
// it when due, and one started without delayed delete scrubs what an
// earlier configuration left pending at once.
func TestScrubSurvivesRestart(t *testing.T) {
	t.Parallel()
	f, clock, _ := delayedFixture(t, time.Hour)
	img := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "data")
	if err := f.svc.Delete(f.ctx, f.memberA, img.ID); err != nil {
		t.Fatal(err)
	}
	f.svc.Close()

	again := f.restart(t, cloudimage.WithDelayedDelete(time.Hour), cloudimage.WithClock(clock.Now))
	scrub(t, again, 0)
	clock.Advance(time.Hour)
	scrub(t, again, 1)
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusDeleted)
	f.noBlob(t, img.ID)

	other := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "more data")
	if err := again.Delete(f.ctx, f.memberA, other.ID); err != nil {
		t.Fatal(err)
	}
	again.Close()
	off := f.restart(t, cloudimage.WithClock(clock.Now))
	scrub(t, off, 1)
	f.noBlob(t, other.ID)
}

// TestScrubOnOneReplica runs two services on one database, as two
// replicas would, each with its janitor: only the one that holds the
// lease scrubs, each image is scrubbed once, and the other takes over
// once the holder stops.
func TestScrubOnOneReplica(t *testing.T) {
	t.Parallel()
	f, clock, log := delayedFixture(t, time.Hour)
	replica := cloudimage.NewImageService(f.db, f.blobs, slog.New(log),
		cloudimage.WithDelayedDelete(time.Hour), cloudimage.WithClock(clock.Now))
	t.Cleanup(replica.Close)
	janitors := []*cloudimage.Janitor{
		cloudimage.NewJanitor(f.svc, f.db, "replica-1", time.Minute, time.Hour),
		cloudimage.NewJanitor(replica, f.db, "replica-2", time.Minute, time.Hour),
	}
	pending := func(n int) []string {
		var out []string
		for i := range n {
			img := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, fmt.Sprint("data ", i))
			if err := f.svc.Delete(f.ctx, f.memberA, img.ID); err != nil {
				t.Fatal(err)
			}
			out = append(out, img.ID)
		}
		clock.Advance(2 * time.Hour)
		return out
	}

	first := pending(5)
	ran := make([]bool, 2)
	var wg sync.WaitGroup
	for i, j := range janitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := j.RunOnce(f.ctx)
			if err != nil {
				t.Errorf("janitor %d: %v", i, err)
			}
			ran[i] = ok
		}()
	}
	wg.Wait()
	if ran[0] == ran[1] {
		t.Fatalf("janitors that did a round: %v, want exactly one", ran)
	}
	holder, other := janitors[0], janitors[1]
	if ran[1] {
		holder, other = other, holder
	}
	scrubbed := log.values(t, "scrubbed image", slog.LevelInfo, "image")
	if !slices.Equal(slices.Sorted(slices.Values(scrubbed)), slices.Sorted(slices.Values(first))) {
		t.Fatalf("scrubbed %v, want each of %v once", scrubbed, first)
	}

	second := pending(2)
	if ok, err := other.RunOnce(f.ctx); err != nil || ok {
		t.Fatalf("the replica without the lease did a round (%v, %v)", ok, err)
	}
	for _, id := range second {
		wantStatus(t, f.stored(t, id), cloudimage.StatusPendingDelete)
	}
	if ok, err := holder.RunOnce(f.ctx); err != nil || !ok {
		t.Fatalf("the holder could not renew its lease (%v, %v)", ok, err)
	}
	for _, id := range second {
		wantStatus(t, f.stored(t, id), cloudimage.StatusDeleted)
	}

	// The holder stops, and releases the lease as it does.
	stopped, cancel := context.WithCancel(f.ctx)
	cancel()
	holder.Run(stopped)
	third := pending(1)
	if ok, err := other.RunOnce(f.ctx); err != nil || !ok {
		t.Fatalf("the other replica did not take over a released lease (%v, %v)", ok, err)
	}
	wantStatus(t, f.stored(t, third[0]), cloudimage.StatusDeleted)
}

// TestRestore checks who may restore a pending_delete image (an admin of
// its project), what others get, and that a restored image is active with
// its data, which the scrubber then leaves alone.
func TestRestore(t *testing.T) {
	t.Parallel()
	f, clock, _ := delayedFixture(t, time.Hour)
	shared := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "shared data")
	private := f.activeImage(t, f.memberA, cloudimage.ImageCreate{Visibility: cloudimage.VisibilityPrivate}, "private data")
	active := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "still active")
	queued := f.create(t, f.memberA, cloudimage.ImageCreate{})
	if _, err := f.svc.AddMember(f.ctx, f.memberA, shared.ID, f.adminB.ProjectID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{shared.ID, private.ID} {
		if err := f.svc.Delete(f.ctx, f.memberA, id); err != nil {
			t.Fatal(err)
		}
	}

	for _, tt := range []struct {
		name   string
		caller *cloudimage.Caller
		id     string
		want   string
	}{
		{"member of the project", f.memberA, shared.ID, cloudimage.EFORBIDDEN},
		{"reader of the project", f.readerA, shared.ID, cloudimage.EFORBIDDEN},
		{"admin of a member project", f.adminB, shared.ID, cloudimage.ENOTFOUND},
		{"admin of another project", f.adminB, private.ID, cloudimage.ENOTFOUND},
		{"unknown image", f.adminA, uuid.NewString(), cloudimage.ENOTFOUND},
		{"active image", f.adminA, active.ID, cloudimage.ECONFLICT},
		{"queued image", f.adminA, queued.ID, cloudimage.ECONFLICT},
		{"active image by a member", f.memberA, active.ID, cloudimage.EFORBIDDEN},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, err := f.db.Image(f.ctx, tt.id)
			wantCode(t, f.svc.Restore(f.ctx, tt.caller, tt.id), tt.want)
			if err != nil {
				return // an unknown image
			}
			if after := f.stored(t, tt.id); after.Status != before.Status || !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("refused restore changed the image: %s at %v, was %s at %v",
					after.Status, after.UpdatedAt, before.Status, before.UpdatedAt)
			}
		})
	}

	if err := f.svc.Restore(f.ctx, f.adminA, shared.ID); err != nil {
		t.Fatalf("Restore by the project's admin: %v", err)
	}
	img, err := f.svc.Get(f.ctx, f.memberA, shared.ID)
	if err != nil {
		t.Fatalf("Get after restore: %v", err)
	}
	wantStatus(t, img, cloudimage.StatusActive)
	if img.DeletedAt != nil {
		t.Errorf("restored image has DeletedAt %v", img.DeletedAt)
	}
	if got := f.download(t, f.memberA, shared.ID); string(got) != "shared data" {
		t.Errorf("restored image's data = %q", got)
	}
	wantCode(t, f.svc.Restore(f.ctx, f.adminA, shared.ID), cloudimage.ECONFLICT)

	clock.Advance(2 * time.Hour)
	scrub(t, f.svc, 1) // the private image only
	wantStatus(t, f.stored(t, shared.ID), cloudimage.StatusActive)
	if got := f.download(t, f.memberA, shared.ID); string(got) != "shared data" {
		t.Errorf("the scrubber touched a restored image's data: %q", got)
	}
	// Scrubbed is gone for good.
	wantCode(t, f.svc.Restore(f.ctx, f.adminA, private.ID), cloudimage.ENOTFOUND)
}

// blobPath is where the file store keeps key.
func (f *fixture) blobPath(key string) string {
	return filepath.Join(f.blobDir, key[:2], key)
}

// age makes the blob under key look last written d ago.
func (f *fixture) age(t *testing.T, key string, d time.Duration) {
	t.Helper()
	at := time.Now().Add(-d)
	if err := os.Chtimes(f.blobPath(key), at, at); err != nil {
		t.Fatal(err)
	}
}

// setStatus moves the image through the given statuses in the store, as
// a transfer under way would have.
func (f *fixture) setStatus(t *testing.T, id string, path ...cloudimage.Status) {
	t.Helper()
	for _, st := range path {
		if _, err := f.db.UpdateImage(f.ctx, id, func(img *cloudimage.Image) error {
			return img.SetStatus(st, time.Now())
		}); err != nil {
			t.Fatalf("move %s to %s: %v", id, st, err)
		}
	}
}

// TestSweepOrphans checks that the sweep removes, and logs, the data no
// image references once it is older than the grace period, and keeps
// what an image references, whatever its age, and young orphans.
func TestSweepOrphans(t *testing.T) {
	t.Parallel()
	f, _, log := delayedFixture(t, time.Hour)
	put := func(key string) string {
		t.Helper()
		if _, err := f.blobs.Put(f.ctx, key, strings.NewReader("data of "+key)); err != nil {
			t.Fatal(err)
		}
		return key
	}
	newID := func() string { return f.create(t, f.memberA, cloudimage.ImageCreate{}).ID }
	var keep, orphans []string

	active := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "active").ID
	keep = append(keep, active)
	orphans = append(orphans, put(active+".staged"))
	pending := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "pending").ID
	if err := f.svc.Delete(f.ctx, f.memberA, pending); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, pending)
	deact := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "deactivated").ID
	if err := f.svc.Deactivate(f.ctx, f.adminA, deact); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, deact)

	saving := newID()
	f.setStatus(t, saving, cloudimage.StatusSaving)
	keep = append(keep, put(saving))
	orphans = append(orphans, put(saving+".staged"))
	uploading := newID()
	f.setStatus(t, uploading, cloudimage.StatusUploading)
	keep = append(keep, put(uploading+".staged"))
	orphans = append(orphans, put(uploading))
	importing := newID()
	f.setStatus(t, importing, cloudimage.StatusImporting)
	keep = append(keep, put(importing), put(importing+".staged"))

	queued := newID()
	orphans = append(orphans, put(queued), put(queued+".staged"))
	killed := newID()
	f.setStatus(t, killed, cloudimage.StatusSaving, cloudimage.StatusKilled)
	orphans = append(orphans, put(killed))
	deleted := newID()
	if err := f.svc.Delete(f.ctx, f.memberA, deleted); err != nil {
		t.Fatal(err)
	}
	orphans = append(orphans, put(deleted))
	unknown := uuid.NewString()
	orphans = append(orphans, put(unknown), put("garbage-key"), put(strings.ToUpper(active)))

	for _, key := range append(slices.Clone(keep), orphans...) {
		f.age(t, key, 2*time.Hour)
	}
	young := put(uuid.NewString())
	f.age(t, young, 59*time.Minute)

	n, err := f.svc.SweepOrphans(f.ctx, time.Hour)
	if err != nil {
		t.Fatalf("SweepOrphans: %v", err)
	}
	if n != len(orphans) {
		t.Errorf("swept %d blobs, want %d", n, len(orphans))
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(keep), young)))
	if got := f.blobKeys(t); !slices.Equal(got, want) {
		t.Errorf("after the sweep the store holds\n%v\nwant\n%v", got, want)
	}
	removed := log.values(t, "removed orphaned data", slog.LevelWarn, "key")
	if !slices.Equal(slices.Sorted(slices.Values(removed)), slices.Sorted(slices.Values(orphans))) {
		t.Errorf("logged removals of %v, want %v", removed, orphans)
	}
	if got := f.download(t, f.memberA, active); string(got) != "active" {
		t.Errorf("active image's data after the sweep = %q", got)
	}

	// Without grace, the young orphan goes too, and nothing else.
	if n, err := f.svc.SweepOrphans(f.ctx, 0); err != nil || n != 1 {
		t.Fatalf("sweep without grace: %d, %v; want 1 (the young orphan)", n, err)
	}
	f.noBlob(t, young)
	if got := f.blobKeys(t); !slices.Equal(got, slices.Sorted(slices.Values(keep))) {
		t.Errorf("after a sweep without grace the store holds %v, want %v", got, keep)
	}
}

// failingDelete is a blob store that cannot delete.
type failingDelete struct {
	cloudimage.BlobStore
}

func (failingDelete) Delete(context.Context, string) error {
	return fmt.Errorf("device busy")
}

// TestSweepRemovesWhatDeleteLeft checks the promise of Delete that data
// it could not remove becomes an orphan that the sweep removes.
func TestSweepRemovesWhatDeleteLeft(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(b cloudimage.BlobStore) cloudimage.BlobStore { return failingDelete{b} })
	img := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "stuck")
	if err := f.svc.Delete(f.ctx, f.memberA, img.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := f.blob(t, img.ID); string(got) != "stuck" {
		t.Fatalf("the failing store removed the data anyway: %q", got)
	}
	sweeper := f.restart(t)
	if n, err := sweeper.SweepOrphans(f.ctx, 0); err != nil || n != 1 {
		t.Fatalf("SweepOrphans: %d, %v; want 1", n, err)
	}
	f.noBlob(t, img.ID)
}

// TestScrubLeavesOrphanForSweep checks the order of a scrub: the image is
// deleted before its data goes, so data whose removal failed is an
// orphan, which the sweep then removes.
func TestScrubLeavesOrphanForSweep(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	f := newFixture(t, func(b cloudimage.BlobStore) cloudimage.BlobStore { return failingDelete{b} },
		cloudimage.WithDelayedDelete(0), cloudimage.WithClock(clock.Now))
	img := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "data")
	if err := f.svc.Delete(f.ctx, f.memberA, img.ID); err != nil {
		t.Fatal(err)
	}
	scrub(t, f.svc, 1)
	wantStatus(t, f.stored(t, img.ID), cloudimage.StatusDeleted)
	wantCode(t, f.svc.Restore(f.ctx, f.adminA, img.ID), cloudimage.ENOTFOUND)
	if n, err := f.restart(t).SweepOrphans(f.ctx, 0); err != nil || n != 1 {
		t.Fatalf("SweepOrphans: %d, %v; want 1", n, err)
	}
	f.noBlob(t, img.ID)
}

// TestStartupSweepAfterCrash is what a restart after kill -9 does: data
// committed for an upload that never became active is removed by
// RecoverUploads, and data of a deleted image whose removal never ran by
// the sweep, so that no unreferenced file is left.
func TestStartupSweepAfterCrash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	saving := f.create(t, f.memberA, cloudimage.ImageCreate{})
	f.setStatus(t, saving.ID, cloudimage.StatusSaving)
	if _, err := f.blobs.Put(f.ctx, saving.ID, bytes.NewReader([]byte("committed"))); err != nil {
		t.Fatal(err)
	}
	gone := f.create(t, f.memberA, cloudimage.ImageCreate{})
	if _, err := f.blobs.Put(f.ctx, gone.ID, bytes.NewReader([]byte("never removed"))); err != nil {
		t.Fatal(err)
	}
	f.setStatus(t, gone.ID, cloudimage.StatusDeleted)
	active := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "active")

	svc := f.restart(t)
	if _, err := svc.RecoverUploads(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SweepOrphans(f.ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.blobKeys(t); !slices.Equal(got, []string{active.ID}) {
		t.Fatalf("after restart the store holds %v, want only the active image's data", got)
	}
	f.stagingEmpty(t)
}

// hookedStore is a metadata store that runs hook when the scrubber's
// query returns, before Scrub acts on what it found.
type hookedStore struct {
	cloudimage.ImageStore
	hook func()
}

func (h *hookedStore) ImagesPendingDeleteBefore(ctx context.Context, at time.Time, limit int) ([]*cloudimage.Image, error) {
	imgs, err := h.ImageStore.ImagesPendingDeleteBefore(ctx, at, limit)
	if h.hook != nil {
		h.hook()
		h.hook = nil
	}
	return imgs, err
}

// TestScrubRacesRestore checks that an image restored after the scrubber
// found it due, or restored and deleted again, is not scrubbed: Scrub
// decides again in the transaction that marks the image deleted.
func TestScrubRacesRestore(t *testing.T) {
	t.Parallel()
	f, clock, _ := delayedFixture(t, time.Hour)
	store := &hookedStore{ImageStore: f.db}
	scrubber := cloudimage.NewImageService(store, f.blobs, f.logger,
		cloudimage.WithDelayedDelete(time.Hour), cloudimage.WithClock(clock.Now))
	t.Cleanup(scrubber.Close)

	restored := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "restored")
	again := f.activeImage(t, f.memberA, cloudimage.ImageCreate{}, "deleted again")
	for _, id := range []string{restored.ID, again.ID} {
		if err := f.svc.Delete(f.ctx, f.memberA, id); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Hour)
	store.hook = func() {
		for _, id := range []string{restored.ID, again.ID} {
			if err := f.svc.Restore(f.ctx, f.adminA, id); err != nil {
				t.Errorf("Restore %s: %v", id, err)
			}
		}
		if err := f.svc.Delete(f.ctx, f.memberA, again.ID); err != nil {
			t.Errorf("delete again: %v", err)
		}
	}
	scrub(t, scrubber, 0)
	wantStatus(t, f.stored(t, restored.ID), cloudimage.StatusActive)
	wantStatus(t, f.stored(t, again.ID), cloudimage.StatusPendingDelete)
	if got := f.download(t, f.memberA, restored.ID); string(got) != "restored" {
		t.Errorf("restored image's data = %q", got)
	}
	if got := f.blob(t, again.ID); string(got) != "deleted again" {
		t.Errorf("the image deleted again lost its data before its delay: %q", got)
	}
}

// TestScrubManyImages checks that Scrub goes on past one store query's
// worth of due images.
func TestScrubManyImages(t *testing.T) {
	t.Parallel()
	f, clock, _ := delayedFixture(t, time.Hour)
	const n = 250
	at := clock.Now().Add(-2 * time.Hour)
	imgs := make([]*cloudimage.Image, n)
	for i := range imgs {
		imgs[i] = &cloudimage.Image{ID: uuid.NewString(), Status: cloudimage.StatusPendingDelete,
			Visibility: cloudimage.VisibilityPrivate, Owner: f.memberA.ProjectID, Properties: map[string]string{},
			CreatedAt: at, UpdatedAt: at, DeletedAt: &at}
	}
	if err := f.db.InsertImages(f.ctx, imgs); err != nil {
		t.Fatal(err)
	}
	scrub(t, f.svc, n)
	for _, img := range imgs {
		wantStatus(t, f.stored(t, img.ID), cloudimage.StatusDeleted)
	}
}
